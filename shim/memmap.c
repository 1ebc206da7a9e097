/*
 * The program's address space as the model must see it. Before the model pins user memory
 * (REGISTER_MEMORY, MAP_DMA) the shim reports the real mappings over that range from
 * /proc/self/smaps: holes, read-only, hugetlb (with its page size), THP-advised or plain
 * anonymous. mmap() hands out mappings aligned to the model's page size, as a kernel with that
 * page size would, and MAP_HUGETLB gives the model's answer: ENOENT when its MMU has no huge
 * page size, otherwise ordinary memory aligned to the huge page that is reported as hugetlb.
 */
#include "tcelab.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>

#define MAX_EMULATED 64
#define HUGE_FLAGS_MASK (MAP_HUGETLB | (0x3f << 26)) /* MAP_HUGETLB and MAP_HUGE_<size> */

/* Mappings given out for MAP_HUGETLB: the model sees them as hugetlb. */
static struct range {
	uint64_t s, e;
} emulated[MAX_EMULATED];
static int n_emulated;

struct vma {
	uint64_t s, e;
	char perms[5];
	unsigned long kps_kb;
	int hugetlb, thp;
};

static int is_emulated_hugetlb(uint64_t addr)
{
	for (int i = 0; i < n_emulated; i++)
		if (addr >= emulated[i].s && addr < emulated[i].e)
			return 1;
	return 0;
}

/*
 * What was last read from /proc/self/smaps, and the ranges already reported from it. Reading
 * smaps costs the kernel a page-table walk of every mapping, so it is read again only when the
 * view may be stale: after an interposed call that changes mappings (mmap, munmap, mprotect,
 * madvise, mremap: tce_memory_changed), when the view has a hole in the range (something may
 * have been mapped there since), or when mincore() finds a page of a range the view has as mapped
 * gone (a mapping libc removed without going through an interposed call). A range already reported
 * from the current view is not reported again: the model holds exactly that already.
 */
#define MAX_REPORTED 64
static struct vma *view;
static size_t n_view, view_cap;
static int view_valid;
static pthread_mutex_t view_lock = PTHREAD_MUTEX_INITIALIZER;
static struct range reported[MAX_REPORTED];
static int n_reported;

void tce_memory_changed(void) { view_valid = 0; }

static char *read_smaps(void)
{
	int fd = REAL(open)("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t n = 0, cap = 1 << 16;
	char *b = malloc(cap);
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap *= 2;
			char *nb = realloc(b, cap);
			if (!nb)
				break;
			b = nb;
		}
		ssize_t r = REAL(read)(fd, b + n, cap - n - 1);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	REAL(close)(fd);
	b[n] = 0;
	return b;
}

static void view_push(const struct vma *v)
{
	if (!v->e)
		return;
	if (n_view == view_cap) {
		size_t cap = view_cap ? view_cap * 2 : 64;
		struct vma *nv = realloc(view, cap * sizeof(*view));
		if (!nv)
			abort();
		view = nv;
		view_cap = cap;
	}
	view[n_view++] = *v;
}

/* Read smaps into `view`; a new view has nothing reported from it yet. */
static int read_view(void)
{
	char *smaps = read_smaps();
	if (!smaps)
		return -1;
	n_view = 0;
	struct vma v = { 0 };
	for (char *line = strtok(smaps, "\n"); line; line = strtok(NULL, "\n")) {
		unsigned long long s, e;
		char perms[5];
		if (sscanf(line, "%llx-%llx %4s", &s, &e, perms) == 3 && strchr(line, '-') < strchr(line, ' ')) {
			view_push(&v);
			v = (struct vma){ .s = s, .e = e };
			memcpy(v.perms, perms, 5);
		} else if (!strncmp(line, "KernelPageSize:", 15)) {
			v.kps_kb = strtoul(line + 15, NULL, 10);
		} else if (!strncmp(line, "VmFlags:", 8)) {
			v.hugetlb = strstr(line, " ht") != NULL;
			v.thp = strstr(line, " hg") != NULL;
		}
	}
	view_push(&v);
	free(smaps);
	view_valid = 1;
	n_reported = 0;
	return 0;
}

/* Does the view have every byte of [lo, hi) in a readable mapping? */
static int view_covers(uint64_t lo, uint64_t hi)
{
	uint64_t at = lo;
	for (size_t i = 0; i < n_view && at < hi; i++) {
		const struct vma *v = &view[i];
		if (v->e <= at)
			continue;
		if (v->s > at || v->perms[0] != 'r')
			return 0;
		at = v->e;
	}
	return at >= hi;
}

