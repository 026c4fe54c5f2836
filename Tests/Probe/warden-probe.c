// warden-probe: tries one thing a sandbox must forbid and prints what happened as one JSON line,
//
//   {"case":"mount","result":"blocked","errno":"EPERM","detail":"mount(tmpfs) on /tmp/warden-probe-Xa3"}
//
// so the same binary runs bare (the control: the thing must work there, or the case proves nothing) and
// inside `warden sandbox exec`. Modelled on bubblewrap's tests/try-syscall.c; only needs libc.
//
// result: "allowed"  the call did what it asks, or the kernel got past its permission checks and failed on
//                    the (deliberately harmless) arguments (e.g. ENOTTY for TIOCSTI on /dev/null);
//         "blocked"  it was refused (EPERM/EACCES/ENOSYS/…, killed by SIGSYS, not visible, not reachable);
//         "error"    the probe itself could not run the case (bad arguments, setup failure).
// Exit status: 0 allowed, 1 blocked, 2 error.
//
// Every case is harmless when it is allowed: it undoes what it did (unmounts, unlinks, kills its own
// children) and passes arguments the kernel rejects after the permission check where the real thing would
// change the host (kexec_load, init_module, pivot_root).
#define _GNU_SOURCE
#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#define KEYCTL_GET_KEYRING_ID 0
#define KEY_SPEC_PROCESS_KEYRING -2
#define KEY_SPEC_USER_KEYRING -4

static const char *case_name = "?";

static const char *errno_name(int e) {
    switch (e) {
    case 0: return "";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case E2BIG: return "E2BIG";
    case ENOEXEC: return "ENOEXEC";
    case EBADF: return "EBADF";
    case ECHILD: return "ECHILD";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case EINVAL: return "EINVAL";
    case EMFILE: return "EMFILE";
    case ENOTTY: return "ENOTTY";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case ENOSYS: return "ENOSYS";
    case ENOKEY: return "ENOKEY";
    case ESTALE: return "ESTALE";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case ENETUNREACH: return "ENETUNREACH";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case EUSERS: return "EUSERS";
    default: {
        static char buf[16];
        snprintf(buf, sizeof buf, "E%d", e);
        return buf;
    }
    }
}

// Prints the JSON line and exits with 0 (allowed), 1 (blocked) or 2 (error).
__attribute__((noreturn, format(printf, 3, 4)))
static void report(const char *result, int err, const char *fmt, ...) {
    char detail[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    char esc[4096];
    size_t j = 0;
    for (size_t i = 0; detail[i] && j + 7 < sizeof esc; i++) {
        unsigned char c = (unsigned char)detail[i];
        if (c == '"' || c == '\\') { esc[j++] = '\\'; esc[j++] = (char)c; }
        else if (c < 0x20 || c >= 0x7f) j += (size_t)snprintf(esc + j, sizeof esc - j, "\\u%04x", c);
        else esc[j++] = (char)c;
    }
    esc[j] = 0;
    printf("{\"case\":\"%s\",\"result\":\"%s\",\"errno\":\"%s\",\"detail\":\"%s\"}\n", case_name, result,
           errno_name(err), esc);
    fflush(stdout);
    _exit(strcmp(result, "allowed") == 0 ? 0 : strcmp(result, "blocked") == 0 ? 1 : 2);
}

#define ALLOWED(...) report("allowed", 0, __VA_ARGS__)
#define BLOCKED(e, ...) report("blocked", (e), __VA_ARGS__)
#define ERROR(e, ...) report("error", (e), __VA_ARGS__)

// A syscall's answer: success, or an errno that only comes after the kernel's permission checks, is
// "allowed"; a refusal (EPERM, EACCES, ENOSYS: what seccomp returns or a missing capability causes) is
// "blocked". `reached` lists errnos that prove the kernel got past its checks for this call.
static void verdict(const char *what, long rc, int err, const int *reached) {
    if (rc >= 0) ALLOWED("%s succeeded (%ld)", what, rc);
    for (const int *r = reached; r && *r; r++)
        if (*r == err) report("allowed", err, "%s reached the kernel past its permission checks: %s", what, strerror(err));
    BLOCKED(err, "%s: %s", what, strerror(err));
}

// Evaluates `call` first, then reads errno (a function argument list has no evaluation order).
#define VERDICT(what, call, reached) \
    do { \
        errno = 0; \
        long rc_ = (long)(call); \
        int e_ = errno; \
        verdict((what), rc_, e_, (reached)); \
    } while (0)

static void need(int argc, int n, const char *usage) {
    if (argc < n) ERROR(EINVAL, "usage: warden-probe %s", usage);
}

// Runs `fn` in a forked child and returns its wait status (children keep the probe itself untouched).
static int in_child(int (*fn)(void)) {
    fflush(stdout);
    pid_t p = fork();
    if (p < 0) ERROR(errno, "fork: %s", strerror(errno));
    if (p == 0) _exit(fn());
    int st = 0;
    while (waitpid(p, &st, 0) < 0 && errno == EINTR) {}
    return st;
}

// --- files -------------------------------------------------------------------------------------------

static void c_read(int argc, char **argv) {
    need(argc, 3, "read PATH");
    int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
    if (fd < 0) BLOCKED(errno, "open %s: %s", argv[2], strerror(errno));
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) BLOCKED(errno, "read %s: %s", argv[2], strerror(errno));
    ALLOWED("read %zd bytes of %s", n, argv[2]);
}

