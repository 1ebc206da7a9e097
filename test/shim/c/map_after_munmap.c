/*
 * MAP_DMA after the memory behind it was unmapped. A v2 container maps the pages pinned at
 * REGISTER_MEMORY, whatever is mapped there now (the shim sends the model no mappings for it); a
 * v1 container pins at MAP_DMA time, so the model must see the munmap first, also when the
 * container's IOMMU type was set through a dup of its descriptor. Prints one line per MAP_DMA:
 * "mapped" or the errno name.
 */
#include "vfio_common.h"
#include <stdint.h>
#include <sys/mman.h>

#define KiB (1UL << 10)
#define MiB (1UL << 20)

static void map(int container, const char *step, uint64_t iova, void *p)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)p,
		.iova = iova,
		.size = 64 * KiB,
	};
	int rc = ioctl(container, VFIO_IOMMU_MAP_DMA, &m);
	printf("%s: %s\n", step, rc ? strerrorname_np(errno) : "mapped");
}

static uint8_t *touched(void)
{
	uint8_t *p = mmap(NULL, MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	memset(p, 1, MiB);
	return p;
}

int main(void)
{
	int v2, group0;
	open_v2_container(0, &v2, &group0);
	uint8_t *a = touched();
	struct vfio_iommu_spapr_register_memory r = { .argsz = sizeof(r), .vaddr = (uintptr_t)a, .size = MiB };
	CHECK(ioctl(v2, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, &r), "VFIO_IOMMU_SPAPR_REGISTER_MEMORY");
	map(v2, "v2, registered", 0, a);
	munmap(a, MiB);
	map(v2, "v2, registered then munmapped", 0x10000, a);

	int v1, group1;
	CHECK(v1 = open("/dev/vfio/vfio", O_RDWR), "open /dev/vfio/vfio");
	CHECK(group1 = open("/dev/vfio/1", O_RDWR), "open /dev/vfio/1");
	CHECK(ioctl(group1, VFIO_GROUP_SET_CONTAINER, &v1), "VFIO_GROUP_SET_CONTAINER");
	int dup1;
	CHECK(dup1 = dup(v1), "dup");
	CHECK(ioctl(dup1, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU), "VFIO_SET_IOMMU(v1)");
	CHECK(ioctl(v1, VFIO_IOMMU_ENABLE), "VFIO_IOMMU_ENABLE");
	uint8_t *b = touched();
	map(v1, "v1, mapped", 0, b);
	munmap(b, MiB);
	map(v1, "v1, munmapped", 0x10000, b);
	return 0;
}
