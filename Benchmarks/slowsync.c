// A slow disk for `submit-stores.sh`: LD_PRELOAD'ed, it adds SLOWSYNC_US microseconds (default 3300, the
// slowest fsync measured on machines of this kind) to every fsync and fdatasync, so the group-commit
// figure can be read on a slow disk as on a fast one in the same run.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

static void delay(void) {
    const char *s = getenv("SLOWSYNC_US");
    long us = s ? atol(s) : 3300;
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

int fdatasync(int fd) {
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    delay();
    return real(fd);
}

int fsync(int fd) {
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    delay();
    return real(fd);
}
