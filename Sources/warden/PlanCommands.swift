/// (filled in by its capability)
enum PlanCommands {
    static let all: [Command] = []
}
