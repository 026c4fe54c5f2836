// swift-tools-version:6.1
// Warden: a control plane that schedules and isolates untrusted tool and agent code. Zero package
// dependencies: system libraries come in through system-library targets, our own C through CWardenLinux.
import PackageDescription

let postgres = "Postgres"
let postgresSettings: [SwiftSetting] = [.define("WARDEN_POSTGRES", .when(traits: [postgres]))]

let package = Package(
    name: "Warden",
    products: [
        .executable(name: "warden", targets: ["warden"]),
        .executable(name: "warden-dynamic", targets: ["warden-dynamic"]),
        .executable(name: "warden-sandbox", targets: ["warden-sandbox"]),
    ],
    traits: [
        .trait(name: postgres, description: "Build the libpq-backed PostgreSQL store (needs libpq-dev)."),
        .default(enabledTraits: []),
    ],
    targets: [
        // System libraries.
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        .systemLibrary(name: "CSQLite3", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CLibPQ", providers: [.apt(["libpq-dev"])]),   // headers only; dlopen at run time
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // The dylib plugin ABI: a module over include/warden_plugin.h (header only, nothing to link).
        .systemLibrary(name: "CWardenPlugin"),
        // Our C: the fork→exec child side and syscalls Glibc lacks.
        .target(name: "CWardenLinux", cSettings: [.define("_GNU_SOURCE")]),
        // The launch helper: each sandbox is cloned from this small process, not from Warden.
        .executableTarget(name: "warden-sandbox", dependencies: ["CWardenLinux"], cSettings: [.define("_GNU_SOURCE")],
                          // Static: no dynamic loader work on the path of every spawn.
                          linkerSettings: [.unsafeFlags(["-static-executable"])]),

        .target(name: "WardenCore"),
        .target(name: "WardenSystem", dependencies: ["WardenCore", "CWardenLinux", "CCrypto"]),
        .target(name: "WardenSandbox", dependencies: ["WardenCore", "WardenSystem", "CSeccomp", "CWardenLinux"]),
        .target(name: "WardenStore",
                dependencies: ["WardenCore", "WardenSystem", "CSQLite3",
                               .target(name: "CLibPQ", condition: .when(traits: [postgres]))],
                swiftSettings: postgresSettings),
        .target(name: "WardenScheduler", dependencies: ["WardenCore"]),
        .target(name: "WardenPlugins",
                dependencies: ["WardenCore", "WardenSystem", "WardenSandbox", "WardenStore", "CWardenPlugin"]),
        .target(name: "WardenEngine",
                dependencies: ["WardenCore", "WardenSystem", "WardenSandbox", "WardenStore", "WardenScheduler",
                               "WardenPlugins"]),
        .target(name: "WardenMCP", dependencies: ["WardenCore", "WardenSystem", "WardenPlugins", "WardenEngine"]),
        // The command line, linked twice. `warden` is a static executable: it starts in ~1 ms instead of ~3
        // (no dynamic loader, no relocations of a 30 MB image), which is most of a one-shot `sandbox exec`.
        // A static glibc process cannot dlopen a library that needs libc.so, so the commands that may load
        // plugin libraries or libpq run in `warden-dynamic`, the same program linked dynamically (see
        // Sources/WardenCLI/Linkage.swift).
        .target(name: "WardenCLI",
                dependencies: ["WardenCore", "WardenSystem", "WardenSandbox", "WardenStore",
                               "WardenScheduler", "WardenPlugins", "WardenEngine", "WardenMCP"],
                swiftSettings: postgresSettings),
        // Release only: a debug build has no static Swift stdlib (`--static-swift-stdlib`) to link Foundation
        // from, and nothing measured runs it.
        .executableTarget(name: "warden", dependencies: ["WardenCLI"],
                          linkerSettings: [.unsafeFlags(["-static-executable"], .when(configuration: .release))]),
        .executableTarget(name: "warden-dynamic", dependencies: ["WardenCLI"]),
        // Test helper (C, libc only): tries one forbidden thing and prints one JSON line; the escape suite runs
        // it bare and inside the sandbox. Lives under Tests/ because only tests use it.
        // Linked -static-executable: SwiftPM links every executable with the Swift driver, which would make it
        // need libswiftCore, and /opt/swift is not inside the sandbox.
        .executableTarget(name: "warden-probe", path: "Tests/Probe",
                          linkerSettings: [.unsafeFlags(["-static-executable"])]),

        .testTarget(name: "WardenCoreTests", dependencies: ["WardenCore"]),
        .testTarget(name: "WardenSystemTests", dependencies: ["WardenSystem"]),
        .testTarget(name: "WardenSandboxTests", dependencies: ["WardenSandbox", "WardenSystem"]),
        .testTarget(name: "WardenStoreTests", dependencies: ["WardenStore"], swiftSettings: postgresSettings),
        .testTarget(name: "WardenSchedulerTests", dependencies: ["WardenScheduler"]),
        .testTarget(name: "WardenPluginsTests",
                    dependencies: ["WardenPlugins", "WardenCore", "WardenSandbox", "WardenStore", "CWardenPlugin"]),
        .testTarget(name: "WardenEngineTests", dependencies: ["WardenEngine"]),
        .testTarget(name: "WardenMCPTests", dependencies: ["WardenMCP"]),
        .testTarget(name: "WardenIntegrationTests", dependencies: ["WardenCore", "WardenSystem"]),
    ],
    swiftLanguageModes: [.v6]
)
