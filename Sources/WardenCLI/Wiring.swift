import WardenCore
import WardenEngine
import WardenMCP
import WardenPlugins
import WardenStore

/// Connects the parts of different modules that the engine only knows through protocols: the executors of
/// the dylib and mcp plugin kinds, the agent gateway, and leader election on PostgreSQL.
enum Wiring {
    static func install(_ engine: Engine, stateDir: String) {
        WardenMCP.Installation.install(into: engine, stateDir: stateDir)
        PluginHostCommands.install(engine)
    }

    static func leaderElection(engine: Engine, ctx: Context) -> LeaderElection? {
        #if WARDEN_POSTGRES
        if engine.store.db.dialect == .postgres { return PostgresLeader(store: engine.store) }
        #endif
        return nil
    }
}
