/// (filled in by its capability)
enum BenchCommands {
    static let all: [Command] = []
}
