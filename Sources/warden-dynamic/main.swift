import Glibc
import WardenCLI

// The same command line as `warden`, dynamically linked: `warden` hands it the commands that load plugin
// libraries or libpq (see Sources/WardenCLI/Linkage.swift).
signal(SIGPIPE, SIG_IGN)
exit(CLI.main(CommandLine.arguments))