static void c_list(int argc, char **argv) {
    need(argc, 3, "list DIR");
    DIR *d = opendir(argv[2]);
    if (!d) BLOCKED(errno, "opendir %s: %s", argv[2], strerror(errno));
    int n = 0;
    while (readdir(d)) n++;
    ALLOWED("%s lists %d entries", argv[2], n - 2);
}

static void c_write(int argc, char **argv) {
    need(argc, 3, "write DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/.warden-probe-%d-%ld", argv[2], getpid(), (long)time(NULL));
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) BLOCKED(errno, "create in %s: %s", argv[2], strerror(errno));
    ssize_t n = write(fd, "x", 1);
    close(fd);
    unlink(path);   // leave nothing behind when run bare
    if (n != 1) BLOCKED(errno, "write in %s: %s", argv[2], strerror(errno));
    ALLOWED("created and removed a file in %s", argv[2]);
}

// --- processes ---------------------------------------------------------------------------------------

// Any process visible besides ourselves, our parent and pid 1 (inside: the sandbox's own init).
static void c_procs(int argc, char **argv) {
    DIR *d = opendir("/proc");
    if (!d) ERROR(errno, "opendir /proc: %s", strerror(errno));
    pid_t self = getpid(), parent = getppid();
    long host = argc >= 3 ? atol(argv[2]) : 0;
    int others = 0, total = 0, sawHost = 0;
    char list[512] = "";
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0) continue;
        total++;
        if (pid == host) sawHost = 1;
        if (pid == self || pid == parent || pid == 1) continue;
        others++;
        if (strlen(list) < sizeof list - 16) snprintf(list + strlen(list), sizeof list - strlen(list), " %ld", pid);
    }
    if (others || sawHost)
        ALLOWED("%d processes visible, %d besides self/parent/1%s:%s", total, others, sawHost ? " (host pid seen)" : "", list);
    BLOCKED(0, "only %d processes visible (self=%d parent=%d and pid 1)", total, self, parent);
}

static void c_kill(int argc, char **argv) {
    need(argc, 3, "kill PID [SIG]");
    pid_t pid = (pid_t)atol(argv[2]);
    int sig = argc >= 4 ? atoi(argv[3]) : SIGTERM;
    if (kill(pid, sig) == 0) ALLOWED("kill(%d, %d) delivered", pid, sig);
    BLOCKED(errno, "kill(%d, %d): %s", pid, sig, strerror(errno));
}

static int do_unshare_user(void) { return unshare(CLONE_NEWUSER) == 0 ? 0 : errno; }
static int do_unshare_mount(void) { return unshare(CLONE_NEWNS) == 0 ? 0 : errno; }

static void unshare_case(int (*fn)(void), const char *what) {
    int st = in_child(fn);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) ALLOWED("%s succeeded in a child", what);
    if (WIFEXITED(st)) BLOCKED(WEXITSTATUS(st), "%s: %s", what, strerror(WEXITSTATUS(st)));
    BLOCKED(0, "%s: child killed by signal %d", what, WTERMSIG(st));
}

static void c_unshare_user(int argc, char **argv) { (void)argc, (void)argv; unshare_case(do_unshare_user, "unshare(CLONE_NEWUSER)"); }
static void c_unshare_mount(int argc, char **argv) { (void)argc, (void)argv; unshare_case(do_unshare_mount, "unshare(CLONE_NEWNS)"); }

