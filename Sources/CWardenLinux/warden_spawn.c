// The sandbox launcher's C side. See include/warden_linux.h for the contract.
//
// Parent side (warden_spawn): pipes, clone3 into new namespaces (fallback: clone), uid/gid maps and cgroup
// attach from the parent, then release the child through the sync pipe and read the error pipe to EOF.
//
// Child side (child_main): async-signal-safe calls only, no allocation. Steps, in order:
//   reset signals → wait for release → cgroup ns → mount plan + pivot_root → hostname → loopback →
//   [pid-1 init forks the payload] → caps → ids → rlimits → stdio → close fds → chdir →
//   no_new_privs → seccomp (last) → execve.
// Any failure writes {step, errno, index} to the error pipe and _exit(127)s.

#include "warden_linux.h"

#include <errno.h>
#include <grp.h>
#include <malloc.h>
#include <pthread.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV 0x00000004
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

struct w_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size,
        cgroup;
};

struct w_mount_attr {
    uint64_t attr_set, attr_clr, propagation, userns_fd;
};

static const char *const step_names[WARDEN_STEP_COUNT] = {
    [WARDEN_STEP_NONE] = "none",
    [WARDEN_STEP_PIPE] = "pipe",
    [WARDEN_STEP_CLONE] = "clone",
    [WARDEN_STEP_SETGROUPS_FILE] = "setgroups_file",
    [WARDEN_STEP_UID_MAP] = "uid_map",
    [WARDEN_STEP_GID_MAP] = "gid_map",
    [WARDEN_STEP_CGROUP_ATTACH] = "cgroup_attach",
    [WARDEN_STEP_SYNC] = "sync",
    [WARDEN_STEP_CGROUP_NS] = "cgroup_namespace",
    [WARDEN_STEP_MOUNT_PRIVATE] = "mount_private",
    [WARDEN_STEP_MOUNT_ROOT] = "mount_root",
    [WARDEN_STEP_BIND] = "bind_mount",
    [WARDEN_STEP_REMOUNT_RO] = "remount_readonly",
    [WARDEN_STEP_TMPFS] = "mount_tmpfs",
    [WARDEN_STEP_PROC] = "mount_proc",
    [WARDEN_STEP_PIVOT_ROOT] = "pivot_root",
    [WARDEN_STEP_UMOUNT_OLD] = "umount_oldroot",
    [WARDEN_STEP_HOSTNAME] = "sethostname",
    [WARDEN_STEP_LOOPBACK] = "loopback",
    [WARDEN_STEP_FORK_INIT] = "fork_init",
    [WARDEN_STEP_CAPS] = "drop_capabilities",
    [WARDEN_STEP_SETGROUPS] = "setgroups",
    [WARDEN_STEP_SETGID] = "setgid",
    [WARDEN_STEP_SETUID] = "setuid",
    [WARDEN_STEP_RLIMIT] = "setrlimit",
    [WARDEN_STEP_STDIO] = "stdio",
    [WARDEN_STEP_CLOSE_FDS] = "close_fds",
    [WARDEN_STEP_CHDIR] = "chdir",
    [WARDEN_STEP_NO_NEW_PRIVS] = "no_new_privs",
    [WARDEN_STEP_SECCOMP] = "seccomp",
    [WARDEN_STEP_EXEC] = "execve",
    [WARDEN_STEP_HELPER] = "warden-sandbox helper",
    [WARDEN_STEP_NETNS] = "setns_network",
};

const char *warden_step_name(int step) {
    if (step < 0 || step >= WARDEN_STEP_COUNT || step_names[step] == NULL) return "unknown";
    return step_names[step];
}

// ---------------------------------------------------------------------------------------------------------
// Child side. Everything below until warden_spawn runs in the cloned child: no malloc, no stdio, no locks.

static void child_fail(int fd, int step, int err, int index) {
    warden_child_error e = {step, err, index};
    ssize_t ignored = write(fd, &e, sizeof e);
    (void)ignored;
    _exit(127);
}

