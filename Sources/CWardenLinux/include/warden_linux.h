// The C side of Warden's sandbox launcher and the few syscalls Glibc lacks.
//
// Swift decides everything (namespaces, mount plan, maps, limits, the seccomp BPF) and hands this file a
// fully built `warden_spawn_spec`. The child side runs only async-signal-safe C, allocates nothing, and
// reports a failure as `{step, errno, index}` over an O_CLOEXEC pipe: EOF on that pipe means exec succeeded.
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/filter.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Where a child failed. Keep in sync with `warden_step_name` and `SandboxError` in Swift.
enum warden_step {
    WARDEN_STEP_NONE = 0,
    WARDEN_STEP_PIPE,
    WARDEN_STEP_CLONE,
    WARDEN_STEP_SETGROUPS_FILE,
    WARDEN_STEP_UID_MAP,
    WARDEN_STEP_GID_MAP,
    WARDEN_STEP_CGROUP_ATTACH,
    WARDEN_STEP_SYNC,
    WARDEN_STEP_CGROUP_NS,
    WARDEN_STEP_MOUNT_PRIVATE,
    WARDEN_STEP_MOUNT_ROOT,
    WARDEN_STEP_BIND,
    WARDEN_STEP_REMOUNT_RO,
    WARDEN_STEP_TMPFS,
    WARDEN_STEP_PROC,
    WARDEN_STEP_PIVOT_ROOT,
    WARDEN_STEP_UMOUNT_OLD,
    WARDEN_STEP_HOSTNAME,
    WARDEN_STEP_LOOPBACK,
    WARDEN_STEP_FORK_INIT,
    WARDEN_STEP_CAPS,
    WARDEN_STEP_SETGROUPS,
    WARDEN_STEP_SETGID,
    WARDEN_STEP_SETUID,
    WARDEN_STEP_RLIMIT,
    WARDEN_STEP_STDIO,
    WARDEN_STEP_CLOSE_FDS,
    WARDEN_STEP_CHDIR,
    WARDEN_STEP_NO_NEW_PRIVS,
    WARDEN_STEP_SECCOMP,
    WARDEN_STEP_EXEC,
    WARDEN_STEP_HELPER,
    WARDEN_STEP_NETNS,
    WARDEN_STEP_COUNT
};

/// The name of a step ("pivot_root", "execve", …) for error messages.
const char *warden_step_name(int step);

/// What the child writes on failure. `index` is the mount/rlimit index for steps that loop, else -1.
typedef struct warden_child_error {
    int32_t step;
    int32_t err;
    int32_t index;
} warden_child_error;

/// The new root is a *skeleton* directory the parent prepared on the host (every mount point and symlink
/// already in it; see MountPlan.swift). The child binds it onto itself, mounts into it and pivots into it:
/// it never creates a file, so nothing it does can leak into the shared skeleton.
enum warden_mount_kind {
    WARDEN_MOUNT_BIND_RO = 1,   // bind `source` at `target`, recursively read-only, nosuid, nodev
    WARDEN_MOUNT_BIND_RW = 2,   // bind `source` at `target`, writable, nosuid, nodev
    WARDEN_MOUNT_DEV = 3,       // bind a host device node (file), writable, nosuid, noexec
    WARDEN_MOUNT_TMPFS = 4,     // tmpfs at `target`, options in `data`
    WARDEN_MOUNT_PROC = 5,      // a fresh procfs of the new pid namespace
};

typedef struct warden_mount {
    int32_t kind;
    const char *source;         // binds: host path
    const char *target;         // absolute path inside the sandbox (exists in the skeleton)
    const char *data;           // tmpfs options or NULL
} warden_mount;

typedef struct warden_rlimit {
    int32_t resource;
    uint64_t soft;
    uint64_t hard;
} warden_rlimit;

