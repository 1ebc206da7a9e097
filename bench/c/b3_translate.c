/*
 * B3 baseline: device DMA reads of 8 bytes at seeded pseudo-random bus addresses through a
 * populated 2-level window of 64K TCEs (2 GiB, entry i -> page i): RID -> PE, TVE select, the
 * hardware walk (one big-endian read per level, indirect entries must carry a permission bit),
 * the permission check and the copy out of the sparse page store into the device's buffer. With
 * the cache on, a hit does not walk (the model walks on a hit only for an event listener, to flag
 * stale use; the benchmark has none) and the cache is the model's: chunks of 4096 pages, made on
 * first use, of the generation each page was cached in and its TCE side by side. Argument 3: 1 =
 * cache on.
 */
#include "phb.h"

/*
 * The TCE cache of one TVE as the model keeps it for decoded page indices below 2^28: by chunk
 * of 4096 pages (made on first use) the generation each page was cached in (a kill moves to a
 * new generation) and its TCE, side by side. The model keeps indices past the chunks in a Map;
 * this TVE has none.
 */
#define CHUNK_SHIFT 12
#define CHUNK_MASK ((1u << CHUNK_SHIFT) - 1)

struct cache_slot {
	uint64_t gen, tce;
};

struct cache {
	struct cache_slot **chunks;
	uint64_t gen;
	uint64_t limit;
};

static inline int cache_get(struct cache *c, uint64_t idx, uint64_t *val)
{
	if (idx >= c->limit)
		return 0;
	const struct cache_slot *k = c->chunks[idx >> CHUNK_SHIFT];
	if (!k || k[idx & CHUNK_MASK].gen != c->gen)
		return 0;
	*val = k[idx & CHUNK_MASK].tce;
	return 1;
}

static inline void cache_set(struct cache *c, uint64_t idx, uint64_t val)
{
	struct cache_slot **k = &c->chunks[idx >> CHUNK_SHIFT];
	if (!*k)
		*k = calloc(CHUNK_MASK + 1, sizeof(struct cache_slot));
	(*k)[idx & CHUNK_MASK] = (struct cache_slot){ c->gen, val };
}

struct ctx {
	struct pmem mem;
	struct tce_table t;
	struct tve tvt[512 * 2];
	uint16_t rtt[65536];
	uint8_t frozen[512];
	struct cache cache;
	int cache_on;
	uint64_t reads, entries, events;
	uint32_t seed;
};

static int dma_read(struct ctx *c, unsigned rid, uint64_t bus, unsigned len, uint8_t *out)
{
	unsigned pe = c->rtt[rid];
	if (c->frozen[pe] || bus >> 60)
		return -1;
	unsigned tve_idx = pe * 2 + ((bus >> 59) & 1);
	const struct tve *tve = &c->tvt[tve_idx];
	uint64_t page_idx = (bus >> tve->page_shift) & ((1ull << (tve->tbl_shift * tve->levels)) - 1);
	uint64_t tce;
	if (!c->cache_on || !cache_get(&c->cache, page_idx, &tce)) {
		tce = walk(&c->mem, tve, page_idx);
		if (c->cache_on && (tce & 1))
			cache_set(&c->cache, page_idx, tce);
	}
	if (!(tce & 1)) {
		c->frozen[pe] = 1;
		return -1;
	}
	uint64_t psize = 1ull << tve->page_shift;
	uint64_t pa = (tce & ~3ull & ~(psize - 1)) + (bus & (psize - 1));
	const uint8_t *p = c->mem.pages[pa >> c->mem.page_shift];
	if (p)
		memcpy(out, p + (pa & (psize - 1)), len);
	else
		memset(out, 0, len);
	c->events++;
	return 0;
}

static struct run_result run(void *p)
{
	struct ctx *c = p;
	uint32_t s = c->seed;
	uint8_t buf[8];
	uint64_t ok = 0;
	for (uint64_t i = 0; i < c->reads; i++) {
		uint64_t entry = xs32(&s) % c->entries;
		uint64_t bus = entry * 65536 + (xs32(&s) & 0xfff8);
		if (!dma_read(c, 0x100, bus, 8, buf))
			ok++;
	}
	c->seed = s;
	return (struct run_result){ (double)c->reads, (double)ok, 0 };
}

int main(int argc, char **argv)
{
	static struct ctx c;
	c.reads = argc > 1 ? strtoull(argv[1], NULL, 0) : 200000;
	c.seed = argc > 2 ? strtoul(argv[2], NULL, 0) : 777;
	c.cache_on = argc > 3 ? atoi(argv[3]) : 1;
	pmem_init(&c.mem, 2ull << 30, 16, 64ull << 20);
	tce_table_create(&c.t, &c.mem, 0, 16, 31, 2, 0);
	c.entries = c.t.size;
	pnv_tce_build(&c.t, 0, c.entries, 0, 0);
	int pe = 0x1fd;
	c.rtt[0x100] = pe;
	c.tvt[pe * 2] = (struct tve){ c.t.base, c.t.levels + 1, c.t.level_bits, 16 };
	/* The TVE's span: every index its levels decode (2^26 here), up to 2^28 in chunks. */
	uint64_t span = 1ull << (c.t.level_bits * (c.t.levels + 1));
	c.cache.limit = span < (1ull << 28) ? span : 1ull << 28;
	c.cache.gen = 1;
	c.cache.chunks = calloc(c.cache.limit >> CHUNK_SHIFT, sizeof(struct cache_slot *));
	return serve(run, &c);
}