static size_t w_strlen(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

// buf = a + b, bounded; returns 0 or -1 (ENAMETOOLONG).
static int join_path(char *buf, size_t cap, const char *a, const char *b) {
    size_t la = w_strlen(a), lb = w_strlen(b);
    if (la + lb + 1 > cap) return -1;
    memcpy(buf, a, la);
    memcpy(buf + la, b, lb + 1);
    return 0;
}

// Make a bind mount read-only (recursively where the kernel can), keeping the flags the kernel locked.
// The mount flags of `path` (ST_* bits) from the raw statfs syscall: glibc's statvfs reads /proc/mounts
// with stdio and malloc, which a child of a multithreaded process must not do.
static int mount_flags_of(const char *path, unsigned long *out) {
    struct statfs sf;
    if (syscall(SYS_statfs, path, &sf) < 0) return -1;
    *out = (unsigned long)sf.f_flags;
    return 0;
}

static int remount_readonly(const char *path) {
    struct w_mount_attr attr = {MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, 0, 0};
    if (syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &attr, sizeof attr) == 0) return 0;
    if (errno != ENOSYS && errno != EINVAL) return -1;
    unsigned long f;
    if (mount_flags_of(path, &f) < 0) return -1;
    unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV;
    if (f & ST_NOEXEC) flags |= MS_NOEXEC;
    if (f & ST_NOATIME) flags |= MS_NOATIME;
    if (f & ST_NODIRATIME) flags |= MS_NODIRATIME;
    if (f & ST_RELATIME) flags |= MS_RELATIME;
    return mount(NULL, path, NULL, flags, NULL);
}

static int set_mount_flags(const char *path, unsigned long extra) {
    unsigned long f;
    if (mount_flags_of(path, &f) < 0) return -1;
    unsigned long flags = MS_REMOUNT | MS_BIND | extra;
    if (f & ST_RDONLY) flags |= MS_RDONLY;
    if (f & ST_NOEXEC) flags |= MS_NOEXEC;
    if (f & ST_NOSUID) flags |= MS_NOSUID;
    if (f & ST_NODEV) flags |= MS_NODEV;
    if (f & ST_NOATIME) flags |= MS_NOATIME;
    if (f & ST_RELATIME) flags |= MS_RELATIME;
    return mount(NULL, path, NULL, flags, NULL);
}

static void setup_mounts(const warden_spawn_spec *s, int errfd) {
    char path[4096];
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) child_fail(errfd, WARDEN_STEP_MOUNT_PRIVATE, errno, -1);
    // The skeleton bound onto itself becomes a mount point we can pivot into.
    if (mount(s->root_dir, s->root_dir, NULL, MS_BIND | MS_REC, NULL) < 0)
        child_fail(errfd, WARDEN_STEP_MOUNT_ROOT, errno, -1);
    for (int i = 0; i < s->n_mounts; i++) {
        const warden_mount *m = &s->mounts[i];
        if (join_path(path, sizeof path, s->root_dir, m->target) < 0) child_fail(errfd, WARDEN_STEP_BIND, ENAMETOOLONG, i);
        switch (m->kind) {
        case WARDEN_MOUNT_BIND_RO:
        case WARDEN_MOUNT_BIND_RW:
        case WARDEN_MOUNT_DEV:
            if (mount(m->source, path, NULL, MS_BIND | MS_REC, NULL) < 0) child_fail(errfd, WARDEN_STEP_BIND, errno, i);
            if (m->kind == WARDEN_MOUNT_BIND_RO) {
                if (remount_readonly(path) < 0) child_fail(errfd, WARDEN_STEP_REMOUNT_RO, errno, i);
            } else if (m->kind == WARDEN_MOUNT_BIND_RW) {
                if (set_mount_flags(path, MS_NOSUID | MS_NODEV) < 0) child_fail(errfd, WARDEN_STEP_BIND, errno, i);
            } else {
                if (set_mount_flags(path, MS_NOSUID | MS_NOEXEC) < 0) child_fail(errfd, WARDEN_STEP_BIND, errno, i);
            }
            break;
        case WARDEN_MOUNT_TMPFS:
            if (mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, m->data) < 0)
                child_fail(errfd, WARDEN_STEP_TMPFS, errno, i);
            break;
        case WARDEN_MOUNT_PROC:
            if (mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                child_fail(errfd, WARDEN_STEP_PROC, errno, i);
            break;
        default:
            child_fail(errfd, WARDEN_STEP_BIND, EINVAL, i);
        }
    }
    if (chdir(s->root_dir) < 0) child_fail(errfd, WARDEN_STEP_PIVOT_ROOT, errno, -1);
    if (syscall(SYS_pivot_root, ".", ".") < 0) child_fail(errfd, WARDEN_STEP_PIVOT_ROOT, errno, -1);
    if (umount2(".", MNT_DETACH) < 0) child_fail(errfd, WARDEN_STEP_UMOUNT_OLD, errno, -1);
    if (chdir("/") < 0) child_fail(errfd, WARDEN_STEP_PIVOT_ROOT, errno, -1);
    if (s->root_read_only && set_mount_flags("/", MS_RDONLY | MS_NOSUID | MS_NODEV) < 0)
        child_fail(errfd, WARDEN_STEP_REMOUNT_RO, errno, -1);
}

