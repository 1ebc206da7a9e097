/*
 * map_loop: a client that keeps the IOMMU busy, for running many programs against one model.
 *
 *   usage: map_loop GROUP COUNT       (COUNT 0: map forever)
 *
 * Sets up a v2 container with a 1 GiB DDW and an 8 MiB registered buffer, prints "ready", waits
 * for a line on stdin, then maps COUNT kernel pages one MAP_DMA at a time at consecutive IOVAs,
 * printing "progress N" every 64 maps. At the end it unmaps everything in one UNMAP_DMA and
 * prints "done mapped=N unmapped=BYTES vmlck_kb=K".
 */
#include "vfio_common.h"
#include <stdint.h>
#include <sys/mman.h>

#define BUF_SIZE (8ULL << 20)

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s GROUP COUNT\n", argv[0]);
		return 2;
	}
	long count = atol(argv[2]);
	long page = sysconf(_SC_PAGESIZE);
	int container, groupfd;
	open_v2_container(atoi(argv[1]), &container, &groupfd);

	uint8_t *buf = mmap(NULL, BUF_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	struct vfio_iommu_spapr_register_memory reg = { .argsz = sizeof(reg), .vaddr = (uintptr_t)buf, .size = BUF_SIZE };
	CHECK(ioctl(container, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, &reg), "VFIO_IOMMU_SPAPR_REGISTER_MEMORY");
	struct vfio_iommu_spapr_tce_create create = {
		.argsz = sizeof(create), .page_shift = (uint32_t)__builtin_ctzl(page), .window_size = 1ULL << 30, .levels = 1,
	};
	CHECK(ioctl(container, VFIO_IOMMU_SPAPR_TCE_CREATE, &create), "VFIO_IOMMU_SPAPR_TCE_CREATE");

	printf("ready\n");
	fflush(stdout);
	char go[16];
	if (!fgets(go, sizeof(go), stdin))
		return 1;

	long n = 0;
	for (; count == 0 || n < count; n++) {
		struct vfio_iommu_type1_dma_map map = {
			.argsz = sizeof(map), .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
			.vaddr = (uintptr_t)buf + (uint64_t)(n * page) % BUF_SIZE,
			.iova = create.start_addr + (uint64_t)n * (uint64_t)page, .size = (uint64_t)page,
		};
		CHECK(ioctl(container, VFIO_IOMMU_MAP_DMA, &map), "VFIO_IOMMU_MAP_DMA");
		if ((n + 1) % 64 == 0) {
			printf("progress %ld\n", n + 1);
			fflush(stdout);
		}
	}
	struct vfio_iommu_type1_dma_unmap unmap = { .argsz = sizeof(unmap), .iova = create.start_addr, .size = 1ULL << 30 };
	CHECK(ioctl(container, VFIO_IOMMU_UNMAP_DMA, &unmap), "VFIO_IOMMU_UNMAP_DMA");
	printf("done mapped=%ld unmapped=%llu vmlck_kb=%ld\n", n, (unsigned long long)unmap.size, vmlck_kb());
	return 0;
}
