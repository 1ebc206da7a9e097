/*
 * The IOMMUFD flow of a PPC64 VMM with both DMA windows, on tcelab's PPC64 IOMMUFD driver:
 *   1. open the device cdev and /dev/iommu, bind;
 *   2. GET_HW_INFO: the PPC64 TCE info (32-bit window, 64-bit window base, page sizes);
 *   3. an IOAS and an HWPT with both windows (PPC64 TCE driver data), attached;
 *   4. IOVA_RANGES: the two windows, the hole between them reserved;
 *   5. map one buffer into each window, unmap both, detach, close.
 * Usage: iommufd_two_windows CDEV_NUMBER   (run with: tcelab exec --iommufd ppc64 --allow-unsafe-interrupts -- ...)
 */
#include "vfio_common.h"
#include "iommufd_ppc64.h"
#include <stdint.h>
#include <sys/mman.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s CDEV_NUMBER\n", argv[0]);
		return 2;
	}
	char path[64];
	snprintf(path, sizeof(path), "/dev/vfio/devices/vfio%s", argv[1]);
	int dev = open(path, O_RDWR);
	CHECK(dev, path);
	int iommufd = open("/dev/iommu", O_RDWR);
	CHECK(iommufd, "/dev/iommu");
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind), .iommufd = iommufd };
	CHECK(ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &bind), "VFIO_DEVICE_BIND_IOMMUFD");
	printf("1. %s bound to /dev/iommu as device %u\n", path, bind.out_devid);

	struct iommu_hw_info_ppc64_tce hw = { 0 };
	struct iommu_hw_info info = { .size = sizeof(info), .dev_id = bind.out_devid, .data_len = sizeof(hw), .data_uptr = (uintptr_t)&hw };
	CHECK(ioctl(iommufd, IOMMU_GET_HW_INFO, &info), "IOMMU_GET_HW_INFO");
	if (info.out_data_type != IOMMU_HW_INFO_TYPE_PPC64_TCE) {
		fprintf(stderr, "GET_HW_INFO: type %u, not PPC64 TCE\n", info.out_data_type);
		return 1;
	}
	printf("2. PPC64 TCE: 32-bit window 0x%llx..0x%llx, 64-bit window at 0x%llx, page sizes 0x%llx, %u windows, %u levels\n",
	       (unsigned long long)hw.dma32_start, (unsigned long long)(hw.dma32_start + hw.dma32_size - 1),
	       (unsigned long long)hw.ddw_start, (unsigned long long)hw.pgsizes, hw.max_windows, hw.max_levels);

	struct iommu_ioas_alloc ioas = { .size = sizeof(ioas) };
	CHECK(ioctl(iommufd, IOMMU_IOAS_ALLOC, &ioas), "IOMMU_IOAS_ALLOC");
	long page = sysconf(_SC_PAGESIZE);
	struct iommu_hwpt_ppc64_tce data = {
		.windows = PPC64_TCE_WINDOW_DMA32 | PPC64_TCE_WINDOW_DDW,
		.page_shift = page == 65536 ? 16 : 12,
		.window_size = 1ULL << 32,
		.levels = 1,
	};
	struct iommu_hwpt_alloc hwpt = {
		.size = sizeof(hwpt), .dev_id = bind.out_devid, .pt_id = ioas.out_ioas_id,
		.data_type = IOMMU_HWPT_DATA_PPC64_TCE, .data_len = sizeof(data), .data_uptr = (uintptr_t)&data,
	};
	CHECK(ioctl(iommufd, IOMMU_HWPT_ALLOC, &hwpt), "IOMMU_HWPT_ALLOC");
	struct vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach), .pt_id = hwpt.out_hwpt_id };
	CHECK(ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach), "VFIO_DEVICE_ATTACH_IOMMUFD_PT");
	printf("3. IOAS %u, HWPT %u with both windows (4 GiB of %ldK pages at 0x%llx), attached\n", ioas.out_ioas_id,
	       hwpt.out_hwpt_id, page / 1024, (unsigned long long)hw.ddw_start);

	struct iommu_iova_range ranges[4];
	struct iommu_ioas_iova_ranges rq = { .size = sizeof(rq), .ioas_id = ioas.out_ioas_id, .num_iovas = 4, .allowed_iovas = (uintptr_t)ranges };
	CHECK(ioctl(iommufd, IOMMU_IOAS_IOVA_RANGES, &rq), "IOMMU_IOAS_IOVA_RANGES");
	printf("4. %u IOVA ranges:", rq.num_iovas);
	for (unsigned i = 0; i < rq.num_iovas && i < 4; i++)
		printf(" 0x%llx..0x%llx", (unsigned long long)ranges[i].start, (unsigned long long)ranges[i].last);
	printf(", alignment 0x%llx\n", (unsigned long long)rq.out_iova_alignment);

	size_t len = 1 << 20;
	uint8_t *buf = mmap(NULL, 2 * len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	memset(buf, 0x5a, 2 * len);
	uint64_t at[2] = { 0x100000, hw.ddw_start };
	for (int w = 0; w < 2; w++) {
		struct iommu_ioas_map map = {
			.size = sizeof(map), .ioas_id = ioas.out_ioas_id, .user_va = (uintptr_t)(buf + w * len), .length = len, .iova = at[w],
			.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
		};
		CHECK(ioctl(iommufd, IOMMU_IOAS_MAP, &map), "IOMMU_IOAS_MAP");
	}
	struct iommu_ioas_map hole = {
		.size = sizeof(hole), .ioas_id = ioas.out_ioas_id, .user_va = (uintptr_t)buf, .length = len, .iova = 1ULL << 40,
		.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE,
	};
	int r = ioctl(iommufd, IOMMU_IOAS_MAP, &hole);
	printf("5. mapped 1 MiB at 0x%llx and at 0x%llx; a map into the hole at 0x%llx: %s\n", (unsigned long long)at[0],
	       (unsigned long long)at[1], (unsigned long long)hole.iova, r < 0 ? strerrorname_np(errno) : "accepted");
	for (int w = 0; w < 2; w++) {
		struct iommu_ioas_unmap un = { .size = sizeof(un), .ioas_id = ioas.out_ioas_id, .iova = at[w], .length = len };
		CHECK(ioctl(iommufd, IOMMU_IOAS_UNMAP, &un), "IOMMU_IOAS_UNMAP");
	}
	struct vfio_device_detach_iommufd_pt detach = { .argsz = sizeof(detach) };
	CHECK(ioctl(dev, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach), "VFIO_DEVICE_DETACH_IOMMUFD_PT");
	close(dev);
	close(iommufd);
	printf("6. unmapped, detached, closed\n");
	return 0;
}