// Brings `lo` up in the current network namespace; 0 or an errno.
static int set_loopback_up(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    int err = 0;
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) err = errno;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (!err && ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) err = errno;
    close(fd);
    return err;
}

static void loopback_up(int errfd) {
    int err = set_loopback_up();
    if (err) child_fail(errfd, WARDEN_STEP_LOOPBACK, err, -1);
}

int warden_netns_create(int want_loopback) {
    int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0) return -errno;
    int fd = -1, err = 0;
    if (unshare(CLONE_NEWNET) < 0) {
        err = errno;
    } else {
        if (want_loopback) err = set_loopback_up();
        if (!err) {
            fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
            if (fd < 0) err = errno;
        }
        // Back home whatever happened; a thread left in the new namespace would put later sockets there.
        if (setns(home, CLONE_NEWNET) < 0) abort();
    }
    close(home);
    if (err) {
        if (fd >= 0) close(fd);
        return -err;
    }
    return fd;
}

// Empties the bounding and ambient sets (needs CAP_SETPCAP) and then the permitted, effective and
// inheritable sets. The kernel does not clear them on setresuid here: uid 0 is not mapped in our user
// namespace, so the usual "root gives up its ids" rule never fires.
static int drop_all_caps(void) {
    for (int cap = 0; cap < 64; cap++) {
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0) continue;
        if (errno == EINVAL) break;   // past the kernel's last capability
        return -1;
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) return -1;
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    return (int)syscall(SYS_capset, &hdr, data);
}

// Raw syscalls, not glibc's setgroups/setresgid/setresuid: those run the setxid protocol for every thread
// glibc believes exists, under glibc locks. This child is a raw clone of a multi-threaded parent, so glibc
// still lists the parent's threads and a lock another thread held at clone time stays held forever (seen:
// a spawn hung in setgroups → __nptl_setxid → futex_wait). The raw syscall changes this thread only, which
// is the whole child.
static void set_ids(const warden_spawn_spec *s, int errfd) {
    if (!s->deny_setgroups && syscall(SYS_setgroups, 0, NULL) < 0) child_fail(errfd, WARDEN_STEP_SETGROUPS, errno, -1);
    if (syscall(SYS_setresgid, s->gid, s->gid, s->gid) < 0) child_fail(errfd, WARDEN_STEP_SETGID, errno, -1);
    if (syscall(SYS_setresuid, s->uid, s->uid, s->uid) < 0) child_fail(errfd, WARDEN_STEP_SETUID, errno, -1);
}

