#pragma once
#include <seccomp.h>
#include <stdint.h>
// Function-like macros are not imported into Swift; wrap the ones we use.
static inline uint32_t cseccomp_act_errno(uint16_t err) { return SCMP_ACT_ERRNO(err); }
static inline uint32_t cseccomp_act_allow(void) { return SCMP_ACT_ALLOW; }
static inline uint32_t cseccomp_act_kill_process(void) { return SCMP_ACT_KILL_PROCESS; }
static inline uint32_t cseccomp_act_kill_thread(void) { return SCMP_ACT_KILL_THREAD; }
static inline uint32_t cseccomp_act_trap(void) { return SCMP_ACT_TRAP; }
static inline uint32_t cseccomp_act_log(void) { return SCMP_ACT_LOG; }
static inline uint32_t cseccomp_act_trace(uint16_t msg) { return SCMP_ACT_TRACE(msg); }
static inline uint32_t cseccomp_act_notify(void) { return SCMP_ACT_NOTIFY; }
static inline uint32_t cseccomp_arch_x86_64(void) { return SCMP_ARCH_X86_64; }
