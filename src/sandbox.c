/*
 * sandbox: a seccomp deny-list for the relay (see sandbox.h).
 */
#include "fgconfig.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <seccomp.h>

#include "log.h"
#include "sandbox.h"
#include "util.h"

/* What the relay never does: run programs, trace, load or boot kernels,
 * mount, change identity or capabilities, enter namespaces, keyrings. */
static const char *const sandbox_calls[] = {
	"execve", "execveat",
#ifndef __SANITIZE_ADDRESS__
	/* LeakSanitizer stops the process with ptrace at exit. */
	"ptrace",
#endif
	"process_vm_readv", "process_vm_writev",
	"kexec_load", "kexec_file_load", "init_module", "finit_module",
	"delete_module", "reboot", "swapon", "swapoff", "acct",
	"mount", "umount2", "pivot_root", "chroot", "open_by_handle_at",
	"setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
	"setfsuid", "setfsgid", "setgroups", "capset",
	"unshare", "setns", "personality", "userfaultfd",
	"bpf", "perf_event_open", "keyctl", "add_key", "request_key",
	"iopl", "ioperm", "settimeofday", "clock_settime", "adjtimex",
	"quotactl",
};

static unsigned sandbox_ndenied;

int
sandbox_enter(char *err, size_t errlen)
{
	scmp_filter_ctx ctx;
	unsigned n = 0;
	int nr, rc;

	if ((ctx = seccomp_init(SCMP_ACT_ALLOW)) == NULL) {
		snprintf(err, errlen, "seccomp_init failed");
		return -1;
	}
	for (size_t i = 0; i < nitems(sandbox_calls); i++) {
		/* A call this architecture lacks needs no rule. */
		if ((nr = seccomp_syscall_resolve_name(sandbox_calls[i])) ==
		    __NR_SCMP_ERROR)
			continue;
		if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr,
		    0)) < 0) {
			snprintf(err, errlen, "seccomp rule for %s: %s",
			    sandbox_calls[i], strerror(-rc));
			seccomp_release(ctx);
			return -1;
		}
		n++;
	}
	if ((rc = seccomp_load(ctx)) < 0) {
		snprintf(err, errlen, "seccomp_load: %s", strerror(-rc));
		seccomp_release(ctx);
		return -1;
	}
	seccomp_release(ctx);
	sandbox_ndenied = n;
	return 0;
}

unsigned
sandbox_denied(void)
{
	return sandbox_ndenied;
}