// Moves fd to a number >= 10 (O_CLOEXEC) so dup2 onto 0..3 cannot clobber it.
static int lift_fd(int fd) {
    if (fd < 0) return fd;
    return fcntl(fd, F_DUPFD_CLOEXEC, 10);
}

static void exec_payload(const warden_spawn_spec *s, int errfd) {
    if (s->drop_caps && drop_all_caps() < 0) child_fail(errfd, WARDEN_STEP_CAPS, errno, -1);
    for (int i = 0; i < s->n_rlimits; i++) {
        struct rlimit rl = {(rlim_t)s->rlimits[i].soft, (rlim_t)s->rlimits[i].hard};
        if (setrlimit(s->rlimits[i].resource, &rl) < 0) child_fail(errfd, WARDEN_STEP_RLIMIT, errno, i);
    }
    int in = lift_fd(s->stdin_fd), out = lift_fd(s->stdout_fd), err = lift_fd(s->stderr_fd),
        extra = lift_fd(s->extra_fd);
    if ((s->stdin_fd >= 0 && in < 0) || (s->stdout_fd >= 0 && out < 0) || (s->stderr_fd >= 0 && err < 0) ||
        (s->extra_fd >= 0 && extra < 0))
        child_fail(errfd, WARDEN_STEP_STDIO, errno, -1);
    int targets[4] = {in, out, err, extra};
    for (int i = 0; i < 4; i++) {
        if (targets[i] >= 0) {
            if (dup2(targets[i], i) < 0) child_fail(errfd, WARDEN_STEP_STDIO, errno, i);
        } else if (i < 3) {
            close(i);
        }
    }
    // Everything from 3 (or 4 with an extra fd) up is closed at exec; the error pipe is O_CLOEXEC already.
    unsigned int first = s->extra_fd >= 0 ? 4 : 3;
    if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
        child_fail(errfd, WARDEN_STEP_CLOSE_FDS, errno, -1);
    if (chdir(s->cwd ? s->cwd : "/") < 0) child_fail(errfd, WARDEN_STEP_CHDIR, errno, -1);
    if (s->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        child_fail(errfd, WARDEN_STEP_NO_NEW_PRIVS, errno, -1);
    for (int i = 0; i < s->n_filters; i++)
        if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &s->filters[i]) < 0)
            child_fail(errfd, WARDEN_STEP_SECCOMP, errno, i);
    execve(s->path, s->argv, s->envp);
    child_fail(errfd, WARDEN_STEP_EXEC, errno, -1);
}

// Zeroes [start, end) of our own memory (bounded: a bogus range is skipped, never a crash).
static void scrub(uintptr_t start, uintptr_t end) {
    if (start == 0 || end <= start || end - start > (1u << 20)) return;
    memset((void *)start, 0, end - start);
}

// pid 1 of the sandbox's pid namespace: reap everything, report the payload's status, exit. Its death makes
// the kernel kill every process left in the namespace. Non-dumpable and wiped (both before the payload is
// started, see child_main) and capability-less, so nothing inside can read its memory or environment
// through /proc/1.
static void run_init(pid_t payload, int status_fd) {
    drop_all_caps();
    // Keep only the status pipe: copies of stdio or the bind-source fds must not stay open here.
    if (status_fd > 0) syscall(SYS_close_range, 0, (unsigned)status_fd - 1, 0);
    syscall(SYS_close_range, (unsigned)status_fd + 1, ~0U, 0);
    for (;;) {
        int st = 0;
        pid_t w = waitpid(-1, &st, __WALL);
        if (w < 0) {
            if (errno == EINTR) continue;
            _exit(0);
        }
        if (w == payload) {
            int32_t v = st;
            ssize_t ignored = write(status_fd, &v, sizeof v);
            (void)ignored;
            _exit(0);
        }
    }
}

static void reset_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < _NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        syscall(SYS_rt_sigaction, sig, &sa, NULL, _NSIG / 8);
    }
    sigset_t none;
    sigemptyset(&none);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, _NSIG / 8);
}

