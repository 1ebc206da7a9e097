/*
 * File calls on the files the model owns: /dev/vfio/vfio, /dev/vfio/N, /dev/kmsg and
 * /proc/self/status become model descriptors; /proc/cpuinfo, /proc/meminfo and
 * /proc/self/smaps_rollup read the model's text. Every other file passes through.
 */
#include "tcelab.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOT_OURS (-2)

static int is_model_path(const char *p)
{
	if (!strcmp(p, "/dev/vfio/vfio") || !strcmp(p, "/dev/kmsg") || !strcmp(p, "/proc/self/status") || !strcmp(p, "/dev/iommu"))
		return 1;
	/* /dev/vfio/N and the device cdevs /dev/vfio/devices/vfioN */
	size_t digits = !strncmp(p, "/dev/vfio/devices/vfio", 22) ? 22 : 10;
	if (strncmp(p, "/dev/vfio/", 10) || !p[digits])
		return 0;
	for (const char *c = p + digits; *c; c++)
		if (*c < '0' || *c > '9')
			return 0;
	return 1;
}

static int model_open(const char *path, int flags)
{
	if (!path || !tce_active())
		return NOT_OURS;
	int which = tce_proc_text_which(path);
	if (which >= 0 && which != PROC_STATUS)
		return tce_proc_text_fd(which);
	if (!is_model_path(path))
		return NOT_OURS;
	struct tce_msg m = { 0 };
	msg_u8(&m, OP_OPEN);
	msg_bytes(&m, path, strlen(path));
	long mfd = tce_simple(&m);
	if (mfd < 0)
		return -1;
	int fd = fd_install((int)mfd, which == PROC_STATUS ? FD_STATUS : FD_MODEL, flags & O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		struct tce_msg c = { 0 };
		msg_u8(&c, OP_CLOSE);
		msg_u32(&c, (uint32_t)mfd);
		tce_simple(&c);
		errno = e;
	}
	return fd;
}

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
}

#define OPEN_WRAPPER(name)                                       \
	int name(const char *path, int flags, ...)               \
	{                                                        \
		va_list ap;                                      \
		va_start(ap, flags);                             \
		mode_t mode = mode_arg(flags, ap);               \
		va_end(ap);                                      \
		int fd = model_open(path, flags);                \
		return fd != NOT_OURS ? fd : REAL(name)(path, flags, mode); \
	}
OPEN_WRAPPER(open)
OPEN_WRAPPER(open64)

#define OPENAT_WRAPPER(name)                                               \
	int name(int dirfd, const char *path, int flags, ...)              \
	{                                                                  \
		va_list ap;                                                \
		va_start(ap, flags);                                       \
		mode_t mode = mode_arg(flags, ap);                         \
		va_end(ap);                                                \
		int fd = path[0] == '/' ? model_open(path, flags) : NOT_OURS; \
		return fd != NOT_OURS ? fd : REAL(name)(dirfd, path, flags, mode); \
	}
OPENAT_WRAPPER(openat)
OPENAT_WRAPPER(openat64)

/* What _FORTIFY_SOURCE builds call for open() with non-constant flags. */
int __open_2(const char *path, int flags)
{
	int fd = model_open(path, flags);
	return fd != NOT_OURS ? fd : REAL(__open_2)(path, flags);
}
int __open64_2(const char *path, int flags)
{
	int fd = model_open(path, flags);
	return fd != NOT_OURS ? fd : REAL(__open64_2)(path, flags);
}

static FILE *model_fopen(const char *path)
{
	int which = path && tce_active() ? tce_proc_text_which(path) : -1;
	if (which < 0)
		return NULL;
	int fd = tce_proc_text_fd(which);
	return fd < 0 ? NULL : fdopen(fd, "r");
}

FILE *fopen(const char *path, const char *mode)
{
	FILE *f = model_fopen(path);
	return f ? f : REAL(fopen)(path, mode);
}
FILE *fopen64(const char *path, const char *mode)
{
	FILE *f = model_fopen(path);
	return f ? f : REAL(fopen64)(path, mode);
}

static long model_fd_call(uint8_t op, int fd)
{
	struct tce_msg m = { 0 };
	msg_u8(&m, op);
	msg_u32(&m, (uint32_t)fd_model(fd));
	return tce_simple(&m);
}

int close(int fd)
{
	if (fd_kind(fd) == FD_NONE)
		return REAL(close)(fd);
	long r = model_fd_call(OP_CLOSE, fd);
	int e = errno;
	fd_forget(fd);
	REAL(close)(fd);
	errno = e;
	return (int)r;
}

/* Give real fd `realfd` (already a copy of `oldfd`'s /dev/null) a model dup of oldfd's file. */
static int bind_dup(int oldfd, int realfd)
{
	if (realfd < 0)
		return -1;
	long m2 = model_fd_call(OP_DUP, oldfd);
	if (m2 < 0) {
		int e = errno;
		REAL(close)(realfd);
		errno = e;
		return -1;
	}
	fd_bind(realfd, (int)m2, fd_kind(oldfd));
	fd_share(realfd, oldfd);
	return realfd;
}

/* dup2/dup3 onto a model fd closes that model file first, as the kernel's do_dup2() does. */
static void drop_target(int newfd)
{
	if (fd_kind(newfd) != FD_NONE) {
		model_fd_call(OP_CLOSE, newfd);
		fd_forget(newfd);
	}
}

int dup(int fd)
{
	if (fd_kind(fd) == FD_NONE)
		return REAL(dup)(fd);
	return bind_dup(fd, REAL(dup)(fd));
}

