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
	unsigned file; /* the open file (a dup shares it), numbered as opened */
	int v2;        /* the file is a container whose IOMMU type is sPAPR TCE v2 */
} fds[TCE_MAX_FDS];
static unsigned files_opened;

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
	fds[realfd].file = ++files_opened;
	fds[realfd].v2 = 0;
}

void fd_share(int realfd, int oldfd)
{
	fds[realfd].file = fds[oldfd].file;
	fds[realfd].v2 = fds[oldfd].v2;
}

void fd_set_v2(int realfd, int v2)
{
	unsigned file = fds[realfd].file;
	for (int i = 0; i < TCE_MAX_FDS; i++)
		if (fds[i].kind != FD_NONE && fds[i].file == file)
			fds[i].v2 = v2;
}

int fd_v2(int realfd)
{
	return fd_kind(realfd) == FD_MODEL && fds[realfd].v2;
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
