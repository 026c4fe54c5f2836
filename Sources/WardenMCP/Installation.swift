import WardenCore
import WardenEngine
import WardenPlugins
import WardenStore

/// Installs what the MCP module provides into an engine: the mcp plugin kind's executor (long-lived
/// sandboxed MCP servers, Warden as their client) and its registration probe (tool discovery).
public enum Installation {
    public static func install(into engine: Engine, stateDir: String) {
        engine.executors[.mcp] = MCPPluginExecutor()
        let probe: @Sendable (PluginRecord) throws(WardenError) -> [PluginManifest.Tool] = MCPPluginExecutor.discover
        engine.registry.probes[.mcp] = probe
        engine.agentGateway = AgentSockets(engine: engine, stateDir: stateDir)
    }
}
