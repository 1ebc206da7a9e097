/*
 * Mapping changes between VFIO calls must reach the model even though the shim keeps its reading
 * of /proc/self/smaps: after the program's own munmap and mprotect (interposed calls), and after
 * libc unmaps memory through its internal calls (free() of a large malloc block). Prints one line
 * per REGISTER_MEMORY: "registered" or the errno name.
 */
#include "vfio_common.h"
#include <stdint.h>
#include <sys/mman.h>

#define MiB (1UL << 20)

static int container;

static void reg(const char *step, void *p, size_t n)
{
	struct vfio_iommu_spapr_register_memory r = { .argsz = sizeof(r), .vaddr = (uintptr_t)p, .size = n };
	int rc = ioctl(container, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, &r);
	printf("%s: %s\n", step, rc ? strerrorname_np(errno) : "registered");
	if (!rc)
		CHECK(ioctl(container, VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY, &r), "VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY");
}

static uint8_t *map(void)
{
	uint8_t *p = mmap(NULL, MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

int main(void)
{
	int groupfd;
	open_v2_container(0, &container, &groupfd);

	uint8_t *a = map();
	reg("mapped", a, MiB);
	reg("mapped, again", a, MiB);
	munmap(a, MiB);
	reg("after munmap", a, MiB);

	uint8_t *b = map();
	mprotect(b, MiB, PROT_READ);
	reg("after mprotect read-only", b, MiB);
	mprotect(b, MiB, PROT_READ | PROT_WRITE);
	reg("after mprotect read-write", b, MiB);

	/* A block this large comes from libc's own mmap, and free() gives it back by its own munmap. */
	uint8_t *raw = malloc(8 * MiB);
	uintptr_t align = 64 << 10;
	uint8_t *c = (uint8_t *)(((uintptr_t)raw + align - 1) & ~(align - 1));
	memset(raw, 1, 8 * MiB);
	reg("malloc block", c, MiB);
	free(raw);
	reg("after free", c, MiB);
	return 0;
}
