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

/*
 * tce_page_is_contained() of the page at ua; *until = where the mapping holding ua ends (or the
 * next mapping starts), so that the answer holds for every page below it.
 */
static inline int page_is_contained(struct mm *mm, uint64_t ua, unsigned shift, uint64_t *until)
{
	unsigned backing = mm->kernel_page_shift;
	*until = UINT64_MAX;
	for (struct mapping *m = mm->mappings; m; m = m->next) {
		if (ua >= m->start && ua < m->end) {
			if (m->hugetlb && m->huge_shift)
				backing = m->huge_shift;
			*until = m->end;
			break;
		}
		if (m->start > ua && m->start < *until)
			*until = m->start;
	}
	return backing >= shift;
}

/* How many pages of `size` bytes from ua on region r holds whole (ua inside it). */
static inline uint64_t region_span(struct mm *mm, struct region *r, uint64_t ua, uint64_t size)
{
	return (r->ua + (r->entries << mm->kernel_page_shift) - size - ua) / size + 1;
}

/* tce_iommu_unuse_page_v2() of the entry whose userspace-view slot is `pua` (0: no view). */
static inline void unuse_page_v2(struct mm *mm, struct tce_table *t, uint64_t pua)
{
	if (!pua)
		return;
	uint64_t ua = pmem_rd64(t->mem, pua);
	uint64_t hpa;
	struct region *r = mm_iommu_lookup(mm, ua, 1ull << t->page_shift);
	if (r && !mm_iommu_ua_to_hpa(mm, r, ua, t->page_shift, &hpa) && r->mapped > 1)
		r->mapped--;
	pmem_wr64(t->mem, pua, 0);
}

static uint64_t run_hpa[TCE_RUN_MAX], run_old[TCE_RUN_MAX];

/* `n` of mm_iommu_mapped_dec() on r, when its pages allow the IOMMU page size. */
static inline void mapped_dec_by(struct region *r, uint64_t n, unsigned pageshift)
{
	if (r && n && pageshift <= r->pageshift && r->mapped > 1)
		r->mapped = r->mapped - (int64_t)n > 1 ? r->mapped - (int64_t)n : 1;
}

/*
 * unuse_page_v2() of the entries [0, ok) of a cleared run whose old TCE was valid, their view
 * slots from `pua` on: the region found last is kept while the addresses stay in it and its
 * decrements are made at once, as the model's run does.
 */
static inline void unuse_run_v2(struct mm *mm, struct tce_table *t, uint64_t pua, uint64_t ok)
{
	uint64_t size = 1ull << t->page_shift, lo = 1, hi = 0, n = 0;
	struct region *r = NULL;
	for (uint64_t k = 0; k < ok; k++) {
		if (!(run_old[k] & 3))
			continue;
		uint64_t slot = pua + k * 8, ua = pmem_rd64(t->mem, slot);
		pmem_wr64(t->mem, slot, 0);
		if (r && ua >= lo && ua <= hi) {
			n++;
			continue;
		}
		mapped_dec_by(r, n, t->page_shift);
		r = mm_iommu_lookup(mm, ua, size);
		n = r ? 1 : 0;
		if (r) {
			lo = r->ua;
			hi = r->ua + (r->entries << mm->kernel_page_shift) - size;
		}
	}
	mapped_dec_by(r, n, t->page_shift);
}

static inline uint64_t min3(uint64_t a, uint64_t b, uint64_t c)
{
	return a < b ? (a < c ? a : c) : (b < c ? b : c);
}

/*
 * tce_iommu_clear(): exchange out every valid TCE, a run of one leaf at a time, skipping leaves
 * absent from the userspace view, then one kill.
 */
