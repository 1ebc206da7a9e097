/*
 * The PHB side of bench/ C baselines: a translated TVE and the hardware table walk (one
 * big-endian read per level; an indirect entry must carry a permission bit), as the model's
 * Phb.walk() does it.
 */
#ifndef BENCH_PHB_H
#define BENCH_PHB_H

#include "tce.h"

struct tve {
	uint64_t table_addr;
	unsigned levels, tbl_shift, page_shift;
};

/* The hardware walk: returns the leaf TCE, or 0 with an invalid indirect entry. */
static inline uint64_t walk(struct pmem *m, const struct tve *tve, uint64_t page_idx)
{
	uint64_t base = tve->table_addr, mask = (1ull << tve->tbl_shift) - 1;
	for (int lev = tve->levels - 1; lev >= 0; lev--) {
		uint64_t ea = base + ((page_idx >> (tve->tbl_shift * lev)) & mask) * 8;
		uint64_t tce = pmem_rd64(m, ea);
		if (!lev)
			return tce;
		if (!(tce & 3))
			return 0;
		base = tce & ~3ull & ~0xfffull;
	}
	return 0;
}

/* Phb.translate() for a read without a cache: TVE select, walk, permission; pa or ~0. */
static inline uint64_t translate(struct pmem *m, const struct tve *tvt, unsigned pe, uint64_t bus)
{
	if (bus >> 60)
		return ~0ull;
	const struct tve *tve = &tvt[pe * 2 + ((bus >> 59) & 1)];
	if (!tve->levels)
		return ~0ull;
	uint64_t page_idx = (bus >> tve->page_shift) & ((1ull << (tve->tbl_shift * tve->levels)) - 1);
	uint64_t tce = walk(m, tve, page_idx);
	if (!(tce & 1))
		return ~0ull;
	uint64_t psize = 1ull << tve->page_shift;
	uint64_t pa = (tce & ~3ull & ~(psize - 1)) + (bus & (psize - 1));
	return pa < (m->npages << m->page_shift) ? pa : ~0ull;
}

#endif
