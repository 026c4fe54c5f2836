/*
 * hello-c: an example Warden dylib plugin in C (see include/warden_plugin.h and docs/PLUGINS.md).
 *
 *   greet {"name": "Ada"}          → {"greeting": "Hello, Ada!"}    (the word comes from config.greeting)
 *   sum   {"numbers": [1, 2, 3.5]} → {"sum": 6.5, "count": 3}
 *
 * The input has passed the tool's inputSchema, so the tiny scanners below only need to find values, not to
 * validate JSON. The state is read-only after init, so concurrent invoke calls are safe.
 */
#include "warden_plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct hello_state {
    const warden_host *host;
    char greeting[64];
} hello_state;

/* Finds `"key"` followed by ':' and returns a pointer to the value (after spaces), or NULL. */
static const char *find_value(const char *json, const char *key) {
    size_t klen = strlen(key);
    for (const char *p = json; (p = strchr(p, '"')) != NULL; p++) {
        if (strncmp(p + 1, key, klen) == 0 && p[klen + 1] == '"') {
            const char *v = p + klen + 2;
            while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r') v++;
            if (*v != ':') continue;
            v++;
            while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r') v++;
            return v;
        }
    }
    return NULL;
}

/* Copies a JSON string value (still escaped, so it can go straight back into JSON) into buf. */
static int copy_string(const char *v, char *buf, size_t cap) {
    if (v == NULL || *v != '"') return -1;
    size_t n = 0;
    for (v++; *v && *v != '"'; v++) {
        if (*v == '\\' && v[1]) {
            if (n + 2 >= cap) return -1;
            buf[n++] = *v++;
        }
        if (n + 1 >= cap) return -1;
        buf[n++] = *v;
    }
    buf[n] = 0;
    return *v == '"' ? 0 : -1;
}

static int reply(char **out, size_t *len, const char *text) {
    *out = strdup(text);
    *len = *out ? strlen(*out) : 0;
    return *out ? WARDEN_OK : WARDEN_RETRY;
}

static int hello_init(const warden_host *host, const char *config_json, void **state) {
    hello_state *s = calloc(1, sizeof *s);
    if (s == NULL) return WARDEN_ERROR;
    s->host = host;
    if (copy_string(find_value(config_json, "greeting"), s->greeting, sizeof s->greeting) != 0)
        strcpy(s->greeting, "Hello");
    *state = s;
    return WARDEN_OK;
}

static int greet(hello_state *s, const char *input, char **out, size_t *len) {
    char name[256];
    if (copy_string(find_value(input, "name"), name, sizeof name) != 0) strcpy(name, "world");
    size_t cap = strlen(s->greeting) + strlen(name) + 32;
    char *buf = malloc(cap);
    if (buf == NULL) return WARDEN_RETRY;
    *len = (size_t)snprintf(buf, cap, "{\"greeting\":\"%s, %s!\"}", s->greeting, name);
    *out = buf;
    return WARDEN_OK;
}

static int sum(hello_state *s, const char *input, char **out, size_t *len) {
    const char *v = find_value(input, "numbers");
    if (v == NULL || *v != '[') return reply(out, len, "{\"error\":\"numbers must be an array\"}") == WARDEN_OK ? WARDEN_ERROR : WARDEN_RETRY;
    double total = 0;
    long count = 0;
    for (v++;;) {
        while (*v == ' ' || *v == ',' || *v == '\n' || *v == '\t' || *v == '\r') v++;
        if (*v == ']' || *v == 0) break;
        char *end;
        double d = strtod(v, &end);
        if (end == v) return reply(out, len, "{\"error\":\"numbers must hold only numbers\"}") == WARDEN_OK ? WARDEN_ERROR : WARDEN_RETRY;
        total += d;
        count++;
        v = end;
        if (s->host->cancelled(s->host->ctx)) return WARDEN_ERROR;
    }
    if (count > 1000) s->host->log(s->host->ctx, WARDEN_LOG_INFO, "summed a long list");
    s->host->progress(s->host->ctx, 1.0, "summed");
    char buf[96];
    *len = (size_t)snprintf(buf, sizeof buf, "{\"sum\":%.17g,\"count\":%ld}", total, count);
    *out = strdup(buf);
    return *out ? WARDEN_OK : WARDEN_RETRY;
}

static int hello_invoke(void *state, const char *tool, const char *input_json, size_t input_len,
                        char **output_json, size_t *output_len) {
    (void)input_len;
    hello_state *s = state;
    if (strcmp(tool, "greet") == 0) return greet(s, input_json, output_json, output_len);
    if (strcmp(tool, "sum") == 0) return sum(s, input_json, output_json, output_len);
    reply(output_json, output_len, "{\"error\":\"unknown tool\"}");
    return WARDEN_ERROR;
}

static void hello_free(char *output_json) { free(output_json); }

static void hello_shutdown(void *state) { free(state); }

static const warden_plugin plugin = {
    .abi_version = WARDEN_PLUGIN_ABI_VERSION,
    .name = "hello-c",
    .version = "1.0.0",
    .init = hello_init,
    .invoke = hello_invoke,
    .free_output = hello_free,
    .shutdown = hello_shutdown,
};

const warden_plugin *warden_plugin_entry(void) { return &plugin; }

const char *warden_plugin_tools(void) { return "[\"greet\", \"sum\"]"; }
