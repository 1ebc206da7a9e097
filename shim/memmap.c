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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_EMULATED 64
#define HUGE_FLAGS_MASK (MAP_HUGETLB | (0x3f << 26)) /* MAP_HUGETLB and MAP_HUGE_<size> */

/* Mappings given out for MAP_HUGETLB: the model sees them as hugetlb. */
static struct range {
	uint64_t s, e;
} emulated[MAX_EMULATED];
static int n_emulated;

static int is_emulated_hugetlb(uint64_t addr)
{
	for (int i = 0; i < n_emulated; i++)
		if (addr >= emulated[i].s && addr < emulated[i].e)
			return 1;
	return 0;
}

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

struct vma {
	uint64_t s, e;
	char perms[5];
	unsigned long kps_kb;
	int hugetlb, thp;
};

static void add_segment(struct tce_msg *m, uint32_t *count, const struct vma *v, uint64_t lo, uint64_t hi)
{
	if (!v->e || v->e <= lo || v->s >= hi || v->perms[0] != 'r')
		return; /* outside, or no access at all: a hole to the model */
	uint8_t kind = SEG_ANON, shift = 0;
	if (v->hugetlb || is_emulated_hugetlb(v->s)) {
		kind = SEG_HUGETLB;
		shift = v->hugetlb ? (uint8_t)(__builtin_ctzl(v->kps_kb) + 10) : (uint8_t)tce_model.huge_shift;
	} else if (v->perms[1] != 'w') {
		kind = SEG_READONLY;
	} else if (v->thp) {
		kind = SEG_THP;
	}
	msg_u64(m, v->s < lo ? lo : v->s);
	msg_u64(m, v->e > hi ? hi : v->e);
	msg_u8(m, kind);
	msg_u8(m, shift);
	(*count)++;
}

/* Send OP_MEMORY for [lo, hi): every readable mapping inside it, clipped. */
static int report_range(uint64_t lo, uint64_t hi)
{
	if (tce_connect())
		return -1;
	char *smaps = read_smaps();
	if (!smaps)
		return -1;
	struct tce_msg m = { 0 };
	msg_u8(&m, OP_MEMORY);
	msg_u64(&m, lo);
	msg_u64(&m, hi);
	size_t count_at = m.n;
	uint32_t count = 0;
	msg_u32(&m, 0);
	struct vma v = { 0 };
	for (char *line = strtok(smaps, "\n"); line; line = strtok(NULL, "\n")) {
		unsigned long long s, e;
		char perms[5];
		if (sscanf(line, "%llx-%llx %4s", &s, &e, perms) == 3 && strchr(line, '-') < strchr(line, ' ')) {
			add_segment(&m, &count, &v, lo, hi);
			v = (struct vma){ .s = s, .e = e };
			memcpy(v.perms, perms, 5);
		} else if (!strncmp(line, "KernelPageSize:", 15)) {
			v.kps_kb = strtoul(line + 15, NULL, 10);
		} else if (!strncmp(line, "VmFlags:", 8)) {
			v.hugetlb = strstr(line, " ht") != NULL;
			v.thp = strstr(line, " hg") != NULL;
		}
	}
	add_segment(&m, &count, &v, lo, hi);
	free(smaps);
	memcpy(m.p + count_at, &count, 4);
	return tce_simple(&m) < 0 ? -1 : 0;
}

int tce_report_memory(uint64_t addr, uint64_t size)
{
	if (tce_connect())
		return -1;
	uint64_t ps = tce_model.page_size;
	uint64_t lo = addr & ~(ps - 1);
	uint64_t hi = size > UINT64_MAX - addr ? UINT64_MAX : addr + size;
	hi = hi > UINT64_MAX - (ps - 1) ? UINT64_MAX : (hi + ps - 1) & ~(ps - 1);
	if (hi <= lo)
		hi = lo + ps;
	return report_range(lo, hi);
}

int tce_report_all_memory(void)
{
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
	*ours = tce_active() && (flags & MAP_ANONYMOUS) && !(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) && len && !tce_connect();
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
		void *p = aligned_map(addr, len, hs, prot, (flags & ~HUGE_FLAGS_MASK) | MAP_NORESERVE);
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
	int ours;
	void *p = model_mmap(addr, len, prot, flags, &ours);
	return ours ? p : REAL(mmap)(addr, len, prot, flags, fd, off);
}
void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	int ours;
	void *p = model_mmap(addr, len, prot, flags, &ours);
	return ours ? p : REAL(mmap64)(addr, len, prot, flags, fd, off);
}

int munmap(void *addr, size_t len)
{
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
