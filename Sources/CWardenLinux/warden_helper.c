// Spawning through `warden-sandbox`, a tiny single-threaded helper executable.
//
// Cloning the sandbox straight out of Warden copies Warden's address space (page tables, then a copy-on-write
// fault and a TLB shootdown for every page either side touches) and leaves the sandbox's init holding a copy
// of Warden's heap. Instead the helper runs warden_spawn() in its own small, clean address space, from the
// spec handed over as a flat blob, then waits for the sandbox and reports its status. No Warden memory ever
// enters a sandbox. The helper is either exec'd for the launch (posix_spawn: vfork + exec, safe in a threaded
// process) or, cheaper, cloned for it by the process's spawn server (a long-lived `warden-sandbox --server`,
// below); either way it is Warden's child and runs the same code.
//
// Fds the helper sees: 0/1/2 stdio, 3 the extra fd, 10 the blob, 11 the result pipe, 12 the final-status pipe,
// 13 the v2 cgroup directory, 20+i cgroup.procs files, 30+i v1 `tasks` files.
#include "warden_linux.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum { FD_EXTRA = 3, FD_BLOB = 10, FD_RESULT = 11, FD_FINAL = 12, FD_CGDIR = 13, FD_NETNS = 14, FD_PROCS = 20, FD_SELF = 30, MAX_CG = 10 };
#define BLOB_MAGIC 0x5753504eu   // "WSPN"
#define BLOB_VERSION 2u

// ---------------------------------------------------------------------------------------------------------
// The blob: fields in a fixed order; strings as u32 length (0xffffffff for NULL) and bytes.

typedef struct {
    uint8_t *p;
    size_t n, cap;
    int failed;
} wbuf;

