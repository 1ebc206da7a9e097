/*
 * The PowerNV TCE table of bench/ C baselines: pnv_tce() (multi-level walk with on-demand
 * levels), pnv_tce_build / pnv_tce_free / xchg, big-endian entries in a sparse page store, and a
 * page kill that counts what the OPAL call would do. Written for the benchmark, after the
 * algorithms of arch/powerpc/platforms/powernv/pci-ioda-tce.c as the model implements them.
 */
#ifndef BENCH_TCE_H
#define BENCH_TCE_H

#include "common.h"

#define TCE_READ 1ull
#define TCE_WRITE 2ull

struct tce_table {
	struct pmem *mem;
	uint64_t base;		/* physical address of the top level */
	uint64_t user;		/* top level of the userspace view, or 0 */
	unsigned levels;	/* indirect levels (it_indirect_levels) */
	uint64_t level_size;	/* entries per level (it_level_size) */
	unsigned level_bits;	/* log2(level_size) */
	uint64_t size;		/* it_size */
	uint64_t offset;	/* it_offset */
	unsigned page_shift;	/* it_page_shift */
	uint64_t level_pages;	/* levels allocated, for reports */
};

/* The kill: what OPAL_PCI_TCE_KILL(PAGES) checks before it kills the PE's cache entries. */
static volatile uint64_t tce_kills;
__attribute__((noinline, unused)) static int tce_kill(unsigned page_shift, uint64_t bus, uint64_t npages, int pe)
{
	if (page_shift != 12 && page_shift != 16 && page_shift != 21 && page_shift != 30)
		return -1;
	if (bus & ((1ull << page_shift) - 1) || bus >> 60 || pe < 0 || pe >= 512)
		return -1;
	tce_kills += npages ? 1 : 1;
	return 0;
}

static inline uint64_t tce_level_alloc(struct tce_table *t)
{
	t->level_pages++;
	return pmem_alloc_page(t->mem);
}

/* pnv_tce(): physical address of the slot of entry idx (relative to it_offset), or 0. */
static inline uint64_t pnv_tce(struct tce_table *t, int user, uint64_t idx, int alloc)
{
	uint64_t base = user ? t->user : t->base;
	unsigned level = t->levels;
	while (level) {
		unsigned shift = t->level_bits * level;
		uint64_t n = (idx >> shift) & (t->level_size - 1);
		uint64_t slot = base + n * 8;
		uint64_t tce = pmem_rd64(t->mem, slot);
		if (!tce) {
			if (!alloc)
				return 0;
			tce = tce_level_alloc(t) | TCE_READ | TCE_WRITE;
			pmem_wr64(t->mem, slot, tce);
		}
		base = tce & ~3ull;
		idx &= (1ull << shift) - 1;
		level--;
	}
	return base + idx * 8;
}

static inline uint64_t dir_to_perm(int dir)
{
	return dir == 0 ? TCE_READ | TCE_WRITE : dir == 2 ? TCE_WRITE : dir == 1 ? TCE_READ : 0;
}

/* pnv_tce_build(). */
static inline void pnv_tce_build(struct tce_table *t, uint64_t index, uint64_t npages, uint64_t pa, int dir)
{
	uint64_t perm = dir_to_perm(dir);
	if (perm & TCE_WRITE)
		perm |= TCE_READ;
	uint64_t rpn = pa >> t->page_shift;
	for (uint64_t i = 0; i < npages; i++) {
		uint64_t slot = pnv_tce(t, 0, index - t->offset + i, 1);
		if (slot)
			pmem_wr64(t->mem, slot, ((rpn + i) << t->page_shift) | perm);
	}
}

/* pnv_tce_free(): zero TCEs, skipping the rest of an absent leaf level. */
static inline void pnv_tce_free(struct tce_table *t, uint64_t index, uint64_t npages)
{
	for (uint64_t i = 0; i < npages; i++) {
		uint64_t slot = pnv_tce(t, 0, index - t->offset + i, 0);
		if (slot)
			pmem_wr64(t->mem, slot, 0);
		else
			i |= t->level_size - 1;
	}
}

/* The most entries one run exchanges (the model's TceRun capacity). */
#define TCE_RUN_MAX 4096

/* pnv_tce_run_length(): entries from `index` on that share one leaf level (consecutive slots). */
static inline uint64_t pnv_tce_run_length(struct tce_table *t, uint64_t index)
{
	uint64_t idx = index - t->offset;
	if (!t->levels)
		return idx < t->size ? t->size - idx : 1;
	return t->level_size - (idx & (t->level_size - 1));
}

