/*
 * B1 baseline: dma_map_single/dma_unmap_single of 1-16 pages at seeded pseudo-random physical
 * addresses through a 2 GiB window of 64K TCEs (2 levels), with the kernel's pooled allocator:
 * 4 small pools over the bottom 3/4, a large pool above, hints bumped to it_blocksize, the
 * segment boundary check and the bitmap area search of lib/iommu-helper.c (written for the
 * benchmark after the algorithms the model implements in src/kernel/iommu.ts).
 */
#include "tce.h"

#define BITS_PER_LONG 64
#define NR_POOLS 4
#define RING 64

struct pool {
	uint64_t start, end, hint;
};

struct itbl {
	struct tce_table t;
	unsigned long *map;
	uint64_t it_size, it_offset, poolsize, blocksize;
	unsigned nr_pools;
	struct pool pools[NR_POOLS], large;
	int pe;
};

static uint64_t events; /* dma-map / dma-unmap events counted, as the model's EventLog counts them */

static inline unsigned long find_next_zero_bit(const unsigned long *map, uint64_t size, uint64_t start)
{
	if (start >= size)
		return size;
	uint64_t w = start / BITS_PER_LONG;
	unsigned long v = ~map[w] & (~0ul << (start % BITS_PER_LONG));
	while (!v) {
		if (++w * BITS_PER_LONG >= size)
			return size;
		v = ~map[w];
	}
	uint64_t r = w * BITS_PER_LONG + __builtin_ctzl(v);
	return r < size ? r : size;
}

static inline unsigned long find_next_bit(const unsigned long *map, uint64_t size, uint64_t start)
{
	if (start >= size)
		return size;
	uint64_t w = start / BITS_PER_LONG;
	unsigned long v = map[w] & (~0ul << (start % BITS_PER_LONG));
	while (!v) {
		if (++w * BITS_PER_LONG >= size)
			return size;
		v = map[w];
	}
	uint64_t r = w * BITS_PER_LONG + __builtin_ctzl(v);
	return r < size ? r : size;
}

static inline void bitmap_fill(unsigned long *map, uint64_t start, uint64_t nr, int set)
{
	for (uint64_t i = start; i < start + nr; i++) {
		if (set)
			map[i / BITS_PER_LONG] |= 1ul << (i % BITS_PER_LONG);
		else
			map[i / BITS_PER_LONG] &= ~(1ul << (i % BITS_PER_LONG));
	}
}

static inline uint64_t bitmap_find_next_zero_area(unsigned long *map, uint64_t size, uint64_t start, uint64_t nr,
						 uint64_t align_mask)
{
	for (;;) {
		uint64_t index = (find_next_zero_bit(map, size, start) + align_mask) & ~align_mask;
		uint64_t end = index + nr;
		if (end > size)
			return end;
		uint64_t busy = find_next_bit(map, end, index);
		if (busy >= end)
			return index;
		start = busy + 1;
	}
}

static inline int64_t iommu_area_alloc(unsigned long *map, uint64_t size, uint64_t start, uint64_t nr, uint64_t shift,
				       uint64_t boundary_size, uint64_t align_mask)
{
	size -= 1;
	for (;;) {
		uint64_t index = bitmap_find_next_zero_area(map, size, start, nr, align_mask);
		if (index >= size)
			return -1;
		if ((shift + index) % boundary_size + nr <= boundary_size) {
			bitmap_fill(map, index, nr, 1);
			return (int64_t)index;
		}
		start = ((shift + index + boundary_size - 1) / boundary_size) * boundary_size - shift;
	}
}

static inline uint32_t hash_32(uint32_t v, unsigned bits)
{
	return (v * 0x61c88647u) >> (32 - bits);
}

static int64_t iommu_range_alloc(struct itbl *tb, uint64_t npages, uint64_t mask, unsigned cpu, uint64_t boundary)
{
	int largealloc = npages > 15;
	unsigned pool_nr = hash_32(cpu, 2) & (tb->nr_pools - 1);
	struct pool *pool = largealloc ? &tb->large : &tb->pools[pool_nr];
	for (unsigned pass = 0;; pass++) {
		uint64_t start = pool->hint, limit = pool->end;
		if (start >= limit)
			start = pool->start;
		if (limit + tb->it_offset > mask) {
			limit = mask - tb->it_offset + 1;
			if ((start & mask) >= limit || pass > 0) {
				pool = &tb->pools[0];
				start = pool->start;
			} else {
				start &= mask;
			}
		}
		int64_t n = iommu_area_alloc(tb->map, limit, start, npages, tb->it_offset, boundary, 0);
		if (n != -1) {
			uint64_t end = n + npages;
			pool->hint = largealloc ? end : (end + tb->blocksize - 1) / tb->blocksize * tb->blocksize;
			return n;
		}
		if (pass > tb->nr_pools + 1)
			return -1;
		if (pass == tb->nr_pools + 1) {
			pool = &tb->large;
		} else if (pass > 0) {
			pool_nr = (pool_nr + 1) & (tb->nr_pools - 1);
			pool = &tb->pools[pool_nr];
		}
		pool->hint = pool->start;
	}
}