static void put(wbuf *b, const void *v, size_t n) {
    if (b->failed) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->n + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) { b->failed = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, v, n);
    b->n += n;
}
static void put_u32(wbuf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(wbuf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(wbuf *b, const char *s) {
    if (!s) { put_u32(b, 0xffffffffu); return; }
    uint32_t n = (uint32_t)strlen(s);
    put_u32(b, n);
    put(b, s, n);
}
static void put_strv(wbuf *b, char *const *v) {
    uint32_t n = 0;
    while (v && v[n]) n++;
    put_u32(b, n);
    for (uint32_t i = 0; i < n; i++) put_str(b, v[i]);
}

typedef struct {
    const uint8_t *p;
    size_t n, off;
    int failed;
} rbuf;

static int get(rbuf *r, void *out, size_t n) {
    if (r->failed || r->off + n > r->n) { r->failed = 1; memset(out, 0, n); return -1; }
    memcpy(out, r->p + r->off, n);
    r->off += n;
    return 0;
}
static uint32_t get_u32(rbuf *r) { uint32_t v; get(r, &v, 4); return v; }
static uint64_t get_u64(rbuf *r) { uint64_t v; get(r, &v, 8); return v; }
static char *get_str(rbuf *r) {
    uint32_t n = get_u32(r);
    if (n == 0xffffffffu || r->failed) return NULL;
    if (r->off + n > r->n) { r->failed = 1; return NULL; }
    char *s = malloc((size_t)n + 1);
    if (!s) { r->failed = 1; return NULL; }
    memcpy(s, r->p + r->off, n);
    s[n] = 0;
    r->off += n;
    return s;
}
static char **get_strv(rbuf *r) {
    uint32_t n = get_u32(r);
    if (r->failed || n > 1u << 20) { r->failed = 1; return NULL; }
    char **v = calloc((size_t)n + 1, sizeof(char *));
    if (!v) { r->failed = 1; return NULL; }
    for (uint32_t i = 0; i < n; i++) v[i] = get_str(r);
    return v;
}

/// Serializes everything but fds; the fds are fixed numbers in the helper.
static void encode(wbuf *b, const warden_spawn_spec *s) {
    put_u32(b, BLOB_MAGIC);
    put_u32(b, BLOB_VERSION);
    put_str(b, s->path);
    put_strv(b, s->argv);
    put_strv(b, s->envp);
    put_str(b, s->cwd);
    put_u64(b, s->clone_flags);
    put_u32(b, (uint32_t)s->new_cgroup_ns);
    put_u32(b, s->cgroup_dir_fd >= 0);
    put_u32(b, (uint32_t)s->n_cgroup_procs_fds);
    put_u32(b, (uint32_t)s->n_cgroup_self_fds);
    put_str(b, s->uid_map);
    put_str(b, s->gid_map);
    put_u32(b, (uint32_t)s->deny_setgroups);
    put_u32(b, s->uid);
    put_u32(b, s->gid);
    put_u32(b, (uint32_t)s->set_ids);
    put_str(b, s->root_dir);
    put_u32(b, (uint32_t)s->n_mounts);
    for (int i = 0; i < s->n_mounts; i++) {
        put_u32(b, (uint32_t)s->mounts[i].kind);
        put_str(b, s->mounts[i].source);
        put_str(b, s->mounts[i].target);
        put_str(b, s->mounts[i].data);
    }
    put_u32(b, (uint32_t)s->root_read_only);
    put_u32(b, (uint32_t)s->n_rlimits);
    for (int i = 0; i < s->n_rlimits; i++) {
        put_u32(b, (uint32_t)s->rlimits[i].resource);
        put_u64(b, s->rlimits[i].soft);
        put_u64(b, s->rlimits[i].hard);
    }
    put_str(b, s->hostname);
    put_u32(b, (uint32_t)s->loopback_up);
    put_u32(b, s->netns_fd >= 0);
    put_u32(b, (uint32_t)s->n_filters);
    for (int i = 0; i < s->n_filters; i++) {
        put_u32(b, s->filters[i].len);
        put(b, s->filters[i].filter, (size_t)s->filters[i].len * sizeof(struct sock_filter));
    }
    put_u32(b, (uint32_t)s->no_new_privs);
    put_u32(b, (uint32_t)s->drop_caps);
    put_u32(b, s->stdin_fd >= 0);
    put_u32(b, s->stdout_fd >= 0);
    put_u32(b, s->stderr_fd >= 0);
    put_u32(b, s->extra_fd >= 0);
    put_u32(b, (uint32_t)s->use_init);
}

static int decode(rbuf *r, warden_spawn_spec *s) {
    memset(s, 0, sizeof *s);
    if (get_u32(r) != BLOB_MAGIC || get_u32(r) != BLOB_VERSION) return -1;
    s->path = get_str(r);
    s->argv = get_strv(r);
    s->envp = get_strv(r);
    s->cwd = get_str(r);
    s->clone_flags = get_u64(r);
    s->new_cgroup_ns = (int32_t)get_u32(r);
    s->cgroup_dir_fd = get_u32(r) ? FD_CGDIR : -1;
    int32_t np = (int32_t)get_u32(r), ns = (int32_t)get_u32(r);
    if (np > MAX_CG || ns > MAX_CG) return -1;
    static int32_t procs[MAX_CG], self[MAX_CG];
    for (int i = 0; i < np; i++) procs[i] = FD_PROCS + i;
    for (int i = 0; i < ns; i++) self[i] = FD_SELF + i;
    s->cgroup_procs_fds = procs;
    s->n_cgroup_procs_fds = np;
    s->cgroup_self_fds = self;
    s->n_cgroup_self_fds = ns;
    s->uid_map = get_str(r);
    s->gid_map = get_str(r);
    s->deny_setgroups = (int32_t)get_u32(r);
    s->uid = get_u32(r);
    s->gid = get_u32(r);
    s->set_ids = (int32_t)get_u32(r);
    s->root_dir = get_str(r);
    s->n_mounts = (int32_t)get_u32(r);
    if (s->n_mounts < 0 || s->n_mounts > 4096) return -1;
    warden_mount *m = calloc((size_t)s->n_mounts + 1, sizeof *m);
    if (!m) return -1;
    for (int i = 0; i < s->n_mounts; i++) {
        m[i].kind = (int32_t)get_u32(r);
        m[i].source = get_str(r);
        m[i].target = get_str(r);
        m[i].data = get_str(r);
    }
    s->mounts = m;
    s->root_read_only = (int32_t)get_u32(r);
    s->n_rlimits = (int32_t)get_u32(r);
    if (s->n_rlimits < 0 || s->n_rlimits > 64) return -1;
    warden_rlimit *rl = calloc((size_t)s->n_rlimits + 1, sizeof *rl);
    if (!rl) return -1;
    for (int i = 0; i < s->n_rlimits; i++) {
        rl[i].resource = (int32_t)get_u32(r);
        rl[i].soft = get_u64(r);
        rl[i].hard = get_u64(r);
    }
    s->rlimits = rl;
    s->hostname = get_str(r);
    s->loopback_up = (int32_t)get_u32(r);
    s->netns_fd = get_u32(r) ? FD_NETNS : -1;
    s->n_filters = (int32_t)get_u32(r);
    if (s->n_filters < 0 || s->n_filters > 8) return -1;
    struct sock_fprog *f = calloc((size_t)s->n_filters + 1, sizeof *f);
    if (!f) return -1;
    for (int i = 0; i < s->n_filters; i++) {
        uint32_t len = get_u32(r);
        if (len == 0 || len > 65535) return -1;
        struct sock_filter *prog = malloc(len * sizeof *prog);
        if (!prog) return -1;
        get(r, prog, len * sizeof *prog);
        f[i].len = (unsigned short)len;
        f[i].filter = prog;
    }
    s->filters = f;
    s->no_new_privs = (int32_t)get_u32(r);
    s->drop_caps = (int32_t)get_u32(r);
    s->stdin_fd = get_u32(r) ? 0 : -1;
    s->stdout_fd = get_u32(r) ? 1 : -1;
    s->stderr_fd = get_u32(r) ? 2 : -1;
    s->extra_fd = get_u32(r) ? FD_EXTRA : -1;
    s->use_init = (int32_t)get_u32(r);
    s->die_with_parent = 1;
    return r->failed ? -1 : 0;
}

// ---------------------------------------------------------------------------------------------------------
// Parent side.

extern char **environ;

// A close-on-exec copy of `fd` numbered 100 or more, so that moving fds onto 0…40 never overwrites a source
// that a later move still needs.
static int high(int fd) { return fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 100); }

// One launch request: the helper's fds as (source, target) pairs (sources lifted to 100+), and the
// parent's ends of the result and final-status pipes.
typedef struct {
    int src[64], dst[64], n;
    int res_r, fin_r;
} request;

static void request_close_sources(request *q) {
    for (int i = 0; i < q->n; i++) if (q->src[i] >= 0) close(q->src[i]);
    q->n = 0;
}

static void request_abandon(request *q) {
    request_close_sources(q);
    if (q->res_r >= 0) close(q->res_r);
    if (q->fin_r >= 0) close(q->fin_r);
    q->res_r = q->fin_r = -1;
}

// The blob, the pipes and the fd map for spawning `s` through a helper. 0, or -1 with r->error set.
static int request_prepare(const warden_spawn_spec *s, request *q, warden_spawn_result *r) {
    memset(r, 0, sizeof *r);
    r->pid = -1;
    r->pidfd = -1;
    r->status_fd = -1;
    r->init_pid = -1;
    r->error.index = -1;
    q->n = 0;
    q->res_r = q->fin_r = -1;
    if (s->n_cgroup_procs_fds > MAX_CG || s->n_cgroup_self_fds > MAX_CG) {
        r->error.step = WARDEN_STEP_CLONE;
        r->error.err = E2BIG;
        return -1;
    }
    wbuf b = {0};
    encode(&b, s);
    int blob = b.failed ? -1 : warden_memfd("warden-spec");
    if (blob < 0 || write(blob, b.p, b.n) != (ssize_t)b.n || lseek(blob, 0, SEEK_SET) != 0) {
        int e = errno;
        free(b.p);
        if (blob >= 0) close(blob);
        r->error.step = WARDEN_STEP_PIPE;
        r->error.err = b.failed ? ENOMEM : e;
        return -1;
    }
    free(b.p);
    int res[2] = {-1, -1}, fin[2] = {-1, -1};
    if (pipe2(res, O_CLOEXEC) < 0 || pipe2(fin, O_CLOEXEC) < 0) {
        r->error.step = WARDEN_STEP_PIPE;
        r->error.err = errno;
        close(blob);
        if (res[0] >= 0) { close(res[0]); close(res[1]); }
        return -1;
    }
    int lifted = 1;
    #define MAP(fd, to) do { if ((fd) >= 0) { q->src[q->n] = high(fd); q->dst[q->n] = (to); if (q->src[q->n] < 0) lifted = 0; q->n++; } } while (0)
    MAP(s->stdin_fd, 0);
    MAP(s->stdout_fd, 1);
    MAP(s->stderr_fd, 2);
    MAP(s->extra_fd, FD_EXTRA);
    MAP(blob, FD_BLOB);
    MAP(res[1], FD_RESULT);
    MAP(fin[1], FD_FINAL);
    MAP(s->cgroup_dir_fd, FD_CGDIR);
    MAP(s->netns_fd, FD_NETNS);
    for (int i = 0; i < s->n_cgroup_procs_fds; i++) MAP(s->cgroup_procs_fds[i], FD_PROCS + i);
    for (int i = 0; i < s->n_cgroup_self_fds; i++) MAP(s->cgroup_self_fds[i], FD_SELF + i);
    #undef MAP
    int e = errno;
    close(blob);
    close(res[1]);
    close(fin[1]);
    q->res_r = res[0];
    q->fin_r = fin[0];
    if (!lifted) {
        request_abandon(q);
        r->error.step = WARDEN_STEP_PIPE;
        r->error.err = e;
        return -1;
    }
    return 0;
}

// The helper runs: read its setup report. 0 with the sandbox running, or -1 with the helper killed and
// reaped and r->error set. r->pid must be the helper (our child).
static int request_finish(request *q, warden_spawn_result *r) {
    warden_helper_result hr;
    ssize_t got;
    do {
        got = read(q->res_r, &hr, sizeof hr);
    } while (got < 0 && errno == EINTR);
    close(q->res_r);
    q->res_r = -1;
    if (got != (ssize_t)sizeof hr || hr.error.step != 0) {
        // The helper reported a setup failure (or died before it could say anything).
        if (got == (ssize_t)sizeof hr) r->error = hr.error;
        else { r->error.step = WARDEN_STEP_HELPER; r->error.err = EPIPE; }
        kill(r->pid, SIGKILL);
        int st;
        while (waitpid(r->pid, &st, __WALL) < 0 && errno == EINTR) {}
        if (r->pidfd >= 0) close(r->pidfd);
        close(q->fin_r);
        q->fin_r = -1;
        r->pid = -1;
        r->pidfd = -1;
        return -1;
    }
    r->init_pid = hr.pid;
    r->status_fd = q->fin_r;
    q->fin_r = -1;
    return 0;
}

// posix_spawns the helper executable with `fa`, default signals, an empty environment and our pid (it
// checks that its parent is still us); as the spawn server with `server`. 0 or an errno.
static int spawn_helper_executable(const char *helper, const posix_spawn_file_actions_t *fa, int server, pid_t *pid) {
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char ppid[24];
    snprintf(ppid, sizeof ppid, "%d", (int)getpid());
    char *argv[4], *envp[] = {NULL};
    int k = 0;
    argv[k++] = (char *)"warden-sandbox";
    if (server) argv[k++] = (char *)"--server";
    argv[k++] = ppid;
    argv[k] = NULL;
    int rc = posix_spawn(pid, helper, fa, &attr, argv, envp);
    posix_spawnattr_destroy(&attr);
    return rc;
}

int warden_spawn_helper(const char *helper, const warden_spawn_spec *s, warden_spawn_result *r) {
    request q;
    if (request_prepare(s, &q, r) < 0) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    for (int i = 0; i < q.n; i++) posix_spawn_file_actions_adddup2(&fa, q.src[i], q.dst[i]);
    pid_t pid = -1;
    int rc = spawn_helper_executable(helper, &fa, 0, &pid);
    posix_spawn_file_actions_destroy(&fa);
    request_close_sources(&q);
    if (rc != 0) {
        request_abandon(&q);
        r->error.step = WARDEN_STEP_HELPER;
        r->error.err = rc;
        return -1;
    }
    r->pid = pid;
    r->pidfd = warden_pidfd_open(pid);
    return request_finish(&q, r);
}

// ---------------------------------------------------------------------------------------------------------
// The spawn server: one long-lived `warden-sandbox --server` per Warden process, asked over a SOCK_SEQPACKET
// socketpair. For each request (the helper's fds and where they go) it clones a copy of itself with
// CLONE_PARENT, so the copy is Warden's child exactly like an exec'd helper (Warden waits for it and holds
// its pidfd), and the copy runs the same helper code. That saves an exec and a libc start per sandbox: a
// clone of this small process is cheap, its address space is already as clean as a fresh helper's.

#define SERVER_MAGIC 0x57535256u   // "WSRV"
enum { FD_SERVER = 10, MAX_REQUEST_FDS = 64 };

typedef struct {
    uint32_t magic, n;
    int32_t targets[MAX_REQUEST_FDS];
} server_header;

int warden_spawn_server_start(const char *helper, pid_t *server_pid) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    // Its stdio is /dev/null: a helper's 0-2 come with each request, and a long-lived process must not keep
    // Warden's own stdout (a pipe someone waits on) open.
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, sv[1], FD_SERVER);
    pid_t pid = -1;
    int rc = spawn_helper_executable(helper, &fa, 1, &pid);
    posix_spawn_file_actions_destroy(&fa);
    close(sv[1]);
    if (rc != 0) {
        close(sv[0]);
        errno = rc;
        return -1;
    }
    *server_pid = pid;
    return sv[0];
}