/*
 * pnv_tce_xchg_run(): pnv_tce_xchg() of `count` entries of one leaf with one walk, then the
 * leaf's slots a memory page at a time; the old TCEs go to old[]. dir 3 (DMA_NONE) clears. Returns
 * the entries attempted; *ret = -ENOMEM when a level could not be allocated.
 */
static inline uint64_t pnv_tce_xchg_run(struct tce_table *t, uint64_t index, uint64_t count, const uint64_t *hpa, int dir,
					uint64_t *old, int *ret)
{
	*ret = 0;
	uint64_t slot = pnv_tce(t, 0, index - t->offset, dir != 3);
	if (!slot) {
		if (dir != 3) {
			old[0] = 0;
			*ret = -12;
			return 1;
		}
		memset(old, 0, count * 8);
		return count;
	}
	uint64_t perm = dir_to_perm(dir);
	if (perm == TCE_WRITE)
		perm |= TCE_READ;
	unsigned ps = t->mem->page_shift;
	uint64_t pmask = (1ull << ps) - 1, amask = (1ull << t->page_shift) - 1;
	for (uint64_t k = 0; k < count;) {
		uint64_t at = slot + k * 8;
		uint64_t n = ((1ull << ps) - (at & pmask)) / 8;
		if (n > count - k)
			n = count - k;
		uint8_t *b = t->mem->pages[at >> ps];
		if (!b) {
			/* A page never written: every old entry is 0, only the new ones are stored. */
			memset(old + k, 0, n * 8);
			if (dir != 3) {
				uint8_t *q = pmem_page_w(t->mem, at) + (at & pmask);
				for (uint64_t j = k; j < k + n; j++, q += 8) {
					if (hpa[j] & amask)
						abort(); /* BUG: not IOMMU-page aligned */
					wr_be64(q, hpa[j] | perm);
				}
			}
		} else {
			uint8_t *q = b + (at & pmask);
			for (uint64_t j = k; j < k + n; j++, q += 8) {
				old[j] = rd_be64(q);
				if (dir == 3) {
					wr_be64(q, 0);
				} else {
					if (hpa[j] & amask)
						abort(); /* BUG: not IOMMU-page aligned */
					wr_be64(q, hpa[j] | perm);
				}
			}
		}
		k += n;
	}
	return count;
}

/* pnv_pci_ioda2_table_alloc_pages(): the top levels only; shapes as the kernel computes them. */
static inline void tce_table_create(struct tce_table *t, struct pmem *m, uint64_t bus_offset, unsigned page_shift,
				    unsigned window_shift, unsigned levels, int user)
{
	unsigned entries_shift = window_shift - page_shift;
	unsigned table_shift = entries_shift + 3 > m->page_shift ? entries_shift + 3 : m->page_shift;
	entries_shift = (entries_shift + levels - 1) / levels;
	unsigned level_shift = entries_shift + 3 > m->page_shift ? entries_shift + 3 : m->page_shift;
	memset(t, 0, sizeof(*t));
	t->mem = m;
	t->base = tce_level_alloc(t);
	t->user = user ? tce_level_alloc(t) : 0;
	t->levels = levels - 1;
	t->level_bits = level_shift - 3;
	t->level_size = 1ull << t->level_bits;
	t->size = 1ull << (table_shift - 3);
	t->page_shift = page_shift;
	t->offset = bus_offset >> page_shift;
	if (levels == 1 && table_shift > m->page_shift) {
		fprintf(stderr, "tce_table_create: single-level tables above one page are not needed by bench/\n");
		exit(1);
	}
}

/* pnv_pci_ioda2_table_free_pages(): free indirect levels (entries with R|W), then the top. */
static void tce_free_level(struct tce_table *t, uint64_t pa, unsigned levels)
{
	if (levels) {
		for (uint64_t i = 0; i < t->level_size; i++) {
			uint64_t e = pmem_rd64(t->mem, pa + i * 8);
			if (e & 3)
				tce_free_level(t, e & ~3ull, levels - 1);
		}
	}
	pmem_free_page(t->mem, pa);
	t->level_pages--;
}

static inline void tce_table_free(struct tce_table *t)
{
	tce_free_level(t, t->base, t->levels);
	if (t->user)
		tce_free_level(t, t->user, t->levels);
}

#endif