static void c_clone_newuser(int argc, char **argv) {
    (void)argc, (void)argv;
    fflush(stdout);
    long pid = syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), 0, 0, 0, 0);
    if (pid == 0) syscall(SYS_exit, 0);
    if (pid < 0) BLOCKED(errno, "clone(CLONE_NEWUSER): %s", strerror(errno));
    waitpid((pid_t)pid, NULL, 0);
    ALLOWED("clone(CLONE_NEWUSER) made child %ld", pid);
}

struct clone_args_v0 { uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls; };

static void c_clone3_newuser(int argc, char **argv) {
    (void)argc, (void)argv;
    struct clone_args_v0 a;
    memset(&a, 0, sizeof a);
    a.flags = CLONE_NEWUSER;
    a.exit_signal = SIGCHLD;
    fflush(stdout);
    long pid = syscall(SYS_clone3, &a, sizeof a);
    if (pid == 0) syscall(SYS_exit, 0);
    if (pid < 0) BLOCKED(errno, "clone3(CLONE_NEWUSER): %s", strerror(errno));
    waitpid((pid_t)pid, NULL, 0);
    ALLOWED("clone3(CLONE_NEWUSER) made child %ld", pid);
}

static void c_setns(int argc, char **argv) {
    (void)argc, (void)argv;
    int fd = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
    if (fd < 0) ERROR(errno, "open /proc/self/ns/uts: %s", strerror(errno));
    // Joining the namespace we are already in changes nothing, but still needs CAP_SYS_ADMIN over it.
    VERDICT("setns(own uts namespace)", setns(fd, CLONE_NEWUTS), NULL);
}

// --- mounts ------------------------------------------------------------------------------------------

static void c_mount(int argc, char **argv) {
    (void)argc, (void)argv;
    char dir[] = "/tmp/warden-probe-XXXXXX";
    if (!mkdtemp(dir)) ERROR(errno, "mkdtemp: %s", strerror(errno));
    if (mount("none", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=4k") == 0) {
        umount2(dir, MNT_DETACH);
        rmdir(dir);
        ALLOWED("mounted (and unmounted) a tmpfs on %s", dir);
    }
    int e = errno;
    rmdir(dir);
    BLOCKED(e, "mount tmpfs on %s: %s", dir, strerror(e));
}

static void c_pivot_root(int argc, char **argv) {
    (void)argc, (void)argv;
    // The permission check (may_mount) comes before the path lookup: ENOENT proves it passed.
    static const int reached[] = {ENOENT, EINVAL, EBUSY, 0};
    VERDICT("pivot_root", syscall(SYS_pivot_root, "/nonexistent-warden-probe", "/nonexistent-warden-probe"), reached);
}

static void c_fsopen(int argc, char **argv) {
    (void)argc, (void)argv;
    VERDICT("fsopen(tmpfs)", syscall(SYS_fsopen, "tmpfs", 1 /* FSOPEN_CLOEXEC */), NULL);
}

static void c_open_tree(int argc, char **argv) {
    (void)argc, (void)argv;
    VERDICT("open_tree(/tmp, OPEN_TREE_CLONE)", syscall(SYS_open_tree, AT_FDCWD, "/tmp", OPEN_TREE_CLONE | O_CLOEXEC), NULL);
}

// --- dangerous kernel interfaces ---------------------------------------------------------------------

struct io_uring_params_min { uint32_t sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle, features, wq_fd, resv[3]; uint64_t off[10]; uint64_t off2[10]; };

static void c_io_uring(int argc, char **argv) {
    (void)argc, (void)argv;
    struct io_uring_params_min p;
    memset(&p, 0, sizeof p);
    VERDICT("io_uring_setup", syscall(SYS_io_uring_setup, 1, &p), NULL);
}

static void c_bpf(int argc, char **argv) {
    (void)argc, (void)argv;
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_type = BPF_MAP_TYPE_ARRAY;
    a.key_size = 4;
    a.value_size = 4;
    a.max_entries = 1;
    VERDICT("bpf(BPF_MAP_CREATE)", syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a), NULL);
}

static void c_keyctl(int argc, char **argv) {
    (void)argc, (void)argv;
    static const int reached[] = {ENOKEY, 0};
    VERDICT("keyctl(KEYCTL_GET_KEYRING_ID)", syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0), reached);
}