int dup2(int oldfd, int newfd)
{
	if (oldfd == newfd || (fd_kind(oldfd) == FD_NONE && fd_kind(newfd) == FD_NONE))
		return REAL(dup2)(oldfd, newfd);
	if (newfd >= TCE_MAX_FDS) {
		errno = EMFILE;
		return -1;
	}
	drop_target(newfd);
	int r = REAL(dup2)(oldfd, newfd);
	return fd_kind(oldfd) == FD_NONE || r < 0 ? r : bind_dup(oldfd, r);
}

int dup3(int oldfd, int newfd, int flags)
{
	if (oldfd == newfd || (fd_kind(oldfd) == FD_NONE && fd_kind(newfd) == FD_NONE))
		return REAL(dup3)(oldfd, newfd, flags);
	if (newfd >= TCE_MAX_FDS) {
		errno = EMFILE;
		return -1;
	}
	drop_target(newfd);
	int r = REAL(dup3)(oldfd, newfd, flags);
	return fd_kind(oldfd) == FD_NONE || r < 0 ? r : bind_dup(oldfd, r);
}

/* One read of a model file: the model answers with the bytes (a kmsg record, a status text). */
static ssize_t model_read_text(int fd, size_t count, char **text)
{
	struct tce_msg m = { 0 };
	struct tce_reply r = { 0 };
	msg_u8(&m, OP_READ);
	msg_u32(&m, (uint32_t)fd_model(fd));
	msg_u32(&m, count > UINT32_MAX ? UINT32_MAX : (uint32_t)count);
	if (tce_call(&m, &r))
		return -1;
	if (r.ret < 0) {
		free(r.body);
		errno = r.err;
		return -1;
	}
	*text = (char *)r.body;
	return (ssize_t)r.body_len;
}

/* read/pread: `off` < 0 reads at (and advances) the file position of a status file. */
static ssize_t model_read(int fd, void *buf, size_t count, off_t off)
{
	char *text = NULL;
	ssize_t n = model_read_text(fd, fd_kind(fd) == FD_STATUS ? 65536 : count, &text);
	if (n < 0)
		return -1;
	if (fd_kind(fd) == FD_MODEL) { /* /dev/kmsg: one record per read, EINVAL if it does not fit */
		if ((size_t)n > count) {
			free(text);
			errno = EINVAL;
			return -1;
		}
		memcpy(buf, text, (size_t)n);
		free(text);
		return n;
	}
	off_t *pos = fd_pos(fd);
	off_t at = off < 0 ? *pos : off;
	size_t c = at >= n ? 0 : (size_t)(n - at);
	if (c > count)
		c = count;
	if (c)
		memcpy(buf, text + at, c);
	free(text);
	if (off < 0)
		*pos += (off_t)c;
	return (ssize_t)c;
}

ssize_t read(int fd, void *buf, size_t count)
{
	return fd_kind(fd) == FD_NONE ? REAL(read)(fd, buf, count) : model_read(fd, buf, count, -1);
}
ssize_t __read_chk(int fd, void *buf, size_t count, size_t buflen)
{
	return fd_kind(fd) == FD_NONE ? REAL(__read_chk)(fd, buf, count, buflen) : model_read(fd, buf, count, -1);
}
ssize_t pread(int fd, void *buf, size_t count, off_t off)
{
	return fd_kind(fd) == FD_NONE ? REAL(pread)(fd, buf, count, off) : model_read(fd, buf, count, off);
}
ssize_t pread64(int fd, void *buf, size_t count, off_t off)
{
	return fd_kind(fd) == FD_NONE ? REAL(pread64)(fd, buf, count, off) : model_read(fd, buf, count, off);
}
ssize_t __pread_chk(int fd, void *buf, size_t count, off_t off, size_t buflen)
{
	return fd_kind(fd) == FD_NONE ? REAL(__pread_chk)(fd, buf, count, off, buflen) : model_read(fd, buf, count, off);
}
ssize_t __pread64_chk(int fd, void *buf, size_t count, off_t off, size_t buflen)
{
	return fd_kind(fd) == FD_NONE ? REAL(__pread64_chk)(fd, buf, count, off, buflen) : model_read(fd, buf, count, off);
}

static off_t model_lseek(int fd, off_t off, int whence)
{
	if (fd_kind(fd) == FD_STATUS) {
		off_t *pos = fd_pos(fd);
		off_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? *pos : -1;
		if (whence == SEEK_END) {
			char *text = NULL;
			ssize_t n = model_read_text(fd, 65536, &text);
			free(text);
			base = n < 0 ? -1 : n;
		}
		if (base < 0 || base + off < 0) {
			errno = EINVAL;
			return -1;
		}
		return *pos = base + off;
	}
	struct tce_msg m = { 0 };
	msg_u8(&m, OP_LSEEK);
	msg_u32(&m, (uint32_t)fd_model(fd));
	msg_u64(&m, (uint64_t)off);
	msg_u32(&m, (uint32_t)whence);
	return tce_simple(&m);
}

off_t lseek(int fd, off_t off, int whence)
{
	return fd_kind(fd) == FD_NONE ? REAL(lseek)(fd, off, whence) : model_lseek(fd, off, whence);
}
off_t lseek64(int fd, off_t off, int whence)
{
	return fd_kind(fd) == FD_NONE ? REAL(lseek64)(fd, off, whence) : model_lseek(fd, off, whence);
}