static inline void tce_iommu_clear(struct mm *mm, struct tce_table *t, uint64_t entry, uint64_t pages, int pe)
{
	uint64_t first = entry, last = entry + pages;
	while (entry < last) {
		uint64_t pua = t->user ? pnv_tce(t, 1, entry - t->offset, 0) : 0;
		if (!pua && t->levels && t->user) {
			entry = (entry | (t->level_size - 1)) + 1;
			continue;
		}
		int ret;
		uint64_t n = min3(last - entry, TCE_RUN_MAX, pnv_tce_run_length(t, entry));
		uint64_t done = pnv_tce_xchg_run(t, entry, n, NULL, 3, run_old, &ret);
		uint64_t ok = ret ? done - 1 : done;
		if (pua)
			unuse_run_v2(mm, t, pua, ok);
		entry += done;
	}
	tce_kill(t->page_shift, first << t->page_shift, pages, pe);
}

/*
 * tce_iommu_build_v2(), a run of one leaf at a time: the checks of every page of the run, one
 * exchange of the pages that passed them, then per entry the mapped count, the old entry's
 * release and the userspace view (a run that replaces no valid entry and did not fail: each
 * region's count once per span, then the view's slots). Returns 0 or -errno.
 */
static inline int tce_iommu_build_v2(struct mm *mm, struct tce_table *t, uint64_t entry, uint64_t ua, uint64_t pages, int dir,
				     int pe)
{
	int ret = 0;
	uint64_t i = 0, size = 1ull << t->page_shift;
	while (i < pages) {
		uint64_t e = entry + i;
		uint64_t pua = pnv_tce(t, 1, e - t->offset, 1);
		uint64_t n = pua ? min3(pages - i, TCE_RUN_MAX, pnv_tce_run_length(t, e)) : 1;
		uint64_t m;
		for (m = 0; m < n;) {
			uint64_t u = ua + ((i + m) << t->page_shift), until;
			struct region *r = mm_iommu_lookup(mm, u, size);
			if (!r || mm_iommu_ua_to_hpa(mm, r, u, t->page_shift, &run_hpa[m])) {
				ret = -22;
				break;
			}
			if (!page_is_contained(mm, u, t->page_shift, &until)) {
				ret = -1;
				break;
			}
			if (r->mapped == 0)
				break;
			/* The pages from m on inside r and the same mapping get page m's answers. */
			uint64_t k = min3(n - m, region_span(mm, r, u, size), (until - u - 1) / size + 1);
			for (uint64_t j = 1; j < k; j++)
				mm_iommu_ua_to_hpa(mm, r, u + j * size, t->page_shift, &run_hpa[m + j]);
			m += k;
		}
		int xret = 0;
		uint64_t done = m ? pnv_tce_xchg_run(t, e, m, run_hpa, dir, run_old, &xret) : 0;
		uint64_t failed = done && xret ? 1 : 0;
		uint64_t valid = 0;
		for (uint64_t k = 0; k < done; k++)
			valid |= run_old[k] & 3;
		if (!failed && pua && !valid) {
			/* A fresh run: each region's count once by its entries, then the view's slots. */
			for (uint64_t k = 0; k < done;) {
				uint64_t u = ua + ((i + k) << t->page_shift);
				struct region *r = mm_iommu_lookup(mm, u, size);
				uint64_t span = region_span(mm, r, u, size);
				uint64_t c = done - k < span ? done - k : span;
				if (r->mapped)
					r->mapped += c;
				k += c;
			}
			for (uint64_t k = 0; k < done; k++)
				pmem_wr64(t->mem, pua + k * 8, ua + ((i + k) << t->page_shift));
		}
		struct region *r = NULL;
		uint64_t left = 0;
		for (uint64_t k = 0; k < done && (failed || !pua || valid); k++) {
			uint64_t u = ua + ((i + k) << t->page_shift);
			if (!left) {
				r = mm_iommu_lookup(mm, u, size);
				left = region_span(mm, r, u, size);
			}
			left--;
			r->mapped++;
			uint64_t slot = pua ? pua + k * 8 : 0;
			if (k == done - failed) {
				unuse_page_v2(mm, t, slot);
				break;
			}
			if (run_old[k] & 3)
				unuse_page_v2(mm, t, slot);
			if (!slot)
				return 0; /* the model's oops: *pua through a table without a view */
			pmem_wr64(t->mem, slot, u);
		}
		if (failed) {
			ret = xret;
			i += done - 1;
			break;
		}
		i += m;
		if (m < n)
			break;
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