static void c_add_key(int argc, char **argv) {
    (void)argc, (void)argv;
    // A key in the process keyring disappears with the process.
    VERDICT("add_key(user)", syscall(SYS_add_key, "user", "warden-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING), NULL);
}

static void c_request_key(int argc, char **argv) {
    (void)argc, (void)argv;
    static const int reached[] = {ENOKEY, 0};
    VERDICT("request_key(user)", syscall(SYS_request_key, "user", "warden-probe-none", NULL, KEY_SPEC_PROCESS_KEYRING), reached);
}

static void c_userfaultfd(int argc, char **argv) {
    (void)argc, (void)argv;
    VERDICT("userfaultfd", syscall(SYS_userfaultfd, O_CLOEXEC), NULL);
}

static void c_perf_event_open(int argc, char **argv) {
    (void)argc, (void)argv;
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.type = PERF_TYPE_SOFTWARE;
    a.config = PERF_COUNT_SW_TASK_CLOCK;
    a.disabled = 1;
    a.exclude_kernel = 1;   // self-monitoring that even perf_event_paranoid=2 allows an ordinary user
    a.exclude_hv = 1;
    VERDICT("perf_event_open(task clock, self)", syscall(SYS_perf_event_open, &a, 0, -1, -1, 0), NULL);
}

static void c_ptrace_attach(int argc, char **argv) {
    (void)argc, (void)argv;
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) ERROR(errno, "fork: %s", strerror(errno));
    if (child == 0) { for (;;) pause(); }
    long rc = ptrace(PTRACE_ATTACH, child, 0, 0);
    int e = errno;
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    waitpid(child, NULL, 0);
    verdict("ptrace(PTRACE_ATTACH, own child)", rc, e, NULL);
}

static int do_traceme(void) { return ptrace(PTRACE_TRACEME, 0, 0, 0) == 0 ? 0 : errno; }

static void c_ptrace_traceme(int argc, char **argv) {
    (void)argc, (void)argv;
    unshare_case(do_traceme, "ptrace(PTRACE_TRACEME)");
}

static void c_process_vm_readv(int argc, char **argv) {
    (void)argc, (void)argv;
    static volatile char secret[8] = "probe!!";
    char got[8] = {0};
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) ERROR(errno, "fork: %s", strerror(errno));
    if (child == 0) { for (;;) pause(); }
    struct iovec local = {got, sizeof got}, remote = {(void *)secret, sizeof secret};
    long rc = process_vm_readv(child, &local, 1, &remote, 1, 0);
    int e = errno;
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    verdict("process_vm_readv(own child)", rc, e, NULL);
}

static void c_open_by_handle_at(int argc, char **argv) {
    (void)argc, (void)argv;
    struct { struct file_handle h; unsigned char bytes[128]; } fh;
    memset(&fh, 0, sizeof fh);
    fh.h.handle_bytes = sizeof fh.bytes;
    int mount_id = 0;
    if (name_to_handle_at(AT_FDCWD, "/", &fh.h, &mount_id, 0) < 0) {
        // Not available here: a made-up handle still shows whether the call itself is let through.
        fh.h.handle_bytes = 8;
        fh.h.handle_type = 1;
    }
    int root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    static const int reached[] = {ESTALE, EINVAL, EOPNOTSUPP, 0};
    VERDICT("open_by_handle_at(/)", syscall(SYS_open_by_handle_at, root, &fh.h, O_RDONLY | O_CLOEXEC), reached);
}

static void c_init_module(int argc, char **argv) {
    (void)argc, (void)argv;
    static const int reached[] = {ENOEXEC, EINVAL, EFAULT, EBADMSG, 0};
    static const char junk[64] = "not an ELF module";
    VERDICT("init_module(junk)", syscall(SYS_init_module, junk, sizeof junk, ""), reached);
}

static void c_finit_module(int argc, char **argv) {
    (void)argc, (void)argv;
    static const int reached[] = {ENOEXEC, EINVAL, EFAULT, EBADMSG, EBADF, 0};
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    VERDICT("finit_module(/dev/null)", syscall(SYS_finit_module, fd, "", 0), reached);
}

static void c_delete_module(int argc, char **argv) {
    (void)argc, (void)argv;
    static const int reached[] = {ENOENT, 0};
    VERDICT("delete_module(nonexistent)", syscall(SYS_delete_module, "warden_probe_none", O_NONBLOCK), reached);
}

