/*
 * The VFIO sPAPR v2 map/unmap algorithm of bench/ C baselines: tce_iommu_build_v2() and
 * tce_iommu_clear() over a hardware table plus its userspace view, with the preregistered region
 * lookup (mm_iommu_lookup / mm_iommu_ua_to_hpa / mapped_inc/dec) and one TCE kill per call.
 * Written for the benchmark after the algorithms the model implements in src/vfio/spapr-tce.ts.
 */
#ifndef BENCH_VFIO_V2_H
#define BENCH_VFIO_V2_H

#include "tce.h"

struct region {
	uint64_t ua, entries; /* entries in kernel pages */
	unsigned pageshift;
	uint64_t *hpas;
	int64_t mapped;
	struct region *next;
};

struct mapping {
	uint64_t start, end;
	int hugetlb;
	unsigned huge_shift;
	struct mapping *next;
};

struct mm {
	struct region *regions;
	struct mapping *mappings;
	unsigned kernel_page_shift;
};

static inline struct region *mm_iommu_lookup(struct mm *mm, uint64_t ua, uint64_t size)
{
	for (struct region *r = mm->regions; r; r = r->next)
		if (ua >= r->ua && ua + size <= r->ua + (r->entries << mm->kernel_page_shift))
			return r;
	return NULL;
}

static inline int mm_iommu_ua_to_hpa(struct mm *mm, struct region *r, uint64_t ua, unsigned pageshift, uint64_t *hpa)
{
	uint64_t entry = (ua - r->ua) >> mm->kernel_page_shift;
	if (entry >= r->entries || pageshift > r->pageshift)
		return -1;
	*hpa = r->hpas[entry] + (ua & ((1ull << mm->kernel_page_shift) - 1));
	return 0;
}

static inline int page_is_contained(struct mm *mm, uint64_t ua, unsigned shift)
{
	unsigned backing = mm->kernel_page_shift;
	for (struct mapping *m = mm->mappings; m; m = m->next)
		if (ua >= m->start && ua < m->end) {
			if (m->hugetlb && m->huge_shift)
				backing = m->huge_shift;
			break;
		}
	return backing >= shift;
}

/* tce_iommu_unuse_page_v2(). */
static inline void unuse_page_v2(struct mm *mm, struct tce_table *t, uint64_t entry)
{
	uint64_t pua = pnv_tce(t, 1, entry - t->offset, 0);
	if (!pua)
		return;
	uint64_t ua = pmem_rd64(t->mem, pua);
	uint64_t hpa;
	struct region *r = mm_iommu_lookup(mm, ua, 1ull << t->page_shift);
	if (r && !mm_iommu_ua_to_hpa(mm, r, ua, t->page_shift, &hpa) && r->mapped > 1)
		r->mapped--;
	pmem_wr64(t->mem, pua, 0);
}

/* tce_iommu_clear(): exchange out every valid TCE, skipping absent levels, then one kill. */
static inline void tce_iommu_clear(struct mm *mm, struct tce_table *t, uint64_t entry, uint64_t pages, int pe)
{
	uint64_t first = entry, last = entry + pages;
	for (; entry < last; entry++) {
		if (t->levels && t->user && !pnv_tce(t, 1, entry - t->offset, 0)) {
			entry |= t->level_size - 1;
			continue;
		}
		uint64_t old;
		if (pnv_tce_xchg(t, entry, 0, 3, &old) || !(old & 3))
			continue;
		unuse_page_v2(mm, t, entry);
	}
	tce_kill(t->page_shift, first << t->page_shift, pages, pe);
}

/* tce_iommu_build_v2(). Returns 0 or -errno. */
static inline int tce_iommu_build_v2(struct mm *mm, struct tce_table *t, uint64_t entry, uint64_t ua, uint64_t pages, int dir,
				     int pe)
{
	int ret = 0;
	uint64_t i;
	for (i = 0; i < pages; i++) {
		uint64_t pua = pnv_tce(t, 1, entry + i - t->offset, 1);
		uint64_t hpa;
		struct region *r = mm_iommu_lookup(mm, ua, 1ull << t->page_shift);
		if (!r || mm_iommu_ua_to_hpa(mm, r, ua, t->page_shift, &hpa)) {
			ret = -22;
			break;
		}
		if (!page_is_contained(mm, ua, t->page_shift)) {
			ret = -1;
			break;
		}
		if (r->mapped == 0)
			break;
		r->mapped++;
		uint64_t old;
		pnv_tce_xchg(t, entry + i, hpa, dir, &old);
		if (old & 3)
			unuse_page_v2(mm, t, entry + i);
		if (pua)
			pmem_wr64(t->mem, pua, ua);
		ua += 1ull << t->page_shift;
	}
	if (ret)
		tce_iommu_clear(mm, t, entry, i, pe);
	else
		tce_kill(t->page_shift, entry << t->page_shift, pages, pe);
	return ret;
}

/* A process with one anonymous mapping of `bytes` at `ua`, all of it preregistered. */
static inline void mm_prereg(struct mm *mm, struct region *r, struct mapping *mp, uint64_t ua, uint64_t bytes,
			     unsigned kernel_page_shift, uint64_t first_pfn)
{
	mm->kernel_page_shift = kernel_page_shift;
	*mp = (struct mapping){ ua, ua + bytes, 0, 0, NULL };
	mm->mappings = mp;
	r->ua = ua;
	r->entries = bytes >> kernel_page_shift;
	r->pageshift = kernel_page_shift;
	r->hpas = malloc(sizeof(uint64_t) * r->entries);
	for (uint64_t i = 0; i < r->entries; i++)
		r->hpas[i] = (first_pfn + i) << kernel_page_shift;
	r->mapped = 1;
	r->next = NULL;
	mm->regions = r;
}

#endif
