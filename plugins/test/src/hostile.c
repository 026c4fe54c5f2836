/*
 * Test-only: a dylib plugin that misbehaves in every way a tool call can, one tool per misbehaviour.
 * Each must fail only its own call, with a reason, and never the control plane or another plugin.
 *
 *   ok         {"ok": true}                       patient    loops until cancelled() (deadline), then returns
 *   segfault   NULL dereference (SIGSEGV)         loop       loops forever, ignoring cancelled()
 *   abort      abort() (SIGABRT)                  hog        allocates and touches memory until killed
 *   forkbomb   fork() forever                     huge       returns 16 MiB (over the 8 MiB output cap)
 *   badjson    returns "{not json" with rc 0      garbage    writes junk on the frame channel (fd 3)
 *   exit       _exit(3)                           retry      returns 75 with a message
 *   fail       returns 1 with {"error": ...}      chatty     logs, reports progress, writes stderr
 *   sleep      sleeps {"ms": N} milliseconds       bigquotes  returns 7 MiB of escaped quotes (valid, under the cap)
 */
#include "warden_plugin.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const warden_host *the_host;

static int hostile_init(const warden_host *host, const char *config_json, void **state) {
    (void)config_json;
    the_host = host;
    *state = NULL;
    return WARDEN_OK;
}

static int text(char **out, size_t *len, const char *s, int rc) {
    *out = strdup(s);
    *len = strlen(s);
    return rc;
}

static int hostile_invoke(void *state, const char *tool, const char *input, size_t input_len, char **out,
                          size_t *len) {
    (void)state;
    (void)input_len;
    if (strcmp(tool, "ok") == 0) return text(out, len, "{\"ok\":true}", WARDEN_OK);
    if (strcmp(tool, "segfault") == 0) {
        volatile int *volatile p = NULL;   /* volatile pointer: the compiler cannot drop the store */
        *p = 42;
    }
    if (strcmp(tool, "abort") == 0) abort();
    if (strcmp(tool, "loop") == 0) {
        for (volatile unsigned long i = 0;; i++) {
        }
    }
    if (strcmp(tool, "patient") == 0) {
        while (!the_host->cancelled(the_host->ctx)) usleep(1000);
        return text(out, len, "{\"error\":\"cancelled\"}", WARDEN_ERROR);
    }
    if (strcmp(tool, "hog") == 0) {
        for (;;) {
            char *p = malloc(1 << 20);
            if (p) memset(p, 1, 1 << 20);
        }
    }
    if (strcmp(tool, "forkbomb") == 0) {
        for (;;) fork();
    }
    if (strcmp(tool, "huge") == 0) {
        size_t n = 16u << 20;
        char *buf = malloc(n);
        if (buf == NULL) return WARDEN_RETRY;
        memset(buf, 'a', n);
        buf[0] = '"';
        buf[n - 1] = '"';
        *out = buf;
        *len = n;
        return WARDEN_OK;
    }
    if (strcmp(tool, "bigquotes") == 0) {
        /* A valid 7 MiB JSON string of escaped quotes: under the 8 MiB cap, twice that once escaped again. */
        size_t pairs = (7u << 20) / 2 - 1, n = 2 * pairs + 2;
        char *buf = malloc(n);
        if (buf == NULL) return WARDEN_RETRY;
        buf[0] = '"';
        for (size_t i = 0; i < pairs; i++) {
            buf[1 + 2 * i] = '\\';
            buf[2 + 2 * i] = '"';
        }
        buf[n - 1] = '"';
        *out = buf;
        *len = n;
        return WARDEN_OK;
    }
    if (strcmp(tool, "badjson") == 0) return text(out, len, "{not json", WARDEN_OK);
    if (strcmp(tool, "garbage") == 0) {
        static const char junk[] = "\xff\xff\xff\xffthis is not a frame";
        ssize_t w = write(3, junk, sizeof junk - 1);
        (void)w;
        usleep(200000);
        return text(out, len, "{\"ok\":true}", WARDEN_OK);
    }
    if (strcmp(tool, "exit") == 0) _exit(3);
    if (strcmp(tool, "retry") == 0) return text(out, len, "{\"error\":\"the backend is busy\"}", WARDEN_RETRY);
    if (strcmp(tool, "fail") == 0) return text(out, len, "{\"error\":\"bad input: no widgets\"}", WARDEN_ERROR);
    if (strcmp(tool, "chatty") == 0) {
        fprintf(stderr, "hostile: a line on stderr\n");
        fflush(stderr);
        the_host->log(the_host->ctx, WARDEN_LOG_WARN, "a log line through the host");
        the_host->progress(the_host->ctx, 0.5, "halfway");
        return text(out, len, "{\"chatted\":true}", WARDEN_OK);
    }
    if (strcmp(tool, "sleep") == 0) {
        const char *m = strstr(input, "\"ms\"");
        long ms = m ? strtol(strchr(m, ':') + 1, NULL, 10) : 100;
        usleep((useconds_t)ms * 1000);
        return text(out, len, "{\"slept\":true}", WARDEN_OK);
    }
    return text(out, len, "{\"error\":\"unknown tool\"}", WARDEN_ERROR);
}

static void hostile_free(char *p) { free(p); }

static const warden_plugin plugin = {
    .abi_version = WARDEN_PLUGIN_ABI_VERSION,
    .name = "hostile",
    .version = "1.0.0",
    .init = hostile_init,
    .invoke = hostile_invoke,
    .free_output = hostile_free,
    .shutdown = NULL,
};

const warden_plugin *warden_plugin_entry(void) { return &plugin; }
