/*
 * big_window: create a dynamic DMA window of IOMMU pages 2^PAGE_SHIFT covering 2^WINDOW_LOG2
 * bytes and map one page at its start, in a child process; report how the child ended.
 *
 *   usage: big_window GROUP PAGE_SHIFT WINDOW_LOG2     e.g.  big_window 0 12 40
 *   against the model:  tcelab exec --machine pseries -- ./big_window 0 12 40
 *
 * On a Linux 6.12 pSeries guest of 2 GiB, 4K pages over 1 TiB (2^28 TCEs) need a 2 GiB
 * userspace view that vmalloc refuses; TCE_CREATE still returns 0 and the MAP oopses: the child
 * dies of SIGSEGV (on the real kernel it then hangs in exit, holding the container lock).
 */
#include "vfio_common.h"
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s GROUP PAGE_SHIFT WINDOW_LOG2\n", argv[0]);
		return 2;
	}
	int group = atoi(argv[1]);
	unsigned page_shift = (unsigned)atoi(argv[2]);
	unsigned window_log2 = (unsigned)atoi(argv[3]);
	long page = sysconf(_SC_PAGESIZE);

	pid_t child = fork();
	if (child < 0) {
		perror("fork");
		return 1;
	}
	if (child == 0) {
		int container, groupfd;
		open_v2_container(group, &container, &groupfd);
		uint8_t *buf = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (buf == MAP_FAILED) {
			perror("mmap");
			_exit(1);
		}
		struct vfio_iommu_spapr_register_memory reg = { .argsz = sizeof(reg), .vaddr = (uintptr_t)buf, .size = (uint64_t)page };
		CHECK(ioctl(container, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, &reg), "VFIO_IOMMU_SPAPR_REGISTER_MEMORY");
		struct vfio_iommu_spapr_tce_create create = {
			.argsz = sizeof(create), .page_shift = page_shift, .window_size = 1ULL << window_log2, .levels = 1,
		};
		CHECK(ioctl(container, VFIO_IOMMU_SPAPR_TCE_CREATE, &create), "VFIO_IOMMU_SPAPR_TCE_CREATE");
		printf("window of 2^%u TCEs created at 0x%llx\n", window_log2 - page_shift, (unsigned long long)create.start_addr);
		fflush(stdout);
		struct vfio_iommu_type1_dma_map map = {
			.argsz = sizeof(map), .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
			.vaddr = (uintptr_t)buf, .iova = create.start_addr, .size = 1ULL << page_shift,
		};
		CHECK(ioctl(container, VFIO_IOMMU_MAP_DMA, &map), "VFIO_IOMMU_MAP_DMA");
		printf("mapped one page\n");
		fflush(stdout);
		_exit(0);
	}
	int status;
	if (waitpid(child, &status, 0) < 0) {
		perror("waitpid");
		return 1;
	}
	if (WIFSIGNALED(status))
		printf("child killed by signal %d\n", WTERMSIG(status));
	else
		printf("child exited with %d\n", WEXITSTATUS(status));
	return 0;
}
