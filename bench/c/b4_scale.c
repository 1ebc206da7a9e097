/*
 * B4 baseline: a 1 TiB DDW of 64K pages (2^24 TCEs, 2 levels) mapped in full in chunks of
 * 65536 TCEs (pnv_tce_build + one kill per chunk), then walked by the PHB walk, one
 * translation per TCE; the table is freed after each run. Memory: peak RSS over the RSS before
 * the first build, per TCE (argument 1: window shift, default 40).
 */
#include "phb.h"

struct ctx {
	struct pmem mem;
	struct tve tvt[512 * 2];
	unsigned window_shift;
	uint64_t chunk;
};

static struct run_result run(void *p)
{
	struct ctx *c = p;
	struct tce_table t;
	uint64_t entries = 1ull << (c->window_shift - 16), ram_pages = c->mem.npages, ok = 0;
	int pe = 0x1fd;
	tce_table_create(&t, &c->mem, 1ull << 59, 16, c->window_shift, 2, 1);
	c->tvt[pe * 2 + 1] = (struct tve){ t.base, t.levels + 1, t.level_bits, 16 };
	tce_kill(16, 0, 0, pe);
	for (uint64_t e = 0; e < entries; e += c->chunk) {
		pnv_tce_build(&t, t.offset + e, c->chunk, (e % ram_pages) << 16, 0);
		tce_kill(16, (t.offset + e) << 16, c->chunk, pe);
	}
	uint64_t bus0 = t.offset << 16;
	for (uint64_t e = 0; e < entries; e++)
		if (translate(&c->mem, c->tvt, pe, bus0 + (e << 16)) != ~0ull)
			ok++;
	c->tvt[pe * 2 + 1] = (struct tve){ 0 };
	tce_table_free(&t);
	return (struct run_result){ (double)entries, (double)ok, 0 };
}

static long long rss_now(void)
{
	long long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%lld %lld", &pages, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return resident * 4096;
}

int main(int argc, char **argv)
{
	static struct ctx c;
	c.window_shift = argc > 1 ? atoi(argv[1]) : 40;
	c.chunk = 65536;
	pmem_init(&c.mem, 8ull << 30, 16, 64ull << 20);
	static char info[64];
	snprintf(info, sizeof(info), ",\"rssBefore\":%lld", rss_now());
	serve_info = info;
	return serve(run, &c);
}