static void c_kexec_load(int argc, char **argv) {
    (void)argc, (void)argv;
    // Flag bit 8 is neither a KEXEC_* flag nor an architecture: EINVAL, checked after the capability.
    static const int reached[] = {EINVAL, 0};
    VERDICT("kexec_load(invalid flags)", syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0x100UL), reached);
}

static void c_personality(int argc, char **argv) {
    (void)argc, (void)argv;
    long rc = syscall(SYS_personality, (unsigned long)(PER_LINUX | ADDR_NO_RANDOMIZE));
    int e = errno;
    if (rc >= 0) syscall(SYS_personality, 0UL);
    verdict("personality(ADDR_NO_RANDOMIZE)", rc, e, NULL);
}

// TIOCSTI on /dev/null: the tty layer answers ENOTTY, seccomp EPERM. /dev/null also means the probe never
// pushes a byte into a real terminal when run bare.
static void tty_case(unsigned long cmd, const char *what) {
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) ERROR(errno, "open /dev/null: %s", strerror(errno));
    char c = 'x';
    static const int reached[] = {ENOTTY, EINVAL, 0};
    VERDICT(what, syscall(SYS_ioctl, fd, cmd, &c), reached);
}

static void c_tiocsti(int argc, char **argv) { (void)argc, (void)argv; tty_case(TIOCSTI, "ioctl(TIOCSTI)"); }
static void c_tiocsti_high(int argc, char **argv) {
    (void)argc, (void)argv;
    // The kernel reads cmd as a 32-bit int: 1<<32 | TIOCSTI is TIOCSTI to it, but not to a 64-bit compare.
    tty_case((1UL << 32) | TIOCSTI, "ioctl(1<<32 | TIOCSTI)");
}
static void c_tioclinux(int argc, char **argv) { (void)argc, (void)argv; tty_case(TIOCLINUX, "ioctl(TIOCLINUX)"); }

// The ia32 ABI through int 0x80: getpid (20 there). Killed by SIGSYS under Warden's filter.
static int do_int80(void) {
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
    if (ret == getpid()) return 0;
    return ret == -ENOSYS ? 38 : 99;
}

// The x32 ABI: x86_64 syscall numbers with bit 30 set (getpid). Kernels without CONFIG_X86_X32_ABI say ENOSYS.
static int do_x32(void) {
    long ret = syscall(0x40000000L | SYS_getpid);
    if (ret == getpid()) return 0;
    return errno == ENOSYS ? 38 : 99;
}

static void c_x32(int argc, char **argv) {
    (void)argc, (void)argv;
    int st = in_child(do_x32);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) ALLOWED("x32 getpid worked in a child");
    if (WIFSIGNALED(st)) BLOCKED(0, "child killed by signal %d%s", WTERMSIG(st), WTERMSIG(st) == SIGSYS ? " (SIGSYS)" : "");
    BLOCKED(WEXITSTATUS(st) == 38 ? ENOSYS : 0, "x32 getpid failed (child exit %d)", WEXITSTATUS(st));
}

// `int80 self` makes the call in the probe itself (the sandbox then reports reason "seccomp").
static void c_int80(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[2], "self") == 0) {
        int r = do_int80();
        if (r == 0) ALLOWED("int 0x80 getpid worked");
        BLOCKED(r == 38 ? ENOSYS : 0, "int 0x80 getpid failed (%d)", r);
    }
    int st = in_child(do_int80);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) ALLOWED("int 0x80 getpid worked in a child");
    if (WIFSIGNALED(st)) BLOCKED(0, "child killed by signal %d%s", WTERMSIG(st), WTERMSIG(st) == SIGSYS ? " (SIGSYS)" : "");
    BLOCKED(WEXITSTATUS(st) == 38 ? ENOSYS : 0, "int 0x80 getpid failed (child exit %d)", WEXITSTATUS(st));
}

// --- credentials, fds, environment ---------------------------------------------------------------------

static void c_caps(int argc, char **argv) {
    (void)argc, (void)argv;
    FILE *f = fopen("/proc/self/status", "re");
    if (!f) ERROR(errno, "open /proc/self/status: %s", strerror(errno));
    char line[256], detail[512] = "";
    unsigned long long any = 0;
    int nnp = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long long v;
        char key[32];
        if (sscanf(line, "%31[^:]:%*[ \t]%llx", key, &v) == 2 && strncmp(key, "Cap", 3) == 0) {
            any |= v;
            snprintf(detail + strlen(detail), sizeof detail - strlen(detail), "%s=%llx ", key, v);
        } else if (sscanf(line, "NoNewPrivs:%*[ \t]%d", &nnp) == 1) {
            snprintf(detail + strlen(detail), sizeof detail - strlen(detail), "NoNewPrivs=%d ", nnp);
        }
    }
    if (any == 0 && nnp == 1) BLOCKED(0, "%s", detail);
    ALLOWED("%s", detail);
}

