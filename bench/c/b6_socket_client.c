/*
 * B6 through the shim: an ordinary VFIO sPAPR v2 program (open the container and group 0, set
 * the v2 IOMMU, preregister 64 MiB, create a 64K-page DDW) that then runs MAP_DMA + UNMAP_DMA
 * of one 64K page, cycling over 1024 IOVAs, and speaks the bench line protocol. Run it under
 * LD_PRELOAD=dist/shim/libtcelab.so with TCELAB_SOCKET pointing at `tcelab serve --socket`.
 */
#include "common.h"
#include <fcntl.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define SLOTS 1024

static int container;
static uint64_t pairs, start, buf;

static void must(int r, const char *what)
{
	if (r < 0) {
		perror(what);
		exit(1);
	}
}

static struct run_result run(void *p)
{
	(void)p;
	uint64_t bad = 0;
	for (uint64_t i = 0; i < pairs; i++) {
		unsigned k = i & (SLOTS - 1);
		struct vfio_iommu_type1_dma_map map = { .argsz = sizeof(map), .flags = 3, .vaddr = buf + ((uint64_t)k << 16),
							.iova = start + ((uint64_t)k << 16), .size = 1 << 16 };
		struct vfio_iommu_type1_dma_unmap unmap = { .argsz = sizeof(unmap), .iova = map.iova, .size = 1 << 16 };
		bad += ioctl(container, VFIO_IOMMU_MAP_DMA, &map) != 0;
		bad += ioctl(container, VFIO_IOMMU_UNMAP_DMA, &unmap) != 0;
	}
	if (bad) {
		fprintf(stderr, "b6 socket: %llu calls failed\n", (unsigned long long)bad);
		exit(1);
	}
	return (struct run_result){ 2.0 * pairs, 2.0 * pairs, 0 };
}

int main(int argc, char **argv)
{
	pairs = argc > 1 ? strtoull(argv[1], NULL, 0) : 20000;
	container = open("/dev/vfio/vfio", O_RDWR);
	must(container, "open /dev/vfio/vfio");
	int group = open("/dev/vfio/0", O_RDWR);
	must(group, "open /dev/vfio/0");
	must(ioctl(group, VFIO_GROUP_SET_CONTAINER, &container), "VFIO_GROUP_SET_CONTAINER");
	must(ioctl(container, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU), "VFIO_SET_IOMMU");
	size_t len = (size_t)SLOTS << 16;
	void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	buf = (uint64_t)(uintptr_t)mem;
	struct vfio_iommu_spapr_register_memory reg = { .argsz = sizeof(reg), .vaddr = buf, .size = len };
	must(ioctl(container, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, &reg), "VFIO_IOMMU_SPAPR_REGISTER_MEMORY");
	struct vfio_iommu_spapr_tce_create create = { .argsz = sizeof(create), .page_shift = 16, .window_size = 1ull << 32,
						      .levels = 2 };
	must(ioctl(container, VFIO_IOMMU_SPAPR_TCE_CREATE, &create), "VFIO_IOMMU_SPAPR_TCE_CREATE");
	start = create.start_addr;
	return serve(run, NULL);
}
