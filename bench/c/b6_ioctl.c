/*
 * B6 baseline, in process: VFIO_IOMMU_MAP_DMA then VFIO_IOMMU_UNMAP_DMA of one 64K page through
 * an ioctl entry point taking the binary structs of <linux/vfio.h> (fd table lookup, container
 * dispatch, copy_from_user, argsz/flags/alignment checks, table lookup, the parameter check,
 * tce_iommu_build_v2 / tce_iommu_clear and the kill) into a 64K-page DDW, cycling over 1024
 * IOVAs and user pages.
 */
#include "vfio_v2.h"

#define SLOTS 1024
#define MAP_DMA 0x3b71 /* _IO(VFIO_TYPE, VFIO_BASE + 13) */
#define UNMAP_DMA 0x3b72

struct dma_map {
	uint32_t argsz, flags;
	uint64_t vaddr, iova, size;
};

struct dma_unmap {
	uint32_t argsz, flags;
	uint64_t iova, size;
};

struct container {
	int enabled;
	struct tce_table *tables[2];
	struct mm *mm;
};

struct file {
	int kind; /* 1 = container */
	struct container *c;
};

struct ctx {
	struct pmem mem;
	struct mm mm;
	struct region r;
	struct mapping mp;
	struct tce_table t;
	struct container cont;
	struct file *fds[16];
	struct dma_map maps[SLOTS];
	struct dma_unmap unmaps[SLOTS];
	uint64_t pairs, events;
};

static struct tce_table *find_table(struct container *c, uint64_t ioba)
{
	for (int i = 0; i < 2; i++) {
		struct tce_table *t = c->tables[i];
		if (!t)
			continue;
		uint64_t entry = ioba >> t->page_shift;
		if (entry >= t->offset && entry < t->offset + t->size)
			return t;
	}
	return NULL;
}

static int param_check(struct tce_table *t, uint64_t ioba, uint64_t gpa, int has_gpa)
{
	uint64_t mask = (1ull << t->page_shift) - 1, first = ioba >> t->page_shift;
	if (ioba & mask || first < t->offset || first + 1 > t->offset + t->size || (has_gpa && gpa & mask))
		return 1; /* the real kernel's quirk */
	return 0;
}

static long container_ioctl(struct ctx *x, struct container *c, unsigned cmd, void *arg)
{
	if (!c->enabled)
		return -1;
	if (cmd == MAP_DMA) {
		struct dma_map p;
		memcpy(&p, arg, sizeof(p));
		if (p.argsz < sizeof(p) || p.flags & ~3u)
			return -22;
		struct tce_table *t = find_table(c, p.iova);
		if (!t)
			return -6;
		uint64_t mask = (1ull << t->page_shift) - 1;
		if (p.size & mask || p.vaddr & mask || !(p.flags & 3))
			return -22;
		int dir = (p.flags & 1) ? ((p.flags & 2) ? 0 : 1) : 2;
		long ret = param_check(t, p.iova, p.vaddr, 1);
		if (ret)
			return ret;
		return tce_iommu_build_v2(c->mm, t, p.iova >> t->page_shift, p.vaddr, p.size >> t->page_shift, dir, 0x1fd);
	}
	if (cmd == UNMAP_DMA) {
		struct dma_unmap p;
		memcpy(&p, arg, sizeof(p));
		if (p.argsz < sizeof(p) || p.flags)
			return -22;
		struct tce_table *t = find_table(c, p.iova);
		if (!t)
			return -6;
		if (p.size & ((1ull << t->page_shift) - 1))
			return -22;
		long ret = param_check(t, p.iova, 0, 0);
		if (ret)
			return ret;
		tce_iommu_clear(c->mm, t, p.iova >> t->page_shift, p.size >> t->page_shift, 0x1fd);
		return 0;
	}
	(void)x;
	return -25;
}

__attribute__((noinline)) static long sys_ioctl(struct ctx *x, int fd, unsigned cmd, void *arg)
{
	if (fd < 0 || fd >= 16 || !x->fds[fd])
		return -9;
	struct file *f = x->fds[fd];
	long r = f->kind == 1 ? container_ioctl(x, f->c, cmd, arg) : -25;
	x->events++;
	return r;
}

static struct run_result run(void *p)
{
	struct ctx *x = p;
	uint64_t bad = 0;
	for (uint64_t i = 0; i < x->pairs; i++) {
		unsigned k = i & (SLOTS - 1);
		bad += sys_ioctl(x, 3, MAP_DMA, &x->maps[k]) != 0;
		bad += sys_ioctl(x, 3, UNMAP_DMA, &x->unmaps[k]) != 0;
	}
	if (bad) {
		fprintf(stderr, "b6: %llu calls failed\n", (unsigned long long)bad);
		exit(1);
	}
	return (struct run_result){ 2.0 * x->pairs, 2.0 * x->pairs, 0 };
}

int main(int argc, char **argv)
{
	static struct ctx x;
	static struct file cf;
	x.pairs = argc > 1 ? strtoull(argv[1], NULL, 0) : 50000;
	uint64_t buf = 0x10000000ull;
	pmem_init(&x.mem, 2ull << 30, 16, 64ull << 20);
	mm_prereg(&x.mm, &x.r, &x.mp, buf, (uint64_t)SLOTS << 16, 16, 8192);
	tce_table_create(&x.t, &x.mem, 1ull << 59, 16, 32, 2, 1);
	x.cont = (struct container){ 1, { NULL, &x.t }, &x.mm };
	cf = (struct file){ 1, &x.cont };
	x.fds[3] = &cf;
	for (unsigned k = 0; k < SLOTS; k++) {
		uint64_t iova = (x.t.offset + k) << 16;
		x.maps[k] = (struct dma_map){ 32, 3, buf + ((uint64_t)k << 16), iova, 1 << 16 };
		x.unmaps[k] = (struct dma_unmap){ 24, 0, iova, 1 << 16 };
	}
	return serve(run, &x);
}