/* dma_map_single -> iommu_map_page -> iommu_alloc: allocate, build, kill. Returns the bus address. */
static uint64_t dma_map(struct itbl *tb, uint64_t pa, uint64_t size, unsigned cpu)
{
	unsigned shift = tb->t.page_shift;
	uint64_t psize = 1ull << shift;
	uint64_t npages = ((pa & (psize - 1)) + size + psize - 1) >> shift;
	uint64_t mask = ~0ull >> shift;
	uint64_t boundary = (0xffffffffull >> shift) + 1;
	int64_t n = iommu_range_alloc(tb, npages, mask, cpu, boundary);
	if (n < 0)
		return ~0ull;
	uint64_t entry = n + tb->it_offset;
	pnv_tce_build(&tb->t, entry, npages, pa & ~(psize - 1), 0);
	tce_kill(shift, entry << shift, npages, tb->pe);
	events++;
	return (entry << shift) | (pa & (psize - 1));
}

static void dma_unmap(struct itbl *tb, uint64_t dma, uint64_t size)
{
	unsigned shift = tb->t.page_shift;
	uint64_t psize = 1ull << shift;
	uint64_t npages = ((dma & (psize - 1)) + size + psize - 1) >> shift;
	uint64_t entry = dma >> shift;
	uint64_t free_entry = entry - tb->it_offset;
	if (free_entry + npages > tb->it_size || entry < tb->it_offset)
		return;
	pnv_tce_free(&tb->t, entry, npages);
	tce_kill(shift, entry << shift, npages, tb->pe);
	bitmap_fill(tb->map, free_entry, npages, 0);
	events++;
}

struct ctx {
	struct pmem mem;
	struct itbl tb;
	uint64_t ops;
	uint32_t seed;
	uint64_t ring_dma[RING], ring_size[RING];
	uint64_t ram_pages;
};

static struct run_result run(void *p)
{
	struct ctx *c = p;
	struct itbl *tb = &c->tb;
	uint32_t s = c->seed;
	uint32_t sum = 0;
	for (uint64_t i = 0; i < c->ops; i++) {
		unsigned slot = i & (RING - 1);
		if (c->ring_size[slot])
			dma_unmap(tb, c->ring_dma[slot], c->ring_size[slot]);
		uint64_t np = (xs32(&s) & 15) + 1;
		uint64_t pa = (uint64_t)(xs32(&s) % (c->ram_pages - 16)) << 16;
		uint64_t dma = dma_map(tb, pa, np << 16, i & 3);
		if (dma == ~0ull) {
			fprintf(stderr, "b1: map failed\n");
			exit(1);
		}
		sum += (uint32_t)(dma >> 16);
		c->ring_dma[slot] = dma;
		c->ring_size[slot] = np << 16;
	}
	/* Leave the table empty for the next run. */
	for (unsigned k = 0; k < RING; k++) {
		if (c->ring_size[k])
			dma_unmap(tb, c->ring_dma[k], c->ring_size[k]);
		c->ring_size[k] = 0;
	}
	c->seed = s;
	return (struct run_result){ (double)c->ops, (double)sum };
}

int main(int argc, char **argv)
{
	static struct ctx c;
	c.ops = argc > 1 ? strtoull(argv[1], NULL, 0) : 200000;
	c.seed = argc > 2 ? strtoul(argv[2], NULL, 0) : 12345;
	uint64_t ram = 2ull << 30;
	c.ram_pages = ram >> 16;
	pmem_init(&c.mem, ram, 16, 64ull << 20);
	struct itbl *tb = &c.tb;
	/* The default window: 2 GiB of 64K TCEs at bus address 0, two levels (the model's shape). */
	tce_table_create(&tb->t, &c.mem, 0, 16, 31, 2, 0);
	tb->it_size = tb->t.size;
	tb->it_offset = 0;
	tb->blocksize = 16;
	tb->pe = 0x1fd;
	tb->map = calloc((tb->it_size + BITS_PER_LONG - 1) / BITS_PER_LONG, sizeof(unsigned long));
	bitmap_fill(tb->map, 0, 1, 1); /* entry 0 reserved: the window starts at bus address 0 */
	tb->nr_pools = NR_POOLS;
	tb->poolsize = tb->it_size * 3 / 4 / NR_POOLS;
	for (unsigned i = 0; i < NR_POOLS; i++)
		tb->pools[i] = (struct pool){ tb->poolsize * i, tb->poolsize * (i + 1), tb->poolsize * i };
	tb->large = (struct pool){ tb->poolsize * NR_POOLS, tb->it_size, tb->poolsize * NR_POOLS };
	return serve(run, &c);
}
