/*
 * warden_plugin.h — the C ABI of a Warden dylib plugin, version 1 (DESIGN.md §3).
 *
 * A dylib plugin is a shared library (.so) exporting `warden_plugin_entry`. Warden loads it with
 * dlopen(RTLD_NOW | RTLD_LOCAL), calls the entry function once, checks `abi_version`, calls `init` once
 * per loaded instance, then `invoke` once per tool call, and `shutdown` when it is done with the instance.
 *
 * Where it runs.
 *   - hosting "isolated" (the default): inside a `warden plugin-host` worker process that runs in the
 *     plugin's sandbox (namespaces, seccomp, cgroup limits). A worker is kept warm and serves many calls,
 *     ONE AT A TIME; calls of the same plugin run in parallel in separate workers (at most the manifest's
 *     `concurrency`), each with its own `init` and `state`. A crash, a hang past the deadline or garbage
 *     on the worker's channel fails only that call (retryably) and the worker is replaced.
 *   - hosting "in-process" (only for plugins registered with --trust): inside the Warden control plane
 *     itself. One instance (one `init`) serves every call, and `invoke` may be called from several
 *     threads AT ONCE with the same `state`. A crash takes the control plane down; a hang blocks a
 *     Warden thread until `invoke` returns.
 *   Write `invoke` so that it is safe under both: reentrant, with any shared state behind a lock.
 *
 * Return codes of `init` and `invoke`:
 *   WARDEN_OK (0)         success; `*output_json` holds the result, a JSON value (UTF-8).
 *   WARDEN_ERROR (1)      the tool failed; `*output_json` may hold a message (plain text, or a JSON object
 *                         {"error": "..."}) that becomes the task's failure reason. Not retried.
 *   WARDEN_RETRY (75)     a temporary failure (a busy resource, a timeout upstream): the task is retried
 *                         with backoff, per the manifest's `retry`. `*output_json` may hold a message.
 *   Any other value is treated like WARDEN_ERROR.
 *
 * Memory ownership: `invoke` allocates `*output_json` however it likes and sets `*output_len` to its length
 * in bytes (no terminating NUL needed; a NUL inside is not allowed). Warden copies it and then calls
 * `free_output(*output_json)` exactly once, from the thread that called `invoke`. Leaving `*output_json`
 * NULL is allowed (success then means the JSON value null). `tool`, `input_json` and `config_json` are
 * owned by Warden and valid only during the call: copy what you keep. `input_json` is NUL-terminated as
 * well as `input_len` bytes long, and has passed the tool's inputSchema.
 *
 * The host (`warden_host`) is owned by Warden and valid from `init` until `shutdown` returns. Its
 * callbacks may be called only from the thread that is running `invoke` (or `init`), while that call runs:
 * Warden routes them to the call being made on that thread. Outside a call, `log` still reaches the
 * plugin-host log, `progress` is ignored and `cancelled` returns 0.
 *   log(ctx, level, message)        a log line (level: WARDEN_LOG_DEBUG … WARDEN_LOG_ERROR) for the task's log.
 *   progress(ctx, fraction, msg)    0.0 … 1.0, shown to whoever waits for the task.
 *   cancelled(ctx)                  non-zero once the call was canceled or its deadline passed: stop
 *                                   working and return (any return code; the call has already failed).
 *                                   Cheap enough to poll in a loop. A call that does not return shortly
 *                                   after its deadline is killed together with its worker.
 *
 * Optional export: `warden_plugin_tools` returns a NUL-terminated JSON array of the tool names the library
 * implements (["greet", "sum"]). When it is exported, registration refuses a manifest whose `tools` differ
 * from it (a tool the library lacks, or one the manifest does not declare). The string must stay valid
 * for the library's lifetime (a string literal is ideal).
 */
#ifndef WARDEN_PLUGIN_H
#define WARDEN_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WARDEN_PLUGIN_ABI_VERSION 1u

#define WARDEN_OK 0
#define WARDEN_ERROR 1
#define WARDEN_RETRY 75

#define WARDEN_LOG_DEBUG 0
#define WARDEN_LOG_INFO 1
#define WARDEN_LOG_WARN 2
#define WARDEN_LOG_ERROR 3

typedef struct warden_host {            /* passed to the plugin; valid for the plugin's lifetime */
    uint32_t abi_version;               /* 1 */
    void *ctx;
    void (*log)(void *ctx, int level, const char *message);
    void (*progress)(void *ctx, double fraction, const char *message);
    int  (*cancelled)(void *ctx);       /* non-zero once the call is canceled or past its deadline */
} warden_host;

typedef struct warden_plugin {
    uint32_t abi_version;               /* WARDEN_PLUGIN_ABI_VERSION */
    const char *name, *version;
    /* Called once per instance, before any invoke. `config_json` is the manifest's "config" (a JSON
     * object, "{}" when absent). Store your state in *state. Return WARDEN_OK, or anything else to refuse
     * (registration then fails; at run time the call fails and is retried). */
    int  (*init)(const warden_host *host, const char *config_json, void **state);
    /* One tool call. See the return codes and the memory ownership above. */
    int  (*invoke)(void *state, const char *tool, const char *input_json, size_t input_len,
                   char **output_json, size_t *output_len);   /* 0 ok, 1 tool error, 75 retryable */
    /* Frees what invoke put in *output_json. */
    void (*free_output)(char *output_json);
    /* Called once when Warden is done with the instance (worker shutdown). Not called when a worker is
     * killed (crash, deadline, out of memory): do not rely on it for durability. */
    void (*shutdown)(void *state);
} warden_plugin;

/* The one required export. Returns a pointer to a static, immutable descriptor. Must not block or fail:
 * Warden calls it right after dlopen, at registration (in a throw-away sandbox) and in every worker. */
const warden_plugin *warden_plugin_entry(void);

/* Optional export; see above. */
const char *warden_plugin_tools(void);

#ifdef __cplusplus
}
#endif

#endif /* WARDEN_PLUGIN_H */