int warden_spawn_server(int server, const warden_spawn_spec *s, warden_spawn_result *r) {
    request q;
    if (request_prepare(s, &q, r) < 0) return -1;
    server_header h;
    memset(&h, 0, sizeof h);
    h.magic = SERVER_MAGIC;
    h.n = (uint32_t)q.n;
    union {
        char buf[CMSG_SPACE(sizeof(int) * MAX_REQUEST_FDS)];
        struct cmsghdr align;
    } c;
    memset(&c, 0, sizeof c);
    struct iovec iov = {&h, offsetof(server_header, targets) + sizeof(int32_t) * (size_t)q.n};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = c.buf;
    m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)q.n);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)q.n);
    for (int i = 0; i < q.n; i++) h.targets[i] = q.dst[i];
    memcpy(CMSG_DATA(cm), q.src, sizeof(int) * (size_t)q.n);
    ssize_t sent;
    do {
        sent = sendmsg(server, &m, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    int e = errno;
    request_close_sources(&q);
    if (sent < 0) {
        request_abandon(&q);
        r->error.step = WARDEN_STEP_HELPER;
        r->error.err = e;
        return -2;
    }
    // The copy says who it is before anything else (the server says -errno when it could not make one); no
    // word means the server dropped the request or died.
    int32_t pid = 0;
    ssize_t got;
    do {
        got = read(q.res_r, &pid, sizeof pid);
    } while (got < 0 && errno == EINTR);
    if (got != (ssize_t)sizeof pid || pid <= 0) {
        request_abandon(&q);
        r->error.step = WARDEN_STEP_HELPER;
        r->error.err = got == (ssize_t)sizeof pid && pid < 0 ? -pid : ECONNRESET;
        return got == (ssize_t)sizeof pid && pid < 0 ? -1 : -2;
    }
    r->pid = pid;
    r->pidfd = warden_pidfd_open(pid);   // our child, not yet waited for: the pid cannot have been reused
    return request_finish(&q, r);
}

// ---------------------------------------------------------------------------------------------------------
// Helper side (the `warden-sandbox` executable's main).

// Runs one launch with the helper's fds in place (FD_BLOB, FD_RESULT, …): setup, report, wait, report.
static int helper_run(void) {
    fcntl(FD_BLOB, F_SETFD, FD_CLOEXEC);
    fcntl(FD_RESULT, F_SETFD, FD_CLOEXEC);
    fcntl(FD_FINAL, F_SETFD, FD_CLOEXEC);
    warden_helper_result hr;
    memset(&hr, 0, sizeof hr);
    struct stat st;
    uint8_t *blob = NULL;
    size_t len = 0;
    if (fstat(FD_BLOB, &st) == 0 && st.st_size > 0 && st.st_size < (64 << 20)) {
        len = (size_t)st.st_size;
        blob = malloc(len);
        if (blob && pread(FD_BLOB, blob, len, 0) != (ssize_t)len) { free(blob); blob = NULL; }
    }
    close(FD_BLOB);
    warden_spawn_spec spec;
    rbuf rb = {blob, len, 0, 0};
    if (!blob || decode(&rb, &spec) < 0) {
        hr.error.step = WARDEN_STEP_HELPER;
        hr.error.err = EINVAL;
        hr.error.index = -1;
        ssize_t w = write(FD_RESULT, &hr, sizeof hr);
        (void)w;
        return 71;
    }
    warden_spawn_result res;
    int rc = warden_spawn(&spec, &res);
    hr.error = res.error;
    hr.pid = res.pid;
    ssize_t w = write(FD_RESULT, &hr, sizeof hr);
    (void)w;
    close(FD_RESULT);
    if (rc != 0) return 71;
    // The sandbox is running: nothing else of ours is needed; wait for it and report.
    for (int fd = 0; fd < 64; fd++)
        if (fd != FD_FINAL && fd != res.status_fd && fd != res.pidfd) close(fd);
    warden_helper_final fin;
    memset(&fin, 0, sizeof fin);
    int32_t payload = 0;
    if (res.status_fd >= 0) {
        ssize_t g;
        do {
            g = read(res.status_fd, &payload, sizeof payload);
        } while (g < 0 && errno == EINTR);
        if (g == (ssize_t)sizeof payload) { fin.has_status = 1; fin.status = payload; }
    }
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    int ist = 0;
    while (wait4(res.pid, &ist, __WALL, &ru) < 0 && errno == EINTR) {}
    if (res.status_fd < 0) { fin.has_status = 1; fin.status = ist; }
    fin.utime_us = ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec;
    fin.stime_us = ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec;
    fin.maxrss_kb = ru.ru_maxrss;
    w = write(FD_FINAL, &fin, sizeof fin);
    (void)w;
    return 0;
}

// Moves received fds onto their targets: all lifted to 100+ first, so no move overwrites a later source.
static int place_fds(const int *fds, const int32_t *targets, int n) {
    int lifted[MAX_REQUEST_FDS];
    for (int i = 0; i < n; i++) {
        lifted[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 100);
        if (lifted[i] < 0) return -1;
        close(fds[i]);
    }
    for (int i = 0; i < n; i++) {
        if (targets[i] < 0 || targets[i] >= 100 || dup2(lifted[i], targets[i]) < 0) return -1;
        close(lifted[i]);
    }
    return 0;
}

static int serve(pid_t warden) {
    for (;;) {
        server_header h;
        union {
            char buf[CMSG_SPACE(sizeof(int) * MAX_REQUEST_FDS)];
            struct cmsghdr align;
        } c;
        struct iovec iov = {&h, sizeof h};
        struct msghdr m;
        memset(&m, 0, sizeof m);
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = c.buf;
        m.msg_controllen = sizeof c.buf;
        ssize_t got = recvmsg(FD_SERVER, &m, MSG_CMSG_CLOEXEC);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return 0;   // Warden closed its end or is gone
        int fds[MAX_REQUEST_FDS], n = 0;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
            if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
            int k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (int i = 0; i < k && n < MAX_REQUEST_FDS; i++) memcpy(&fds[n++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
        }
        int ok = got >= (ssize_t)offsetof(server_header, targets) && h.magic == SERVER_MAGIC && h.n == (uint32_t)n &&
                 got == (ssize_t)(offsetof(server_header, targets) + sizeof(int32_t) * (size_t)n) && !(m.msg_flags & MSG_CTRUNC);
        // The result pipe's write end: the first word on it is the helper's pid, or -errno when none was made.
        int result = -1;
        for (int i = 0; ok && i < n; i++) if (h.targets[i] == FD_RESULT) result = fds[i];
        // A malformed request is dropped: closing its fds closes the result pipe, which Warden reads as EOF.
        pid_t pid = ok && result >= 0 ? (pid_t)syscall(SYS_clone, (unsigned long)CLONE_PARENT, 0, 0, 0, 0) : -1;
        if (pid == 0) {
            // Warden's child now (CLONE_PARENT): die with it, as an exec'd helper does. Say who we are first,
            // so that Warden can reap us whatever happens next.
            prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
            int32_t me = (int32_t)getpid();
            if (write(result, &me, sizeof me) != (ssize_t)sizeof me || getppid() != warden) _exit(127);
            close(FD_SERVER);
            if (place_fds(fds, h.targets, n) < 0) _exit(127);
            _exit(helper_run());
        }
        if (pid < 0 && result >= 0) {
            int32_t failed = -(int32_t)errno;
            ssize_t w = write(result, &failed, sizeof failed);
            (void)w;
        }
        for (int i = 0; i < n; i++) close(fds[i]);
    }
}

int warden_helper_main(int argc, char **argv) {
    // Die with the Warden that started us; if it is already gone, do nothing.
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (argc == 3 && strcmp(argv[1], "--server") == 0) {
        pid_t warden = (pid_t)atoi(argv[2]);
        if (getppid() != warden) return 127;
        fcntl(FD_SERVER, F_SETFD, FD_CLOEXEC);
        return serve(warden);
    }
    if (argc < 2 || getppid() != (pid_t)atoi(argv[1])) return 127;
    return helper_run();
}