struct payload_args {
    const warden_spawn_spec *s;
    int errfd, status_w;
};

static int payload_main(void *arg) {
    struct payload_args *a = arg;
    close(a->status_w);   // our own fd table: the init keeps its copy
    exec_payload(a->s, a->errfd);
    return 127;
}

static void child_main(const warden_spawn_spec *s, int errfd, int syncfd, int status_w) {
    reset_signals();
    if (s->die_with_parent) prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    char go = 0;
    ssize_t n;
    do {
        n = read(syncfd, &go, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) _exit(127);  // the parent died or gave up before releasing us
    close(syncfd);
    // v1: join the task cgroups by moving ourselves (single-threaded here), before anything else runs.
    for (int i = 0; i < s->n_cgroup_self_fds; i++)
        if (pwrite(s->cgroup_self_fds[i], "0", 1, 0) != 1) child_fail(errfd, WARDEN_STEP_CGROUP_ATTACH, errno, i);
    setsid();
    if (s->new_cgroup_ns && unshare(CLONE_NEWCGROUP) < 0) child_fail(errfd, WARDEN_STEP_CGROUP_NS, errno, -1);
    if (s->root_dir) setup_mounts(s, errfd);
    if (s->hostname && sethostname(s->hostname, w_strlen(s->hostname)) < 0)
        child_fail(errfd, WARDEN_STEP_HOSTNAME, errno, -1);
    if (s->loopback_up) loopback_up(errfd);
    // Mounts were made with the ids we were cloned with (root's bind sources need no search permission for
    // it); now take the sandbox ids. With uid 0 unmapped in our user namespace the kernel keeps the
    // namespace's capabilities across this change, so exec_payload drops them explicitly.
    if (s->set_ids) set_ids(s, errfd);
    // The id change cleared the parent-death signal; arm it again.
    if (s->die_with_parent) prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (s->use_init) {
        // Before the payload exists (no moment when it runs and this is not yet so): non-dumpable, and Warden's
        // argv and environment strings wiped from our copy, since /proc/1/cmdline is readable whatever the
        // dumpable flag (store URLs, paths, --env values). Nothing below needs them: argv/envp of the payload
        // live in the spec's own memory.
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        prctl(PR_SET_NAME, "warden-init", 0, 0, 0);   // /proc/1/comm and status, like cmdline below
        scrub(s->scrub_arg_start, s->scrub_arg_end);
        scrub(s->scrub_env_start, s->scrub_env_end);
        if (s->scrub_arg_end > s->scrub_arg_start + 12) memcpy((void *)s->scrub_arg_start, "warden-init", 12);
        // vfork-style (CLONE_VM | CLONE_VFORK) on a stack of its own: no second copy of Warden's page tables
        // (one is made by the first clone already; in a large `serve` process each copy costs). The payload
        // changes only per-task state (fds, creds, rlimits, seccomp: none is shared without CLONE_FILES,
        // CLONE_THREAD…) and its own stack until it execs or fails; the init waits meanwhile.
        enum { PAYLOAD_STACK = 256 * 1024 };
        void *stack = mmap(NULL, PAYLOAD_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (stack == MAP_FAILED) child_fail(errfd, WARDEN_STEP_FORK_INIT, errno, -1);
        struct payload_args a = {s, errfd, status_w};
        pid_t payload = clone(payload_main, (char *)stack + PAYLOAD_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
        if (payload < 0) child_fail(errfd, WARDEN_STEP_FORK_INIT, errno, -1);
        munmap(stack, PAYLOAD_STACK);
        run_init(payload, status_w);
    }
    exec_payload(s, errfd);
}

// ---------------------------------------------------------------------------------------------------------
// Parent side.

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int saved = errno;
    close(fd);
    if (n != (ssize_t)len) {
        errno = n < 0 ? saved : EIO;
        return -1;
    }
    return 0;
}

static void reap(pid_t pid) {
    int st;
    while (waitpid(pid, &st, __WALL) < 0 && errno == EINTR) {
    }
}

int warden_spawn(const warden_spawn_spec *s, warden_spawn_result *r) {
    memset(r, 0, sizeof *r);
    r->pid = -1;
    r->pidfd = -1;
    r->status_fd = -1;
    r->error.index = -1;
    uint64_t clone_flags = s->clone_flags;
    int errp[2], syncp[2], statp[2] = {-1, -1};
    if (pipe2(errp, O_CLOEXEC) < 0) goto pipe_fail0;
    if (pipe2(syncp, O_CLOEXEC) < 0) goto pipe_fail1;
    if (s->use_init && pipe2(statp, O_CLOEXEC) < 0) goto pipe_fail2;
    // A network namespace made ahead of time: this thread enters it just for the clone, so the child inherits
    // it instead of making one, and goes back home right after (setns(CLONE_NEWNET) changes only the calling
    // thread, so other threads of a larger process never see it).
    int home_netns = -1;
    if (s->netns_fd >= 0) {
        home_netns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (home_netns < 0 || setns(s->netns_fd, CLONE_NEWNET) < 0) {
            r->error.step = WARDEN_STEP_NETNS;
            r->error.err = errno;
            if (home_netns >= 0) close(home_netns);
            close(errp[0]);
            close(errp[1]);
            close(syncp[0]);
            close(syncp[1]);
            if (statp[0] >= 0) { close(statp[0]); close(statp[1]); }
            return -1;
        }
        clone_flags &= ~(uint64_t)CLONE_NEWNET;
    }

    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);

    int pidfd = -1;
    struct w_clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = clone_flags | CLONE_PIDFD;
    args.pidfd = (uint64_t)(uintptr_t)&pidfd;
    args.exit_signal = SIGCHLD;
    if (s->cgroup_dir_fd >= 0) {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = (uint64_t)s->cgroup_dir_fd;
    }
    pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof args);
    if (pid < 0 && (errno == ENOSYS || errno == E2BIG || (errno == EINVAL && s->cgroup_dir_fd >= 0))) {
        // Old kernel or no CLONE_INTO_CGROUP: plain clone, cgroup attach through cgroup.procs below.
        pidfd = -1;
        pid = (pid_t)syscall(SYS_clone, (unsigned long)(clone_flags | SIGCHLD), 0, 0, 0, 0);
    }
    if (pid == 0) {
        close(errp[0]);
        close(syncp[1]);
        if (statp[0] >= 0) close(statp[0]);
        child_main(s, errp[1], syncp[0], statp[1]);
        _exit(127);
    }
    int clone_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (home_netns >= 0) {
        // Staying in the sandbox's namespace would put this thread's later sockets there: not survivable.
        if (setns(home_netns, CLONE_NEWNET) < 0) abort();
        close(home_netns);
    }
    close(errp[1]);
    close(syncp[0]);
    if (statp[1] >= 0) close(statp[1]);
    if (pid < 0) {
        r->error.step = WARDEN_STEP_CLONE;
        r->error.err = clone_errno;
        close(errp[0]);
        close(syncp[1]);
        if (statp[0] >= 0) close(statp[0]);
        return -1;
    }
    if (pidfd < 0) pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    r->pid = pid;
    r->pidfd = pidfd;

    char path[64];
    int step = 0, err = 0;
    if (s->deny_setgroups) {
        snprintf(path, sizeof path, "/proc/%d/setgroups", pid);
        if (write_file(path, "deny") < 0) step = WARDEN_STEP_SETGROUPS_FILE, err = errno;
    }
    if (!step && s->uid_map) {
        snprintf(path, sizeof path, "/proc/%d/uid_map", pid);
        if (write_file(path, s->uid_map) < 0) step = WARDEN_STEP_UID_MAP, err = errno;
    }
    if (!step && s->gid_map) {
        snprintf(path, sizeof path, "/proc/%d/gid_map", pid);
        if (write_file(path, s->gid_map) < 0) step = WARDEN_STEP_GID_MAP, err = errno;
    }
    if (!step) {
        char num[24];
        int len = snprintf(num, sizeof num, "%d", pid);
        for (int i = 0; i < s->n_cgroup_procs_fds; i++) {
            if (pwrite(s->cgroup_procs_fds[i], num, (size_t)len, 0) != len) {
                step = WARDEN_STEP_CGROUP_ATTACH, err = errno, r->error.index = i;
                break;
            }
        }
    }
    if (step) {
        kill(pid, SIGKILL);
        close(syncp[1]);
        close(errp[0]);
        reap(pid);
        if (pidfd >= 0) close(pidfd);
        if (statp[0] >= 0) close(statp[0]);
        r->pid = -1;
        r->pidfd = -1;
        r->error.step = step;
        r->error.err = err;
        return -1;
    }
    char go = 1;
    ssize_t w = write(syncp[1], &go, 1);
    (void)w;
    close(syncp[1]);

    warden_child_error e;
    ssize_t n;
    do {
        n = read(errp[0], &e, sizeof e);
    } while (n < 0 && errno == EINTR);
    close(errp[0]);
    if (n == (ssize_t)sizeof e) {
        // The child failed before exec. With an init, its death also takes the payload down.
        kill(pid, SIGKILL);
        reap(pid);
        if (pidfd >= 0) close(pidfd);
        if (statp[0] >= 0) close(statp[0]);
        r->pid = -1;
        r->pidfd = -1;
        r->error = e;
        return -1;
    }
    r->status_fd = statp[0];
    return 0;

pipe_fail2:
    close(syncp[0]);
    close(syncp[1]);
pipe_fail1:
    close(errp[0]);
    close(errp[1]);
pipe_fail0:
    r->error.step = WARDEN_STEP_PIPE;
    r->error.err = errno;
    return -1;
}

