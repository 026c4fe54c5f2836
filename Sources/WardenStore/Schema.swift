import WardenCore

/// Versioned schema migrations. Each migration is written once in SQLite's dialect and translated for
/// PostgreSQL (`BLOB` → `BYTEA`, `REAL` → `DOUBLE PRECISION`, the auto-increment key → `BIGSERIAL`).
/// The applied version is kept in `meta.schema_version`; migrations only ever append.
enum Schema {
    static let migrations: [String] = [
        // 1: the foundation.
        """
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE plugins (
            name TEXT NOT NULL, version TEXT NOT NULL, kind TEXT NOT NULL, digest TEXT NOT NULL, dir TEXT NOT NULL,
            manifest TEXT NOT NULL, files TEXT NOT NULL, tools TEXT NOT NULL, trusted BIGINT NOT NULL,
            registered_at BIGINT NOT NULL, PRIMARY KEY (name, version));
        CREATE TABLE tasks (
            id TEXT PRIMARY KEY, plugin TEXT NOT NULL, version TEXT NOT NULL, tool TEXT NOT NULL, tenant TEXT NOT NULL,
            state TEXT NOT NULL, node TEXT, priority BIGINT NOT NULL, attempts BIGINT NOT NULL, max_retries BIGINT NOT NULL,
            idempotency_key TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, reason TEXT, result TEXT,
            report TEXT, input TEXT NOT NULL, cpu_m BIGINT NOT NULL, mem_b BIGINT NOT NULL, ext TEXT,
            timeout_ms BIGINT NOT NULL, not_before BIGINT NOT NULL, lease_owner TEXT, lease_expires BIGINT,
            lease_epoch BIGINT NOT NULL, parent TEXT, workflow TEXT, step TEXT, traceparent TEXT, locks TEXT,
            after_ids TEXT, rule TEXT, explanation TEXT, submitter TEXT, idempotent BIGINT NOT NULL,
            approval_deadline BIGINT, retry_initial_ms BIGINT NOT NULL, retry_max_ms BIGINT NOT NULL);
        CREATE UNIQUE INDEX tasks_idempotency ON tasks (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL;
        CREATE INDEX tasks_state ON tasks (state, priority, created_at);
        CREATE INDEX tasks_tenant ON tasks (tenant, state);
        CREATE INDEX tasks_parent ON tasks (parent);
        CREATE INDEX tasks_workflow ON tasks (workflow);
        CREATE TABLE task_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT, task TEXT NOT NULL, at BIGINT NOT NULL, from_state TEXT,
            to_state TEXT NOT NULL, reason TEXT, actor TEXT, detail TEXT, audit_seq BIGINT);
        CREATE INDEX task_events_task ON task_events (task, id);
        CREATE TABLE task_logs (
            id INTEGER PRIMARY KEY AUTOINCREMENT, task TEXT NOT NULL, attempt BIGINT NOT NULL, stream TEXT NOT NULL,
            data BLOB NOT NULL, at BIGINT NOT NULL);
        CREATE INDEX task_logs_task ON task_logs (task, id);
        CREATE TABLE deps (task TEXT NOT NULL, after_id TEXT NOT NULL, PRIMARY KEY (task, after_id));
        CREATE INDEX deps_after ON deps (after_id);
        CREATE TABLE audit (
            seq BIGINT PRIMARY KEY, at BIGINT NOT NULL, actor TEXT NOT NULL, tenant TEXT, task TEXT,
            action TEXT NOT NULL, rule TEXT, detail TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
        CREATE INDEX audit_task ON audit (task, seq);
        CREATE TABLE audit_head (id BIGINT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL);
        INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
        CREATE TABLE policy (id BIGINT PRIMARY KEY, json TEXT NOT NULL, set_at BIGINT NOT NULL, actor TEXT);
        CREATE TABLE nodes (
            name TEXT PRIMARY KEY, cpu_m BIGINT NOT NULL, mem_b BIGINT NOT NULL, ext TEXT, labels TEXT,
            reserved TEXT, last_heartbeat BIGINT NOT NULL, epoch BIGINT NOT NULL, started_at BIGINT NOT NULL,
            owner TEXT, draining BIGINT NOT NULL);
        CREATE TABLE locks (key TEXT PRIMARY KEY, task TEXT NOT NULL, at BIGINT NOT NULL);
        CREATE TABLE cache (key TEXT PRIMARY KEY, result TEXT NOT NULL, task TEXT, created_at BIGINT NOT NULL);
        CREATE TABLE buckets (key TEXT PRIMARY KEY, tokens REAL NOT NULL, updated_ms BIGINT NOT NULL);
        CREATE TABLE workflows (
            id TEXT PRIMARY KEY, name TEXT NOT NULL, tenant TEXT NOT NULL, state TEXT NOT NULL, spec TEXT NOT NULL,
            input TEXT NOT NULL, reason TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
            traceparent TEXT, submitter TEXT);
        CREATE TABLE spans (
            id INTEGER PRIMARY KEY AUTOINCREMENT, trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_span TEXT,
            name TEXT NOT NULL, task TEXT, start_ns BIGINT NOT NULL, end_ns BIGINT NOT NULL, attrs TEXT);
        CREATE INDEX spans_trace ON spans (trace_id);
        CREATE TABLE usage (
            tenant TEXT PRIMARY KEY, cpu_m BIGINT NOT NULL, mem_b BIGINT NOT NULL, tasks BIGINT NOT NULL,
            queued BIGINT NOT NULL);
        """,
        // 2: durable counters, bumped inside the transactions that do the counted work (metrics across processes).
        """
        CREATE TABLE counters (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
        """,
        // 3: the queue in the scheduler's order, so a round reads its page of the queue from the index instead
        // of sorting every queued task (630 ms a round with 100,000 queued); it also serves lookups by state.
        """
        DROP INDEX IF EXISTS tasks_state;
        CREATE INDEX tasks_queue ON tasks (state, priority DESC, created_at, id);
        """,
    ]