static void c_fds(int argc, char **argv) {
    (void)argc, (void)argv;
    DIR *d = opendir("/proc/self/fd");
    if (!d) ERROR(errno, "opendir /proc/self/fd: %s", strerror(errno));
    char detail[1024] = "";
    int extra = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        int fd = atoi(e->d_name);
        if (fd == dirfd(d)) continue;
        char link[64], target[256] = "?";
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n >= 0) target[n] = 0;
        snprintf(detail + strlen(detail), sizeof detail - strlen(detail), "%d=%s ", fd, target);
        if (fd > 2) extra++;
    }
    if (extra) ALLOWED("%d fds beyond 0-2: %s", extra, detail);
    BLOCKED(0, "only %s", detail);
}

extern char **environ;

static void c_env(int argc, char **argv) {
    need(argc, 3, "env NAME");
    char names[1024] = "";
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        int len = eq ? (int)(eq - *e) : (int)strlen(*e);
        snprintf(names + strlen(names), sizeof names - strlen(names), "%.*s ", len, *e);
    }
    if (getenv(argv[2])) ALLOWED("%s is set; environment: %s", argv[2], names);
    BLOCKED(0, "%s is not set; environment: %s", argv[2], names);
}

// /proc/PID/FILE of our parent (inside the sandbox: pid 1, the init, a fork of Warden) or of PID: readable
// at all (environ, mem), or (cmdline) showing anything.
static void c_proc1(int argc, char **argv) {
    need(argc, 3, "proc1 environ|mem|cmdline [PID]");
    long pid = argc >= 4 ? atol(argv[3]) : (long)getppid();
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/%s", pid, argv[2]);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) BLOCKED(errno, "open %s: %s", path, strerror(errno));
    char buf[256];
    ssize_t n;
    if (strcmp(argv[2], "mem") == 0) {
        // Any mapped address will do: the first line of maps (itself ptrace-protected).
        char maps[64];
        unsigned long lo = 0;
        snprintf(maps, sizeof maps, "/proc/%ld/maps", pid);
        FILE *m = fopen(maps, "re");
        if (m && fscanf(m, "%lx-", &lo) != 1) lo = 0;
        if (m) fclose(m);
        if (lo == 0) ALLOWED("opened %s (no readable maps to pick an address)", path);
        n = pread(fd, buf, sizeof buf, (off_t)lo);
        if (n < 0) BLOCKED(errno, "opened %s but reading it failed: %s", path, strerror(errno));
        ALLOWED("read %zd bytes of pid %ld's memory at %#lx", n, pid, lo);
    }
    n = read(fd, buf, sizeof buf - 1);
    if (n < 0) BLOCKED(errno, "read %s: %s", path, strerror(errno));
    for (ssize_t i = 0; i < n; i++) if (buf[i] == 0) buf[i] = ' ';
    while (n > 0 && buf[n - 1] == ' ') n--;
    buf[n] = 0;
    if (n == 0) BLOCKED(0, "%s is empty", path);
    if (strcmp(argv[2], "environ") == 0) ALLOWED("read %zd bytes of %s", n, path);   // never echo secrets
    ALLOWED("%s: %s", path, buf);
}

// --- SysV IPC (the ipc namespace) --------------------------------------------------------------------

#include <sys/shm.h>

// `shm KEY` looks a segment up; `shm KEY make` creates it (0666, stays after exit); `shm KEY rm` removes it.
static void c_shm(int argc, char **argv) {
    need(argc, 3, "shm KEY [make|rm]");
    key_t key = (key_t)strtol(argv[2], NULL, 0);
    if (argc >= 4 && strcmp(argv[3], "make") == 0) {
        int id = shmget(key, 4096, IPC_CREAT | 0666);
        if (id < 0) ERROR(errno, "shmget(create): %s", strerror(errno));
        ALLOWED("created segment %d for key %#x", id, key);
    }
    int id = shmget(key, 0, 0);
    if (id < 0) BLOCKED(errno, "shmget(%#x): %s", key, strerror(errno));
    if (argc >= 4 && strcmp(argv[3], "rm") == 0) shmctl(id, IPC_RMID, NULL);
    ALLOWED("segment %d for key %#x is visible", id, key);
}

