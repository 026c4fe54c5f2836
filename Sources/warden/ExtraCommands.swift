/// Commands added by later capabilities (plan, report, bench, workflow, explain, mcp).
enum ExtraCommands {
    static let all: [Command] = []
}
