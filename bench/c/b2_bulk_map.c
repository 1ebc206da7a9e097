/*
 * B2 baseline: VFIO v2 MAP_DMA of 4 GiB of preregistered memory into a fresh 64K-page DDW
 * (4 GiB window, 2 levels, levels on demand, hardware table plus userspace view, big-endian
 * entries in a sparse page store), then UNMAP_DMA. Table create/free are untimed, as on the
 * model side.
 */
#include "vfio_v2.h"

struct ctx {
	struct pmem mem;
	struct mm mm;
	struct region r;
	struct mapping mp;
	uint64_t bytes;
};

static struct run_result run(void *p)
{
	struct ctx *c = p;
	struct tce_table t;
	uint64_t pages = c->bytes >> 16;
	unsigned window_shift = 63 - __builtin_clzll(c->bytes < (4ull << 30) ? 4ull << 30 : c->bytes);
	tce_table_create(&t, &c->mem, 1ull << 59, 16, window_shift, 2, 1);
	double t0 = now_s();
	if (tce_iommu_build_v2(&c->mm, &t, t.offset, c->r.ua, pages, 0, 0x1fd)) {
		fprintf(stderr, "b2: build failed\n");
		exit(1);
	}
	tce_iommu_clear(&c->mm, &t, t.offset, pages, 0x1fd);
	double dt = now_s() - t0;
	tce_iommu_clear(&c->mm, &t, t.offset, t.size, 0x1fd); /* TCE_REMOVE clears the window, then frees */
	tce_table_free(&t);
	return (struct run_result){ 2.0 * pages, (double)pages, dt };
}

int main(int argc, char **argv)
{
	static struct ctx c;
	c.bytes = argc > 1 ? strtoull(argv[1], NULL, 0) : 4ull << 30;
	pmem_init(&c.mem, 8ull << 30, 16, 64ull << 20);
	mm_prereg(&c.mm, &c.r, &c.mp, 0x100000000ull, c.bytes, 16, (64ull << 20 >> 16) + 4096);
	return serve(run, &c);
}
