import Glibc

// Warden's command line. Everything happens in CLI.main; this only passes the arguments and exits.
signal(SIGPIPE, SIG_IGN)
exit(CLI.main(CommandLine.arguments))