static void tick(const char *file, long i);

// `tick FILE SECONDS`: the foreground writer (what `escape` leaves behind, but as the payload itself).
static void c_tick(int argc, char **argv) {
    need(argc, 4, "tick FILE SECONDS");
    for (long i = 0; i < atoi(argv[3]) * 20L; i++) {
        tick(argv[2], i);
        usleep(50000);
    }
    ALLOWED("ticked for %s s", argv[3]);
}

// --- network -----------------------------------------------------------------------------------------

static void connect_case(int fd, struct sockaddr *sa, socklen_t len, const char *what) {
    fcntl(fd, F_SETFL, O_NONBLOCK);
    if (connect(fd, sa, len) == 0) ALLOWED("connected to %s", what);
    if (errno != EINPROGRESS) BLOCKED(errno, "connect %s: %s", what, strerror(errno));
    struct pollfd p = {fd, POLLOUT, 0};
    if (poll(&p, 1, 3000) != 1) BLOCKED(ETIMEDOUT, "connect %s: timed out", what);
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err == 0) ALLOWED("connected to %s", what);
    BLOCKED(err, "connect %s: %s", what, strerror(err));
}

static void c_tcp(int argc, char **argv) {
    need(argc, 4, "tcp HOST PORT");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) BLOCKED(errno, "socket(AF_INET): %s", strerror(errno));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)atoi(argv[3]));
    if (inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1) ERROR(EINVAL, "bad address %s", argv[2]);
    char what[128];
    snprintf(what, sizeof what, "tcp %s:%s", argv[2], argv[3]);
    connect_case(fd, (struct sockaddr *)&sa, sizeof sa, what);
}

static void c_unix_abstract(int argc, char **argv) {
    need(argc, 3, "unix-abstract NAME");
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) BLOCKED(errno, "socket(AF_UNIX): %s", strerror(errno));
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t n = strlen(argv[2]);
    if (n > sizeof sa.sun_path - 2) ERROR(EINVAL, "name too long");
    memcpy(sa.sun_path + 1, argv[2], n);   // sun_path[0] == 0: the abstract namespace
    char what[128];
    snprintf(what, sizeof what, "abstract unix @%s", argv[2]);
    connect_case(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n), what);
}

// --- resources ---------------------------------------------------------------------------------------

// Forks up to N children that sleep; "blocked" when fork fails first. Kills its children either way.
static void c_forkbomb(int argc, char **argv) {
    need(argc, 3, "forkbomb N");
    int max = atoi(argv[2]), made = 0, err = 0;
    pid_t *kids = calloc((size_t)(max > 0 ? max : 1), sizeof *kids);
    if (!kids) ERROR(ENOMEM, "calloc");
    fflush(stdout);
    for (; made < max; made++) {
        pid_t p = fork();
        if (p == 0) { for (;;) pause(); }
        if (p < 0) { err = errno; break; }
        kids[made] = p;
    }
    for (int i = 0; i < made; i++) kill(kids[i], SIGKILL);
    while (wait(NULL) > 0 || errno == EINTR) {}
    if (err) BLOCKED(err, "fork failed after %d children: %s", made, strerror(err));
    ALLOWED("forked %d children", made);
}

// Allocates and touches MB mebibytes.
static void c_memhog(int argc, char **argv) {
    need(argc, 3, "memhog MB");
    long mb = atol(argv[2]);
    for (long i = 0; i < mb; i++) {
        char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) BLOCKED(errno, "mmap failed after %ld MiB", i);
        memset(p, (int)i | 1, 1 << 20);
    }
    ALLOWED("touched %ld MiB", mb);
}

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

// Spins for S seconds of CPU time.
static void c_spin(int argc, char **argv) {
    need(argc, 3, "spin SECONDS");
    double want = atof(argv[2]);
    volatile unsigned long x = 0;
    while (cpu_seconds() < want) x++;
    ALLOWED("spun %.1f s of CPU", want);
}

