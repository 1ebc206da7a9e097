/*
 * Shared by the C baselines of bench/: the line protocol the runner drives (one "run" per line
 * on stdin, one JSON result per line on stdout, "quit" prints peak RSS), the seeded xorshift32
 * generator the model side uses too, big-endian 64-bit access and a sparse page store standing
 * in for the model's PhysMemory.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

static inline double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Peak resident set size of this process in bytes (ru_maxrss is in KiB on Linux). */
static inline long long peak_rss_bytes(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (long long)ru.ru_maxrss * 1024;
}

/* xorshift32, the same sequence as bench/model/common.mjs rng(). */
static inline uint32_t xs32(uint32_t *s)
{
	uint32_t x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

static inline uint64_t rd_be64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return __builtin_bswap64(v);
}

static inline void wr_be64(uint8_t *p, uint64_t v)
{
	v = __builtin_bswap64(v);
	memcpy(p, &v, 8);
}

/* Sparse physical memory: page frames allocated on first write, unwritten pages read as zero. */
struct pmem {
	unsigned page_shift;
	uint64_t npages;
	uint8_t **pages;
	uint64_t next_free; /* a bump allocator for table levels, like the buddy's lowest-first */
	uint64_t *free_stack; /* freed single pages, reused first */
	uint64_t nfree;
};

static inline void pmem_init(struct pmem *m, uint64_t ram_bytes, unsigned page_shift, uint64_t first_free)
{
	m->page_shift = page_shift;
	m->npages = ram_bytes >> page_shift;
	m->pages = calloc(m->npages, sizeof(*m->pages));
	m->next_free = first_free >> page_shift;
	m->free_stack = malloc(sizeof(uint64_t) * 4096);
	m->nfree = 0;
}

static inline uint8_t *pmem_page_w(struct pmem *m, uint64_t pa)
{
	uint64_t pfn = pa >> m->page_shift;
	if (!m->pages[pfn])
		m->pages[pfn] = calloc(1, (size_t)1 << m->page_shift);
	return m->pages[pfn];
}

static inline uint64_t pmem_rd64(struct pmem *m, uint64_t pa)
{
	const uint8_t *p = m->pages[pa >> m->page_shift];
	return p ? rd_be64(p + (pa & (((uint64_t)1 << m->page_shift) - 1))) : 0;
}

static inline void pmem_wr64(struct pmem *m, uint64_t pa, uint64_t v)
{
	wr_be64(pmem_page_w(m, pa) + (pa & (((uint64_t)1 << m->page_shift) - 1)), v);
}

/* One zeroed page for a table level (alloc_pages order 0); returns its physical address. */
static inline uint64_t pmem_alloc_page(struct pmem *m)
{
	uint64_t pfn = m->nfree ? m->free_stack[--m->nfree] : m->next_free++;
	if (pfn >= m->npages) {
		fprintf(stderr, "pmem: out of memory\n");
		exit(1);
	}
	free(m->pages[pfn]);
	m->pages[pfn] = NULL; /* zeroed: reads as 0 until written */
	return pfn << m->page_shift;
}

static inline void pmem_free_page(struct pmem *m, uint64_t pa)
{
	uint64_t pfn = pa >> m->page_shift;
	free(m->pages[pfn]);
	m->pages[pfn] = NULL;
	if (m->nfree < 4096)
		m->free_stack[m->nfree++] = pfn;
}

/*
 * The runner's protocol: a ready line first, then for every "run" line call fn() and print {"t":seconds,"work":n,"check":c};
 * "quit" prints {"peakRssBytes":n} and exits.
 */
struct run_result {
	double work;
	double check;
	double t; /* > 0: the timed part of the run, when setup work surrounds it */
};

static const char *serve_info = ""; /* extra JSON members for the ready line, e.g. ",\"x\":1" */

static inline int serve(struct run_result (*fn)(void *), void *ctx)
{
	char line[256];
	printf("{\"ready\":true%s}\n", serve_info);
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		if (!strncmp(line, "run", 3)) {
			double t0 = now_s();
			struct run_result r = fn(ctx);
			double t = r.t > 0 ? r.t : now_s() - t0;
			printf("{\"t\":%.9f,\"work\":%.0f,\"check\":%.0f}\n", t, r.work, r.check);
		} else if (!strncmp(line, "quit", 4)) {
			printf("{\"peakRssBytes\":%lld}\n", peak_rss_bytes());
			fflush(stdout);
			return 0;
		}
		fflush(stdout);
	}
	return 0;
}

#endif
