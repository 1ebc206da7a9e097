/*
 * Registered hugetlb memory mapped again with small pages: a v2 MAP_DMA with 2M IOMMU pages still
 * maps the huge page pinned at REGISTER_MEMORY, while small pages registered as such never take
 * 2M IOMMU pages. For a machine whose MMU has 16M huge pages (--mmu hash). Prints one line per
 * call: "ok" or the errno name.
 */
#include "vfio_common.h"
#include <stdint.h>
#include <sys/mman.h>

#define MiB (1UL << 20)
#define HUGE (16 * MiB)

static int container;

static void say(const char *step, int rc)
{
	printf("%s: %s\n", step, rc ? strerrorname_np(errno) : "ok");
}

static int reg(void *p, size_t n)
{
	struct vfio_iommu_spapr_register_memory r = { .argsz = sizeof(r), .vaddr = (uintptr_t)p, .size = n };
	return ioctl(container, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, &r);
}

static int map(uint64_t iova, void *p)
{
	struct vfio_iommu_type1_dma_map m = { .argsz = sizeof(m), .flags = 3, .vaddr = (uintptr_t)p, .iova = iova, .size = 2 * MiB };
	return ioctl(container, VFIO_IOMMU_MAP_DMA, &m);
}

static void *mapped(void *at, size_t n, int flags)
{
	void *p = mmap(at, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	memset(p, 1, n);
	return p;
}

int main(void)
{
	int group;
	open_v2_container(0, &container, &group);
	struct vfio_iommu_spapr_tce_create c = { .argsz = sizeof(c), .page_shift = 21, .window_size = 1UL << 32, .levels = 1 };
	CHECK(ioctl(container, VFIO_IOMMU_SPAPR_TCE_CREATE, &c), "VFIO_IOMMU_SPAPR_TCE_CREATE");

	uint8_t *h = mapped(NULL, HUGE, MAP_HUGETLB);
	say("register hugetlb", reg(h, HUGE));
	say("2M map of hugetlb", map(c.start_addr, h));
	munmap(h, HUGE);
	mapped(h, HUGE, MAP_FIXED_NOREPLACE);
	say("2M map of it, now small pages", map(c.start_addr + 2 * MiB, h + 2 * MiB));

	uint8_t *s = mapped(NULL, HUGE, 0);
	say("register small pages", reg(s, HUGE));
	say("2M map of small pages", map(c.start_addr + 4 * MiB, s));
	return 0;
}
