/*
 * Test-only: libraries that registration must refuse, one per -D switch (see plugins/Makefile).
 *   -DABI=0 / -DABI=2   a descriptor with another ABI version
 *   -DNO_ENTRY          no warden_plugin_entry export
 *   -DCTOR_CRASH        a constructor that dereferences NULL (SIGSEGV while loading)
 *   -DCTOR_ABORT        a constructor that aborts (SIGABRT while loading)
 *   -DUNRESOLVED        needs a symbol nothing provides (dlopen(RTLD_NOW) fails)
 *   -DINIT_FAIL         init returns 1
 *   (none)              a good library offering the tool "ping" (the `liar` manifest claims one more)
 */
#include "warden_plugin.h"

#include <stdlib.h>
#include <string.h>

#ifndef ABI
#define ABI WARDEN_PLUGIN_ABI_VERSION
#endif

#ifdef CTOR_CRASH
__attribute__((constructor)) static void crash_while_loading(void) {
    volatile int *volatile p = NULL;   /* volatile pointer: the compiler cannot drop the store */
    *p = 1;
}
#endif

#ifdef CTOR_ABORT
__attribute__((constructor)) static void abort_while_loading(void) { abort(); }
#endif

#ifdef UNRESOLVED
extern int warden_test_symbol_nobody_defines(void);
#endif

static int lf_init(const warden_host *host, const char *config_json, void **state) {
    (void)host;
    (void)config_json;
    *state = NULL;
#ifdef UNRESOLVED
    if (getenv("WARDEN_NEVER_SET_THIS")) return warden_test_symbol_nobody_defines();
#endif
#ifdef INIT_FAIL
    return WARDEN_ERROR;
#endif
    return WARDEN_OK;
}

static int lf_invoke(void *state, const char *tool, const char *input_json, size_t input_len, char **output_json,
                     size_t *output_len) {
    (void)state;
    (void)tool;
    (void)input_json;
    (void)input_len;
    *output_json = strdup("{\"pong\":true}");
    *output_len = strlen(*output_json);
    return WARDEN_OK;
}

static void lf_free(char *p) { free(p); }

static const warden_plugin plugin = {
    .abi_version = ABI,
    .name = "loadfail",
    .version = "1.0.0",
    .init = lf_init,
    .invoke = lf_invoke,
    .free_output = lf_free,
    .shutdown = NULL,
};

#ifndef NO_ENTRY
const warden_plugin *warden_plugin_entry(void) { return &plugin; }
#else
/* Something exported, so the library is not empty: just not the entry point. */
const warden_plugin *warden_plugin_entry_typo(void) { return &plugin; }
#endif

const char *warden_plugin_tools(void) { return "[\"ping\"]"; }
