/*
 * Real descriptors that stand for model descriptors. Each model fd is backed by a real fd on
 * /dev/null, so the numbers the program sees never collide with its real files.
 */
#include "tcelab.h"
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

static struct {
	int kind;
	int model;
	off_t pos;
} fds[TCE_MAX_FDS];

int fd_kind(int realfd)
{
	return realfd >= 0 && realfd < TCE_MAX_FDS ? fds[realfd].kind : FD_NONE;
}

int fd_model(int realfd)
{
	return fd_kind(realfd) == FD_NONE ? -1 : fds[realfd].model;
}

off_t *fd_pos(int realfd)
{
	return &fds[realfd].pos;
}

void fd_bind(int realfd, int mfd, int kind)
{
	fds[realfd].kind = kind;
	fds[realfd].model = mfd;
	fds[realfd].pos = 0;
}

void fd_forget(int realfd)
{
	if (realfd >= 0 && realfd < TCE_MAX_FDS)
		fds[realfd].kind = FD_NONE;
}

int fd_install(int mfd, int kind, int cloexec)
{
	int fd = REAL(open)("/dev/null", O_RDWR | (cloexec ? O_CLOEXEC : 0));
	if (fd < 0)
		return -1;
	if (fd >= TCE_MAX_FDS) {
		REAL(close)(fd);
		errno = EMFILE;
		return -1;
	}
	fd_bind(fd, mfd, kind);
	return fd;
}
