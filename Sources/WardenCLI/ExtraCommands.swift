/// Commands of the later capabilities, one file per area so each grows on its own.
enum ExtraCommands {
    static let all: [Command] = PlanCommands.all + BenchCommands.all + EngineBenchCommands.all + MCPCommands.all + PluginHostCommands.all + WorkflowCommands.all
}
