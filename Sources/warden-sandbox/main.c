// warden-sandbox: the small helper Warden spawns to launch each sandbox from a clean, single-threaded
// address space. Not meant to be run by hand; see Sources/CWardenLinux/warden_helper.c.
#include "warden_linux.h"

int main(int argc, char **argv) { return warden_helper_main(argc, argv); }