/* Is every real page of [lo, hi) still mapped? mincore() fails with ENOMEM on a hole. */
static int still_mapped(uint64_t lo, uint64_t hi)
{
	static unsigned char vec[4096];
	uint64_t ps = (uint64_t)REAL(sysconf)(_SC_PAGESIZE);
	lo &= ~(ps - 1);
	while (lo < hi) {
		uint64_t n = (hi - lo + ps - 1) / ps;
		if (n > sizeof(vec))
			n = sizeof(vec);
		if (mincore((void *)(uintptr_t)lo, n * ps, vec))
			return 0;
		lo += n * ps;
	}
	return 1;
}

static int already_reported(uint64_t lo, uint64_t hi)
{
	for (int i = 0; i < n_reported; i++)
		if (reported[i].s <= lo && hi <= reported[i].e)
			return 1;
	return 0;
}

static void note_reported(uint64_t lo, uint64_t hi)
{
	for (int i = 0; i < n_reported; i++) {
		struct range *r = &reported[i];
		if (lo <= r->e && r->s <= hi) { /* overlapping or touching: grow it */
			r->s = lo < r->s ? lo : r->s;
			r->e = hi > r->e ? hi : r->e;
			return;
		}
	}
	if (n_reported == MAX_REPORTED)
		n_reported = 0; /* forget the oldest ones: they are only reported again */
	reported[n_reported++] = (struct range){ lo, hi };
}

struct vma_kind {
	uint8_t kind, shift;
};

static struct vma_kind kind_of(const struct vma *v)
{
	if (v->hugetlb || is_emulated_hugetlb(v->s))
		return (struct vma_kind){ SEG_HUGETLB, v->hugetlb ? (uint8_t)(__builtin_ctzl(v->kps_kb) + 10) : (uint8_t)tce_model.huge_shift };
	if (v->perms[1] != 'w')
		return (struct vma_kind){ SEG_READONLY, 0 };
	return (struct vma_kind){ v->thp ? SEG_THP : SEG_ANON, 0 };
}

/* Queue OP_MEMORY for [lo, hi): every readable mapping of the view inside it, clipped. It goes
 * to the server with the request that needs it (tce_queue). */
static int report_range_locked(uint64_t lo, uint64_t hi)
{
	int fresh = 0;
	if (!view_valid || !view_covers(lo, hi) || !still_mapped(lo, hi)) {
		if (read_view())
			return -1;
		fresh = 1;
	}
	if (!fresh && already_reported(lo, hi))
		return 0;
	struct tce_msg m = { 0 };
	msg_u8(&m, OP_MEMORY);
	msg_u64(&m, lo);
	msg_u64(&m, hi);
	size_t count_at = m.n;
	uint32_t count = 0;
	msg_u32(&m, 0);
	for (size_t i = 0; i < n_view; i++) {
		const struct vma *v = &view[i];
		if (v->e <= lo || v->s >= hi || v->perms[0] != 'r')
			continue; /* outside, or no access at all: a hole to the model */
		struct vma_kind k = kind_of(v);
		msg_u64(&m, v->s < lo ? lo : v->s);
		msg_u64(&m, v->e > hi ? hi : v->e);
		msg_u8(&m, k.kind);
		msg_u8(&m, k.shift);
		count++;
	}
	memcpy(m.p + count_at, &count, 4);
	tce_queue(&m);
	note_reported(lo, hi);
	return 0;
}

/* Threads share the view: one report at a time. */
static int report_range(uint64_t lo, uint64_t hi)
{
	pthread_mutex_lock(&view_lock);
	int rc = report_range_locked(lo, hi);
	pthread_mutex_unlock(&view_lock);
	return rc;
}

int tce_report_memory(uint64_t addr, uint64_t size)
{
	if (!tce_model.pid && tce_connect()) /* the page size comes with the connection */
		return -1;
	uint64_t ps = tce_model.page_size;
	uint64_t lo = addr & ~(ps - 1);
	uint64_t hi = size > UINT64_MAX - addr ? UINT64_MAX : addr + size;
	hi = hi > UINT64_MAX - (ps - 1) ? UINT64_MAX : (hi + ps - 1) & ~(ps - 1);
	if (hi <= lo)
		hi = lo + ps;
	return report_range(lo, hi);
}

int tce_report_hugetlb(void)
{
	for (int i = 0; i < n_emulated; i++)
		if (tce_report_memory(emulated[i].s, emulated[i].e - emulated[i].s))
			return -1;
	return 0;
}

int tce_report_all_memory(void)
{
	if (tce_connect())
		return -1;
	return report_range(0, UINT64_MAX);
}