// Writes BYTES bytes of 'x' to stdout (no JSON line: stdout is the payload), then exits 0.
static void c_flood(int argc, char **argv) {
    need(argc, 3, "flood BYTES");
    long long left = atoll(argv[2]);
    char buf[65536];
    memset(buf, 'x', sizeof buf);
    while (left > 0) {
        ssize_t n = write(1, buf, left < (long long)sizeof buf ? (size_t)left : sizeof buf);
        if (n <= 0) _exit(1);
        left -= n;
    }
    _exit(0);
}

static void tick(const char *file, long i) {
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) return;
    char n[32];
    int len = snprintf(n, sizeof n, "%ld\n", i);
    ssize_t w = write(fd, n, (size_t)len);
    (void)w;
    close(fd);
}

// setsid + double fork: the grandchild writes a counter to FILE every 50 ms for up to SECONDS, so it
// outlives the probe unless something kills it. The probe returns once the first tick is written, and
// reports the grandchild's pid (as the probe sees it).
static void c_escape(int argc, char **argv) {
    need(argc, 4, "escape FILE SECONDS");
    const char *file = argv[2];
    int secs = atoi(argv[3]);
    int p[2];
    if (pipe(p) < 0) ERROR(errno, "pipe: %s", strerror(errno));
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) ERROR(errno, "fork: %s", strerror(errno));
    if (child == 0) {
        setsid();
        if (fork() != 0) _exit(0);
        close(p[0]);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0), dup2(null, 1), dup2(null, 2);   // let go of the sandbox's pipes
        tick(file, 0);
        pid_t self = getpid();
        ssize_t w = write(p[1], &self, sizeof self);
        (void)w;
        syscall(SYS_close_range, 3U, ~0U, 0U);        // and of anything else (Foundation's exit socket, bare)
        for (long i = 1; i < secs * 20L; i++) {
            usleep(50000);
            tick(file, i);
        }
        _exit(0);
    }
    close(p[1]);
    pid_t g = -1;
    ssize_t n = read(p[0], &g, sizeof g);
    waitpid(child, NULL, 0);
    if (n != sizeof g || g <= 0) ERROR(errno, "no grandchild");
    ALLOWED("grandchild %d detached (setsid + double fork) and writes %s", g, file);
}

// -------------------------------------------------------------------------------------------------------

struct probe_case { const char *name; void (*run)(int, char **); };

static const struct probe_case cases[] = {
    {"read", c_read}, {"list", c_list}, {"write", c_write},
    {"procs", c_procs}, {"kill", c_kill},
    {"unshare-user", c_unshare_user}, {"unshare-mount", c_unshare_mount}, {"clone-newuser", c_clone_newuser},
    {"clone3-newuser", c_clone3_newuser}, {"setns", c_setns},
    {"mount", c_mount}, {"pivot_root", c_pivot_root}, {"fsopen", c_fsopen}, {"open_tree", c_open_tree},
    {"io_uring_setup", c_io_uring}, {"bpf", c_bpf}, {"keyctl", c_keyctl}, {"add_key", c_add_key},
    {"request_key", c_request_key}, {"userfaultfd", c_userfaultfd}, {"perf_event_open", c_perf_event_open},
    {"ptrace-attach", c_ptrace_attach}, {"ptrace-traceme", c_ptrace_traceme},
    {"process_vm_readv", c_process_vm_readv}, {"open_by_handle_at", c_open_by_handle_at},
    {"init_module", c_init_module}, {"finit_module", c_finit_module}, {"delete_module", c_delete_module},
    {"kexec_load", c_kexec_load}, {"personality", c_personality},
    {"tiocsti", c_tiocsti}, {"tiocsti-high", c_tiocsti_high}, {"tioclinux", c_tioclinux}, {"int80", c_int80}, {"x32", c_x32},
    {"caps", c_caps}, {"fds", c_fds}, {"env", c_env}, {"proc1", c_proc1},
    {"shm", c_shm}, {"tick", c_tick},
    {"tcp", c_tcp}, {"unix-abstract", c_unix_abstract},
    {"forkbomb", c_forkbomb}, {"memhog", c_memhog}, {"spin", c_spin}, {"flood", c_flood}, {"escape", c_escape},
};

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--cases") == 0) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) printf("%s\n", cases[i].name);
        return argc < 2 ? 2 : 0;
    }
    case_name = argv[1];
    // Whatever started us may have blocked signals (Foundation's Process passes its mask on): start clean.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (strcmp(cases[i].name, argv[1]) == 0) cases[i].run(argc, argv);
    ERROR(EINVAL, "unknown case");
}