typedef struct warden_spawn_spec {
    const char *path;               // absolute host path of the executable as seen inside the sandbox
    char *const *argv;              // NULL-terminated
    char *const *envp;              // NULL-terminated
    const char *cwd;                // inside the sandbox, or NULL for "/"

    uint64_t clone_flags;           // CLONE_NEW* (without CLONE_NEWCGROUP: that one is unshared after attach)
    int32_t new_cgroup_ns;          // unshare(CLONE_NEWCGROUP) after the parent attached the cgroup
    int32_t cgroup_dir_fd;          // v2: O_PATH|O_DIRECTORY fd for CLONE_INTO_CGROUP, or -1
    const int32_t *cgroup_procs_fds;// v2 without CLONE_INTO_CGROUP: open cgroup.procs files for the child's pid
    int32_t n_cgroup_procs_fds;
    const int32_t *cgroup_self_fds; // v1: open `tasks` files the child writes "0" into first (see Cgroup.swift)
    int32_t n_cgroup_self_fds;

    const char *uid_map;            // text for /proc/PID/uid_map, or NULL
    const char *gid_map;            // text for /proc/PID/gid_map, or NULL
    int32_t deny_setgroups;         // write "deny" to /proc/PID/setgroups (needed when unprivileged)
    uint32_t uid, gid;              // ids the payload runs as inside the user namespace
    int32_t set_ids;                // change ids at all (0 when no user namespace)

    const char *root_dir;           // the skeleton directory that becomes the root; NULL: no pivot_root
    const warden_mount *mounts;
    int32_t n_mounts;
    int32_t root_read_only;         // remount the assembled root read-only after pivot_root

    const warden_rlimit *rlimits;
    int32_t n_rlimits;
    const char *hostname;           // NULL: leave unchanged
    int32_t loopback_up;            // bring `lo` up in the new network namespace
    int32_t netns_fd;               // a fresh network namespace made ahead (NetnsPool) to enter instead of
                                    // CLONE_NEWNET, or -1. Helper only: setns changes the calling thread.

    const struct sock_fprog *filters;   // seccomp programs, loaded in order (the last one wins ties)
    int32_t n_filters;
    int32_t no_new_privs;
    int32_t drop_caps;              // clear bounding, ambient, permitted, effective, inheritable sets

    int32_t stdin_fd, stdout_fd, stderr_fd;   // become 0, 1, 2 (-1: /dev/null is not opened; fd closed)
    int32_t extra_fd;               // becomes 3 when >= 0 (plugin-host socket, agent socket)

    int32_t use_init;               // with CLONE_NEWPID: a non-dumpable pid-1 reaper forks the payload
    // The init is a fork of Warden: /proc/1/cmdline and /proc/1/environ read these ranges of its memory (our
    // argv and environment strings; /proc/self/stat fields 48-51), which the init zeroes. 0: leave as is.
    uintptr_t scrub_arg_start, scrub_arg_end, scrub_env_start, scrub_env_end;
    int32_t die_with_parent;        // PR_SET_PDEATHSIG(SIGKILL) on the first child
} warden_spawn_spec;

/// Makes a new network namespace for the pool on the calling thread and returns an fd of it (or -errno); the
/// thread is back in its own network namespace when this returns. `loopback_up`: bring `lo` up in it.
int warden_netns_create(int loopback_up);

typedef struct warden_spawn_result {
    pid_t pid;                      // host pid of the first child (the init when use_init)
    int32_t pidfd;                  // pidfd of `pid`, or -1 when the kernel has none
    int32_t status_fd;              // use_init: read end carrying the payload's int32 wait status
                                    // (through the helper: the warden_helper_final record)
    warden_child_error error;       // step == 0 on success
    pid_t init_pid;                 // through the helper: host pid of the sandbox's first process
} warden_spawn_result;

/// What `warden-sandbox` reports once setup is over: step 0 and the first process's pid, or the failure.
typedef struct warden_helper_result {
    warden_child_error error;
    int32_t pid;
} warden_helper_result;

/// What `warden-sandbox` reports when the sandbox has ended.
typedef struct warden_helper_final {
    int32_t has_status;             // 0: the payload's status is unknown (its init was killed)
    int32_t status;                 // the payload's wait status
    int64_t utime_us, stime_us;     // rusage of the sandbox's first process and everything it reaped
    int64_t maxrss_kb;
} warden_helper_final;

