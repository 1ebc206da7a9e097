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

/* pnv_tce_xchg(): returns the old TCE; hpa 0 with perm 0 clears (DMA_NONE). */
static inline int pnv_tce_xchg(struct tce_table *t, uint64_t index, uint64_t hpa, int dir, uint64_t *old)
{
	uint64_t idx = index - t->offset;
	uint64_t slot;
	if (dir == 3) {
		slot = pnv_tce(t, 0, idx, 0);
		if (!slot) {
			*old = 0;
			return 0;
		}
	} else {
		slot = pnv_tce(t, 0, idx, 1);
	}
	uint64_t tce = hpa | dir_to_perm(dir);
	if ((tce & 3) == TCE_WRITE)
		tce |= TCE_READ;
	*old = pmem_rd64(t->mem, slot);
	pmem_wr64(t->mem, slot, tce);
	return 0;
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