    static func translate(_ sql: String, to dialect: SQLDialect) -> String {
        guard dialect == .postgres else { return sql }
        return sql
            .replacingAll("INTEGER PRIMARY KEY AUTOINCREMENT", with: "BIGSERIAL PRIMARY KEY")
            .replacingAll(" BLOB", with: " BYTEA")
            .replacingAll(" REAL", with: " DOUBLE PRECISION")
    }

    /// Applies the migrations not applied yet, each in its own transaction. Safe to run concurrently from
    /// several processes: the version is re-read inside the write transaction.
    static func migrate(_ db: Database) throws {
        for (i, sql) in migrations.enumerated() {
            let version = i + 1
            try db.write { tx in
                if db.dialect == .postgres {
                    // Serialize concurrent migrators (several agents starting at once).
                    _ = try tx.query("SELECT pg_advisory_xact_lock(727001)", [])
                }
                let current: Int
                if try tableExists(tx, "meta", dialect: db.dialect) {
                    current = Int(try tx.queryOne("SELECT value FROM meta WHERE key = 'schema_version'", [])?.text("value") ?? "0") ?? 0
                } else {
                    current = 0
                }
                guard current < version else { return }
                try tx.execute(translate(sql, to: db.dialect), [])
                try tx.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [.text(String(version))])
            }
        }
    }

    static func tableExists(_ tx: SQLExecutor, _ name: String, dialect: SQLDialect) throws -> Bool {
        switch dialect {
        case .sqlite:
            return try tx.queryOne("SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = ?", [.text(name)]) != nil
        case .postgres:
            return try tx.queryOne("SELECT 1 AS x FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?", [.text(name)]) != nil
        }
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        split(separatorString: target).joined(separator: replacement)
    }
}
