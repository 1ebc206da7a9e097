/*
 * The process side: fork (the child becomes a model process of its own with the parent's
 * descriptors), exit (the model releases the process before the parent's wait returns),
 * RLIMIT_MEMLOCK and uid (done for real, then mirrored into the model process), and what the
 * program learns about the machine: the page size and uname's machine.
 */
#include "tcelab.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CHILDREN 256

/* Children forked while connected: real pid → model pid, until they are waited for. */
static struct {
	pid_t real;
	int32_t model;
} children[MAX_CHILDREN];

static void reap(int32_t model_pid)
{
	struct tce_msg m = { 0 };
	msg_u8(&m, OP_REAP);
	msg_u32(&m, (uint32_t)model_pid);
	tce_simple(&m);
}

pid_t fork(void)
{
	if (!tce_model.pid)
		return REAL(fork)(); /* nothing of this process is in the model yet */
	/* The model must know the hugetlb mappings the child inherits: their pages are shared
	 * copy-on-write, and a pin in the child needs a huge page of its own. */
	tce_report_hugetlb();
	struct tce_msg m = { 0 };
	msg_u8(&m, OP_FORK);
	long child = tce_simple(&m);
	if (child < 0)
		return -1;
	pid_t pid = REAL(fork)();
	if (pid == 0) {
		tce_after_fork_child((int32_t)child);
		return 0;
	}
	if (pid < 0) {
		int e = errno;
		reap((int32_t)child);
		errno = e;
		return -1;
	}
	for (int i = 0; i < MAX_CHILDREN; i++) {
		if (!children[i].real) {
			children[i].real = pid;
			children[i].model = (int32_t)child;
			break;
		}
	}
	return pid;
}

/* A waited-for child is gone: make sure the model released it (it may have died by a signal). */
static void waited(pid_t pid, int status)
{
	if (pid <= 0 || !(WIFEXITED(status) || WIFSIGNALED(status)))
		return;
	for (int i = 0; i < MAX_CHILDREN; i++) {
		if (children[i].real == pid) {
			children[i].real = 0;
			reap(children[i].model);
		}
	}
}

pid_t waitpid(pid_t pid, int *status, int options)
{
	int st = 0;
	pid_t r = REAL(waitpid)(pid, &st, options);
	waited(r, st);
	if (status)
		*status = st;
	return r;
}

pid_t wait(int *status)
{
	return waitpid(-1, status, 0);
}

pid_t wait4(pid_t pid, int *status, int options, struct rusage *ru)
{
	int st = 0;
	pid_t r = REAL(wait4)(pid, &st, options, ru);
	waited(r, st);
	if (status)
		*status = st;
	return r;
}

void _exit(int status)
{
	tce_exit();
	REAL(_exit)(status);
	__builtin_unreachable();
}

void _Exit(int status)
{
	tce_exit();
	REAL(_Exit)(status);
	__builtin_unreachable();
}

/* exit() and returning from main(): the library's destructors run last. */
__attribute__((destructor)) static void at_exit(void)
{
	tce_exit();
}

static void mirror_memlock(int resource, const struct rlimit *rl)
{
	if (resource != RLIMIT_MEMLOCK || !tce_active() || !rl)
		return;
	struct tce_msg m = { 0 };
	msg_u8(&m, OP_SETRLIMIT_MEMLOCK);
	msg_u64(&m, rl->rlim_cur);
	tce_simple(&m);
}

int setrlimit(__rlimit_resource_t resource, const struct rlimit *rl)
{
	int r = REAL(setrlimit)(resource, rl);
	if (!r)
		mirror_memlock(resource, rl);
	return r;
}

int setrlimit64(__rlimit_resource_t resource, const struct rlimit64 *rl)
{
	int r = REAL(setrlimit64)(resource, rl);
	if (!r) {
		struct rlimit narrow = { (rlim_t)rl->rlim_cur, (rlim_t)rl->rlim_max };
		mirror_memlock(resource, &narrow);
	}
	return r;
}

static int mirror_uid(int r, uid_t uid)
{
	if (r || uid == (uid_t)-1 || !tce_active())
		return r;
	struct tce_msg m = { 0 };
	msg_u8(&m, OP_SETUID);
	msg_u32(&m, uid);
	tce_simple(&m);
	return r;
}

int setuid(uid_t uid) { return mirror_uid(REAL(setuid)(uid), uid); }
int seteuid(uid_t euid) { return mirror_uid(REAL(seteuid)(euid), euid); }
int setreuid(uid_t ruid, uid_t euid)
{
	return mirror_uid(REAL(setreuid)(ruid, euid), euid != (uid_t)-1 ? euid : ruid);
}
int setresuid(uid_t ruid, uid_t euid, uid_t suid)
{
	return mirror_uid(REAL(setresuid)(ruid, euid, suid), euid != (uid_t)-1 ? euid : ruid);
}

long sysconf(int name)
{
	if ((name == _SC_PAGESIZE) && tce_active() && !tce_connect())
		return tce_model.page_size;
	return REAL(sysconf)(name);
}

int getpagesize(void)
{
	if (tce_active() && !tce_connect())
		return (int)tce_model.page_size;
	return REAL(getpagesize)();
}

int uname(struct utsname *u)
{
	int r = REAL(uname)(u);
	if (!r && tce_active())
		strcpy(u->machine, "ppc64le"); /* the modelled machine; release and version stay the host's */
	return r;
}
