// fdexec FILE… -- CMD ARG…: opens each FILE read-only on fds 10, 11, … and execs CMD. For hyperfine -N,
// which runs commands without a shell: `bwrap --add-seccomp-fd 10` needs the BPF on a fresh fd (and at
// offset 0) in every run. Its own cost is measured by the benchmark (`fdexec -- /bin/true`).
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int i = 1, fd = 10;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++, fd++) {
        int f = open(argv[i], O_RDONLY);
        if (f < 0 || dup2(f, fd) < 0) { perror(argv[i]); return 127; }
        if (f != fd) close(f);
    }
    if (i + 1 >= argc) { fprintf(stderr, "usage: fdexec FILE… -- CMD ARG…\n"); return 127; }
    execv(argv[i + 1], argv + i + 1);
    perror(argv[i + 1]);
    return 127;
}
