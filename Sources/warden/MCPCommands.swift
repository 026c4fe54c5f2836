/// (filled in by its capability)
enum MCPCommands {
    static let all: [Command] = []
}
