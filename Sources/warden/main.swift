import Glibc
import WardenCLI

// Warden's command line, statically linked. Everything happens in CLI.main; this only passes the arguments
// and exits.
signal(SIGPIPE, SIG_IGN)
exit(CLI.main(CommandLine.arguments))