/* An anonymous mapping at an address aligned to `align`, `len` rounded up to it. */
static void *aligned_map(void *hint, size_t len, size_t align, int prot, int flags)
{
	size_t len_r = (len + align - 1) & ~(align - 1);
	if (len_r < len || len_r + align < len_r) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	uint8_t *res = REAL(mmap)(hint, len_r + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		return MAP_FAILED;
	uint8_t *a = (uint8_t *)(((uintptr_t)res + align - 1) & ~(uintptr_t)(align - 1));
	void *p = REAL(mmap)(a, len_r, prot, flags | MAP_FIXED, -1, 0);
	if (p == MAP_FAILED) {
		int e = errno;
		REAL(munmap)(res, len_r + align);
		errno = e;
		return MAP_FAILED;
	}
	if (a > res)
		REAL(munmap)(res, (size_t)(a - res));
	if (res + len_r + align > a + len_r)
		REAL(munmap)(a + len_r, (size_t)(res + len_r + align - (a + len_r)));
	return p;
}

static void *model_mmap(void *addr, size_t len, int prot, int flags, int *ours)
{
	int fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE);
	*ours = tce_active() && (flags & MAP_ANONYMOUS) && (!fixed || (flags & MAP_HUGETLB)) && len && !tce_connect();
	if (!*ours)
		return NULL;
	size_t real_ps = (size_t)REAL(sysconf)(_SC_PAGESIZE);
	if (flags & MAP_HUGETLB) {
		if (!tce_model.huge_shift) {
			errno = ENOENT; /* hugetlbfs has no page size to offer (QEMU radix: none) */
			return MAP_FAILED;
		}
		if (n_emulated == MAX_EMULATED) {
			errno = ENOMEM;
			return MAP_FAILED;
		}
		size_t hs = (size_t)1 << tce_model.huge_shift;
		void *p;
		if (fixed) { /* at addr, which must be huge-page aligned (EINVAL otherwise, as hugetlbfs) */
			size_t len_r = (len + hs - 1) & ~(hs - 1);
			if (((uintptr_t)addr & (hs - 1)) || len_r < len) {
				errno = EINVAL;
				return MAP_FAILED;
			}
			p = REAL(mmap)(addr, len_r, prot, (flags & ~HUGE_FLAGS_MASK) | MAP_NORESERVE, -1, 0);
		} else {
			p = aligned_map(addr, len, hs, prot, (flags & ~HUGE_FLAGS_MASK) | MAP_NORESERVE);
		}
		if (p != MAP_FAILED)
			emulated[n_emulated++] = (struct range){ (uintptr_t)p, (uintptr_t)p + ((len + hs - 1) & ~(hs - 1)) };
		return p;
	}
	if (tce_model.page_size <= real_ps) {
		*ours = 0;
		return NULL;
	}
	return aligned_map(addr, len, tce_model.page_size, prot, flags);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	tce_memory_changed();
	int ours;
	void *p = model_mmap(addr, len, prot, flags, &ours);
	return ours ? p : REAL(mmap)(addr, len, prot, flags, fd, off);
}
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	tce_memory_changed();
	int ours;
	void *p = model_mmap(addr, len, prot, flags, &ours);
	return ours ? p : REAL(mmap64)(addr, len, prot, flags, fd, off);
}

int munmap(void *addr, size_t len)
{
	tce_memory_changed();
	uint64_t a = (uintptr_t)addr, b = a + len;
	for (int i = 0; i < n_emulated; i++) {
		struct range *r = &emulated[i];
		if (r->e <= a || r->s >= b)
			continue;
		if (r->s < a && r->e > b && n_emulated < MAX_EMULATED) /* a hole in the middle: split */
			emulated[n_emulated++] = (struct range){ b, r->e };
		if (r->s < a)
			r->e = a;
		else if (r->e > b)
			r->s = b;
		else
			emulated[i--] = emulated[--n_emulated];
	}
	return REAL(munmap)(addr, len);
}

/* The other calls that change what smaps says about a range: passed through, the view dropped. */
int mprotect(void *addr, size_t len, int prot)
{
	tce_memory_changed();
	return REAL(mprotect)(addr, len, prot);
}
int pkey_mprotect(void *addr, size_t len, int prot, int pkey)
{
	tce_memory_changed();
	return REAL(pkey_mprotect)(addr, len, prot, pkey);
}
int madvise(void *addr, size_t len, int advice)
{
	tce_memory_changed();
	return REAL(madvise)(addr, len, advice);
}
int posix_madvise(void *addr, size_t len, int advice)
{
	tce_memory_changed();
	return REAL(posix_madvise)(addr, len, advice);
}
void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	void *new_addr = va_arg(ap, void *);
	va_end(ap);
	tce_memory_changed();
	return REAL(mremap)(old, old_len, new_len, flags, new_addr);
}
void *shmat(int id, const void *addr, int flags)
{
	tce_memory_changed();
	return REAL(shmat)(id, addr, flags);
}
int shmdt(const void *addr)
{
	tce_memory_changed();
	return REAL(shmdt)(addr);
}
