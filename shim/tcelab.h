/*
 * tcelab shim: an LD_PRELOAD library that runs an unmodified VFIO program against the tcelab
 * model. It forwards what a VFIO program asks of the kernel (the VFIO device files, /dev/kmsg,
 * /proc/self/status, page size, RLIMIT_MEMLOCK, uid, fork and exit) to `tcelab serve` over a
 * UNIX socket and lets everything else through to the real system. docs/socket-protocol.md
 * describes the frames.
 */
#ifndef TCELAB_SHIM_H
#define TCELAB_SHIM_H
#undef _FORTIFY_SOURCE
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Request codes (docs/socket-protocol.md). */
enum {
	OP_HELLO = 1,
	OP_OPEN = 2,
	OP_CLOSE = 3,
	OP_DUP = 4,
	OP_IOCTL = 5,
	OP_READ = 6,
	OP_LSEEK = 7,
	OP_MEMORY = 8,
	OP_PROC_TEXT = 9,
	OP_SETRLIMIT_MEMLOCK = 10,
	OP_SETUID = 11,
	OP_FORK = 12,
	OP_EXIT = 13,
	OP_REAP = 14,
};

/* OP_PROC_TEXT files. */
enum { PROC_CPUINFO = 0, PROC_MEMINFO = 1, PROC_SMAPS_ROLLUP = 2, PROC_STATUS = 3 };

/* OP_MEMORY segment kinds (the model's MappingKind). */
enum { SEG_ANON = 0, SEG_READONLY = 1, SEG_HUGETLB = 2, SEG_THP = 3 };

/* The real libc function behind an interposed one. */
#define REAL(fn) ({ static __typeof__(&fn) real_; if (!real_) real_ = (__typeof__(&fn))dlsym(RTLD_NEXT, #fn); real_; })

/* ---- conn.c: the connection to the server ---- */
struct tce_msg {
	uint8_t *p;
	size_t n, cap;
};
void msg_u8(struct tce_msg *m, uint8_t v);
void msg_u32(struct tce_msg *m, uint32_t v);
void msg_u64(struct tce_msg *m, uint64_t v);
void msg_bytes(struct tce_msg *m, const void *p, size_t n);

struct tce_reply {
	int32_t ret, err;
	uint8_t *body; /* malloc'd, body_len bytes; free with free() */
	size_t body_len;
};

/* The model as the server described it in its HELLO answer. */
struct tce_model {
	int32_t pid;          /* this process's model pid, 0 until connected */
	uint32_t page_size;   /* the modelled kernel's PAGE_SIZE */
	uint32_t huge_shift;  /* the MMU's huge page shift, 0 when it has none */
};
extern struct tce_model tce_model;

/* Queue a request whose answer only matters for errors (OP_MEMORY): it goes out with the next
 * tce_call's request in the same write, and its answer is read and dropped then. The request
 * buffer is freed. */
void tce_queue(struct tce_msg *req);
/* Send one request (first byte: op), after any queued ones, and wait for its answer. Returns 0, or -1 with errno set
 * when the model cannot be reached. The request buffer is freed. */
int tce_call(struct tce_msg *req, struct tce_reply *rep);
/* Is TCELAB_SOCKET set (the shim is active)? */
int tce_active(void);
/* Connect now if not yet connected; 0 or -1 with errno. */
int tce_connect(void);
/* After fork(): the child drops the parent's connection and attaches to its own model pid. */
void tce_after_fork_child(int32_t model_pid);
/* Tell the server this process exits (synchronously). Idempotent. */
void tce_exit(void);

/* ---- fds.c: real descriptors that stand for model descriptors ---- */
#define TCE_MAX_FDS 4096
enum { FD_NONE = 0, FD_MODEL = 1, FD_STATUS = 2 };
int fd_model(int realfd);   /* the model fd, or -1 */
int fd_kind(int realfd);
off_t *fd_pos(int realfd);  /* read position of a /proc/self/status fd */
/* Reserve a real fd number for model fd `mfd` (lowest free, as the kernel would hand out). */
int fd_install(int mfd, int kind, int cloexec);
void fd_forget(int realfd);
void fd_bind(int realfd, int mfd, int kind);
/* `realfd` is a dup of `oldfd`: the same open file. */
void fd_share(int realfd, int oldfd);
/* VFIO_SET_IOMMU succeeded on the file of `realfd` (every descriptor of it): v2 or not. */
void fd_set_v2(int realfd, int v2);
/* Is `realfd` a container of type sPAPR TCE v2 (as far as this process set it)? */
int fd_v2(int realfd);

/* ---- memmap.c: the program's address space as the model must see it ---- */
/* Report the real mappings over [addr, addr+size) (rounded out to model pages), unless that range
 * was reported from the same view of /proc/self/smaps already. Queued: it goes with the next call. */
int tce_report_memory(uint64_t addr, uint64_t size);
/* Report the hugetlb mappings (before a fork: the child's copies are shared copy-on-write). */
int tce_report_hugetlb(void);
/* Report the whole address space. */
int tce_report_all_memory(void);
/* The mappings may have changed (an interposed call changed them, or this is a new process):
 * read smaps again before the next report, and report it whole. */
void tce_memory_changed(void);

/* ---- proctext.c ---- */
/* A real, readable fd holding the model's text of a /proc file. */
int tce_proc_text_fd(int which);
int tce_proc_text_which(const char *path);

/* ---- a model call returning ret/errno like a system call ---- */
long tce_simple(struct tce_msg *req);
/* An answer of errno -S: the modelled kernel killed the task with signal S (an oops). */
void tce_check_killed(const struct tce_reply *r);

#endif