int warden_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int warden_is_main_thread(void) { return syscall(SYS_gettid) == getpid(); }
int warden_has_interpreter(void) { return getauxval(AT_BASE) != 0; }
uintptr_t warden_execfn(void) { return (uintptr_t)getauxval(AT_EXECFN); }
int warden_malloc_trim(void) { return malloc_trim(0); }
long warden_fs_type(const char *path) {
    struct statfs st;
    return statfs(path, &st) == 0 ? (long)st.f_type : -1;
}

int warden_accept_cloexec(int fd) { return accept4(fd, NULL, NULL, SOCK_CLOEXEC); }

int warden_eventfd(void) { return eventfd(0, EFD_CLOEXEC); }

int warden_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

int warden_pidfd_send_signal(int pidfd, int sig) { return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0); }

int warden_memfd(const char *name) { return (int)syscall(SYS_memfd_create, name, MFD_CLOEXEC); }

int warden_close_range_cloexec(unsigned int first) {
    return (int)syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC);
}

static int wait_common(pid_t pid, int options, int *status, long *ut, long *st, long *rss) {
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    pid_t w;
    do {
        w = wait4(pid, status, options | __WALL, &ru);
    } while (w < 0 && errno == EINTR);
    if (w > 0) {
        if (ut) *ut = ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec;
        if (st) *st = ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec;
        if (rss) *rss = ru.ru_maxrss;
    }
    return (int)w;
}

int warden_wait4(pid_t pid, int *status, long *ut, long *st, long *rss) {
    return wait_common(pid, 0, status, ut, st, rss);
}

int warden_wait4_nohang(pid_t pid, int *status, long *ut, long *st, long *rss) {
    return wait_common(pid, WNOHANG, status, ut, st, rss);
}

int warden_wifexited(int status) { return WIFEXITED(status); }
int warden_wexitstatus(int status) { return WEXITSTATUS(status); }
int warden_wifsignaled(int status) { return WIFSIGNALED(status); }
int warden_wtermsig(int status) { return WTERMSIG(status); }
