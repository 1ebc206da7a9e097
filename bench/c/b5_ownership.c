/*
 * B5 baseline: take/release of a bus PE with 8 devices. Take (first device; the other seven
 * find no table): bypass off (OPAL real-window call, TVE#1 cleared), window #0 unset (TVE#0
 * cleared, PE kill), the 8 devices repointed, the table's last reference dropped (scan of the
 * top level for indirect entries, level and bitmap freed). Release: a new 2 GiB default table
 * (top level, bitmap, reserved bit 0, pools, clear of the whole window skipping absent levels,
 * kill), window #0 set (TVE written, PE kill), bypass on, the 8 devices repointed. The kernel
 * log lines pe_info() prints are formatted into a ring buffer, as printk does.
 */
#include <stdarg.h>
#include "tce.h"

#define NDEV 8

struct table {
	struct tce_table t;
	unsigned long *map;
	uint64_t it_size, poolsize;
	uint64_t pools[4][3], large[3];
	int refs;
};

struct tve {
	uint64_t addr, levels, size, page;
	int bypass;
};

struct dev {
	struct table *table;
	uint64_t dma_offset;
	int bus;
};

struct ctx {
	struct pmem mem;
	struct tve tvt[512];
	struct table *tables[2];
	struct dev devs[NDEV];
	int pe, bypass_enabled, domain_blocked;
	uint64_t cycles, events;
	char log[1 << 16];
	size_t log_pos;
};

static void printk(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void printk(struct ctx *c, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (c->log_pos + n + 1 > sizeof(c->log))
		c->log_pos = 0;
	memcpy(c->log + c->log_pos, line, n + 1);
	c->log_pos += n + 1;
	c->events++;
}

#define PE_INFO(c, fmt, ...) printk(c, "pci %04x:%02x     : [PE# %02x] " fmt, 0, 1, (c)->pe, ##__VA_ARGS__)

static void opal_map_window(struct ctx *c, int window, uint64_t levels, uint64_t addr, uint64_t size, uint64_t page)
{
	if (window >> 1 != c->pe)
		return;
	c->tvt[window & 1] = size ? (struct tve){ addr & ~0xfffull, levels, size, page, 0 } : (struct tve){ 0 };
	c->events += 2; /* the OPAL call and the TVE write */
}

static void set_bypass(struct ctx *c, int enable)
{
	PE_INFO(c, "%sabling 64-bit DMA bypass", enable ? "En" : "Dis");
	c->tvt[1] = enable ? (struct tve){ 0, 0, 0, 0, 1 } : (struct tve){ 0 };
	c->events += 2;
	c->bypass_enabled = enable;
}

static void kill_pe(struct ctx *c)
{
	tce_kill(12, 0, 0, c->pe);
	c->events += 2;
}

static void set_table_base(struct ctx *c, struct dev *d, struct table *t)
{
	d->table = t;
	d->dma_offset = 1ull << 59;
	c->events++;
}

static void table_put(struct ctx *c, struct table *t)
{
	if (--t->refs)
		return;
	tce_table_free(&t->t);
	free(t->map);
	free(t);
	(void)c;
}

static struct table *default_table(struct ctx *c)
{
	struct table *t = calloc(1, sizeof(*t));
	tce_table_create(&t->t, &c->mem, 0, 16, 31, 2, 0);
	t->refs = 1;
	t->it_size = t->t.size;
	t->map = calloc(t->it_size / 64, sizeof(unsigned long));
	t->map[0] |= 1; /* the window starts at bus address 0 */
	t->poolsize = t->it_size * 3 / 4 / 4;
	for (int i = 0; i < 4; i++) {
		t->pools[i][0] = t->poolsize * i;
		t->pools[i][1] = t->poolsize * (i + 1);
		t->pools[i][2] = t->poolsize * i;
	}
	t->large[0] = t->large[2] = t->poolsize * 4;
	t->large[1] = t->it_size;
	pnv_tce_free(&t->t, 0, t->it_size);
	tce_kill(16, 0, t->it_size, c->pe);
	return t;
}

static void take(struct ctx *c)
{
	for (int i = 0; i < NDEV; i++) {
		struct table *t = c->tables[0];
		if (!t)
			continue;
		set_bypass(c, 0);
		PE_INFO(c, "Removing DMA window #0");
		opal_map_window(c, c->pe << 1, 0, 0, 0, 0);
		kill_pe(c);
		c->tables[0] = NULL;
		table_put(c, t);
		for (int k = 0; k < NDEV; k++)
			if (c->devs[k].bus == 1)
				set_table_base(c, &c->devs[k], NULL);
		table_put(c, t);
	}
	c->domain_blocked = 1;
	c->events++;
}

static void release(struct ctx *c)
{
	for (int i = 0; i < NDEV; i++) {
		if (c->tables[0])
			continue;
		struct table *t = default_table(c);
		PE_INFO(c, "Setting up window#%d %llx..%llx pg=%llx", 0, 0ull, (unsigned long long)((t->it_size << 16) - 1),
			0x10000ull);
		opal_map_window(c, c->pe << 1, t->t.levels + 1, t->t.base, t->t.level_size * 8, 1 << 16);
		t->refs++;
		c->tables[0] = t;
		kill_pe(c);
		set_bypass(c, 1);
		for (int k = 0; k < NDEV; k++)
			if (c->devs[k].bus == 1)
				set_table_base(c, &c->devs[k], t);
	}
	c->domain_blocked = 0;
	c->events++;
}

static struct run_result run(void *p)
{
	struct ctx *c = p;
	for (uint64_t i = 0; i < c->cycles; i++) {
		take(c);
		release(c);
	}
	int ok = 0;
	for (int k = 0; k < NDEV; k++)
		ok += c->devs[k].table == c->tables[0] && c->tables[0];
	return (struct run_result){ 2.0 * c->cycles, ok, 0 };
}

int main(int argc, char **argv)
{
	static struct ctx c;
	c.cycles = argc > 1 ? strtoull(argv[1], NULL, 0) : 2000;
	c.pe = 0xfe;
	pmem_init(&c.mem, 2ull << 30, 16, 64ull << 20);
	for (int k = 0; k < NDEV; k++)
		c.devs[k].bus = 1;
	release(&c);
	return serve(run, &c);
}
