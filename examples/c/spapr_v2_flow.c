/*
 * spapr_v2_flow: the whole life of a VFIO sPAPR TCE v2 user on POWER, step by step.
 *
 *   usage: spapr_v2_flow GROUP BDF          e.g.  spapr_v2_flow 0 0000:01:00.0
 *   against the model:  tcelab exec --machine powernv9 -- ./spapr_v2_flow 0 0000:01:00.0
 *
 * 1. container + group: open /dev/vfio/vfio and /dev/vfio/GROUP, attach, select sPAPR v2.
 *    Attaching takes the group from the kernel (its 64-bit bypass and default window go).
 * 2. GET_INFO: the 32-bit window and what dynamic DMA windows (DDW) the PHB offers.
 * 3. preregister: v2 maps only memory registered first (pinned and accounted in VmLck once).
 * 4. DDW: create a second window, 1 GiB of IOMMU pages the size of the kernel's pages. The
 *    kernel chooses its bus address (on PowerNV, 1<<59).
 * 5. map: point IOVAs of the window at the registered buffer.
 * 6. device fd: what a driver would use for BARs and interrupts; here just its info.
 * 7. unmap, remove the window, unregister, close: everything goes back to the kernel.
 */
#include "vfio_common.h"
#include <stdint.h>
#include <sys/mman.h>

#define BUF_SIZE (4ULL << 20)
#define DDW_SIZE (1ULL << 30)

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s GROUP BDF\n", argv[0]);
		return 2;
	}
	int group = atoi(argv[1]);
	const char *bdf = argv[2];
	long page = sysconf(_SC_PAGESIZE); /* the kernel's page size: 64K or 4K on POWER */
	int container, groupfd;

	/* 1. container and group */
	open_v2_container(group, &container, &groupfd);
	printf("1. group %d attached to a v2 container (page size %ldK)\n", group, page / 1024);

	/* 2. what the IOMMU offers */
	struct vfio_iommu_spapr_tce_info info = { .argsz = sizeof(info) };
	CHECK(ioctl(container, VFIO_IOMMU_SPAPR_TCE_GET_INFO, &info), "VFIO_IOMMU_SPAPR_TCE_GET_INFO");
	printf("2. 32-bit window 0x%x..0x%x, DDW page sizes 0x%llx, %u windows, %u levels\n",
	       info.dma32_window_start, info.dma32_window_start + info.dma32_window_size - 1,
	       (unsigned long long)info.ddw.pgsizes, info.ddw.max_dynamic_windows_supported, info.ddw.levels);

	/* 3. preregister a buffer (page aligned: mmap gives kernel-page-aligned memory) */
	uint8_t *buf = mmap(NULL, BUF_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memset(buf, 0, BUF_SIZE);
	struct vfio_iommu_spapr_register_memory reg = {
		.argsz = sizeof(reg), .vaddr = (uintptr_t)buf, .size = BUF_SIZE,
	};
	CHECK(ioctl(container, VFIO_IOMMU_SPAPR_REGISTER_MEMORY, &reg), "VFIO_IOMMU_SPAPR_REGISTER_MEMORY");
	printf("3. registered %llu MiB, VmLck %ld kB\n", BUF_SIZE >> 20, vmlck_kb());

	/* 4. a dynamic DMA window with IOMMU pages of the kernel's page size */
	struct vfio_iommu_spapr_tce_create create = {
		.argsz = sizeof(create), .page_shift = (uint32_t)__builtin_ctzl(page),
		.window_size = DDW_SIZE, .levels = 1,
	};
	CHECK(ioctl(container, VFIO_IOMMU_SPAPR_TCE_CREATE, &create), "VFIO_IOMMU_SPAPR_TCE_CREATE");
	uint64_t iova = create.start_addr;
	printf("4. DDW created at 0x%llx, VmLck %ld kB\n", (unsigned long long)iova, vmlck_kb());

	/* 5. map the whole buffer at the start of the window */
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map), .flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)buf, .iova = iova, .size = BUF_SIZE,
	};
	CHECK(ioctl(container, VFIO_IOMMU_MAP_DMA, &map), "VFIO_IOMMU_MAP_DMA");
	printf("5. mapped IOVA 0x%llx..0x%llx\n", (unsigned long long)iova, (unsigned long long)(iova + BUF_SIZE - 1));

	/* 6. the device */
	int device;
	CHECK(device = ioctl(groupfd, VFIO_GROUP_GET_DEVICE_FD, bdf), "VFIO_GROUP_GET_DEVICE_FD");
	struct vfio_device_info dinfo = { .argsz = sizeof(dinfo) };
	CHECK(ioctl(device, VFIO_DEVICE_GET_INFO, &dinfo), "VFIO_DEVICE_GET_INFO");
	printf("6. device %s: %u regions, %u irqs%s\n", bdf, dinfo.num_regions, dinfo.num_irqs,
	       dinfo.flags & VFIO_DEVICE_FLAGS_PCI ? ", PCI" : "");

	/* 7. undo it all, in reverse */
	struct vfio_iommu_type1_dma_unmap unmap = { .argsz = sizeof(unmap), .iova = iova, .size = BUF_SIZE };
	CHECK(ioctl(container, VFIO_IOMMU_UNMAP_DMA, &unmap), "VFIO_IOMMU_UNMAP_DMA");
	struct vfio_iommu_spapr_tce_remove remove = { .argsz = sizeof(remove), .start_addr = iova };
	CHECK(ioctl(container, VFIO_IOMMU_SPAPR_TCE_REMOVE, &remove), "VFIO_IOMMU_SPAPR_TCE_REMOVE");
	CHECK(ioctl(container, VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY, &reg), "VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY");
	CHECK(close(device), "close device");
	CHECK(close(groupfd), "close group");
	CHECK(close(container), "close container");
	printf("7. unmapped, removed, unregistered, closed: VmLck %ld kB\n", vmlck_kb());
	return 0;
}
