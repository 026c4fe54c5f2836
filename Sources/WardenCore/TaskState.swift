/// The task lifecycle of DESIGN §5. The legal transitions are data (`TaskState.transitions`) so that the
/// store can refuse an illegal one and tests can enumerate them.
public enum TaskState: String, Sendable, Codable, CaseIterable, Hashable {
    case submitted
    case rejected
    case awaitingApproval = "awaiting_approval"
    case queued
    case placed
    case running
    case succeeded
    case failed
    case dead
    case inDoubt = "in_doubt"
    case canceled

    /// No further transition happens on its own (an operator may still replay `dead` and `in_doubt`).
    public var isTerminal: Bool {
        switch self {
        case .succeeded, .dead, .rejected, .canceled, .inDoubt: true
        default: false
        }
    }

    /// Holding resources on a node.
    public var isActive: Bool { self == .placed || self == .running }

    public static let transitions: [TaskState: Set<TaskState>] = [
        .submitted: [.rejected, .awaitingApproval, .queued, .canceled],
        .awaitingApproval: [.queued, .rejected, .canceled],
        // queued → canceled also covers a failed dependency; queued → rejected an approval that timed out late.
        .queued: [.placed, .canceled, .rejected],
        // placed → queued: handed back (shutdown, lost lease of an idempotent task); → in_doubt: lost lease.
        .placed: [.running, .queued, .canceled, .failed, .inDoubt],
        .running: [.succeeded, .failed, .queued, .inDoubt, .canceled],
        // Any non-terminal state may be canceled (DESIGN §5), `failed` included.
        .failed: [.queued, .dead, .canceled],
        // Operator actions: `dlq replay` re-queues dead and in_doubt tasks with a fresh attempt budget.
        .dead: [.queued],
        .inDoubt: [.queued, .dead],
        .succeeded: [],
        .rejected: [],
        .canceled: [],
    ]

    public func canTransition(to next: TaskState) -> Bool {
        Self.transitions[self]?.contains(next) ?? false
    }

    public static func parse(_ text: String, field: String = "--state", code: ExitCode = .usage) throws(WardenError) -> TaskState {
        guard let s = TaskState(rawValue: text) else {
            let all = allCases.map(\.rawValue).joined(separator: ", ")
            throw WardenError.invalid(field, "unknown task state \(quoted(text)) (one of: \(all))", code: code)
        }
        return s
    }
}
