import WardenEngine

/// Installs what the MCP module provides into an engine.
public enum Installation {
    public static func install(into engine: Engine, stateDir: String) {}
}