/// Spawns through the `warden-sandbox` helper executable at `helper` (see warden_helper.c): the same
/// launch, done from a small single-threaded process instead of a clone of the caller. On success
/// `result->pid`/`pidfd` are the helper's (it exits when the sandbox has ended), `status_fd` carries a
/// warden_helper_final record, and `init_pid` is the sandbox's first process.
int warden_spawn_helper(const char *helper, const warden_spawn_spec *spec, warden_spawn_result *result);

/// Starts the spawn server (`warden-sandbox --server`, see warden_helper.c) and returns our end of its
/// socket (close-on-exec), or -1 with errno. Call from a thread that lives as long as the process: the
/// server and every helper it makes die when that thread does.
int warden_spawn_server_start(const char *helper, pid_t *server_pid);

/// warden_spawn_helper through the spawn server: the same result (the helper is our child), without an exec.
/// -1 for a failed launch (as warden_spawn_helper), -2 when the server did not take the request (it is gone:
/// start another; nothing was launched).
int warden_spawn_server(int server, const warden_spawn_spec *spec, warden_spawn_result *result);

/// The helper executable's main.
int warden_helper_main(int argc, char **argv);

/// Spawn a sandboxed child. Returns 0 when the payload exec'd; -1 with `result->error` set otherwise (the
/// child has then already been reaped). Call from a long-lived thread: PR_SET_PDEATHSIG fires when the
/// *thread* that created the child exits.
int warden_spawn(const warden_spawn_spec *spec, warden_spawn_result *result);

/// Constants that Swift's Glibc module does not export (it is built without _GNU_SOURCE).
#define WARDEN_CLONE_NEWNS 0x00020000ULL
#define WARDEN_CLONE_NEWCGROUP 0x02000000ULL
#define WARDEN_CLONE_NEWUTS 0x04000000ULL
#define WARDEN_CLONE_NEWIPC 0x08000000ULL
#define WARDEN_CLONE_NEWUSER 0x10000000ULL
#define WARDEN_CLONE_NEWPID 0x20000000ULL
#define WARDEN_CLONE_NEWNET 0x40000000ULL
#define WARDEN_O_PATH 010000000

/// pipe2(fds, O_CLOEXEC).
int warden_pipe_cloexec(int fds[2]);
/// 1 when the calling thread is the process's main thread (it lives as long as the process).
int warden_is_main_thread(void);
/// 1 when the kernel mapped a program interpreter for this process (it is dynamically linked).
int warden_has_interpreter(void);
/// malloc_trim(0): gives the memory free in every malloc arena back to the kernel.
int warden_malloc_trim(void);
/// getauxval(AT_EXECFN): where the kernel put the executable's name at exec, just above the environment strings.
uintptr_t warden_execfn(void);
/// statfs(path).f_type (the file system's magic number), or -1 with errno. Glibc's Swift module lacks statfs.
long warden_fs_type(const char *path);
/// accept4(fd, NULL, NULL, SOCK_CLOEXEC).
int warden_accept_cloexec(int fd);
/// eventfd(0, EFD_CLOEXEC).
int warden_eventfd(void);

/// Plain helpers Glibc does not wrap (or wraps only in newer versions).
int warden_pidfd_open(pid_t pid);
int warden_pidfd_send_signal(int pidfd, int sig);
int warden_memfd(const char *name);
int warden_close_range_cloexec(unsigned int first);
/// Waits for `pid` and fills rusage; returns the raw wait status or -1 (errno set). Retries EINTR.
int warden_wait4(pid_t pid, int *status, long *utime_us, long *stime_us, long *maxrss_kb);
/// Non-blocking variant: returns 0 when still running, pid when reaped, -1 on error.
int warden_wait4_nohang(pid_t pid, int *status, long *utime_us, long *stime_us, long *maxrss_kb);

/// Wait-status decoders (macros in <sys/wait.h>).
int warden_wifexited(int status);
int warden_wexitstatus(int status);
int warden_wifsignaled(int status);
int warden_wtermsig(int status);

#ifdef __cplusplus
}
#endif
