/// (filled in by its capability)
enum PluginHostCommands {
    static let all: [Command] = []
}
