/// (filled in by its capability)
enum WorkflowCommands {
    static let all: [Command] = []
}
