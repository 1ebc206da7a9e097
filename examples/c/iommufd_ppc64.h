/*
 * The IOMMUFD uAPI a PPC64 client needs, as Linux 6.12 defines it (<linux/iommufd.h> and the
 * device-cdev part of <linux/vfio.h>, which older distribution headers lack), and tcelab's
 * proposed PPC64 TCE additions (docs/iommufd-ppc64.md).
 */
#ifndef IOMMUFD_PPC64_H
#define IOMMUFD_PPC64_H
#include <linux/types.h>
#include <sys/ioctl.h>

#define IOMMUFD_TYPE ';'
#define IOMMU_IOAS_ALLOC _IO(IOMMUFD_TYPE, 0x81)
#define IOMMU_IOAS_IOVA_RANGES _IO(IOMMUFD_TYPE, 0x84)
#define IOMMU_IOAS_MAP _IO(IOMMUFD_TYPE, 0x85)
#define IOMMU_IOAS_UNMAP _IO(IOMMUFD_TYPE, 0x86)
#define IOMMU_HWPT_ALLOC _IO(IOMMUFD_TYPE, 0x89)
#define IOMMU_GET_HW_INFO _IO(IOMMUFD_TYPE, 0x8a)
#define VFIO_DEVICE_BIND_IOMMUFD _IO(';', 100 + 18)
#define VFIO_DEVICE_ATTACH_IOMMUFD_PT _IO(';', 100 + 19)
#define VFIO_DEVICE_DETACH_IOMMUFD_PT _IO(';', 100 + 20)

#define IOMMU_IOAS_MAP_FIXED_IOVA (1 << 0)
#define IOMMU_IOAS_MAP_WRITEABLE (1 << 1)
#define IOMMU_IOAS_MAP_READABLE (1 << 2)

struct iommu_ioas_alloc { __u32 size, flags, out_ioas_id; };
struct iommu_iova_range { __aligned_u64 start, last; };
struct iommu_ioas_iova_ranges {
	__u32 size, ioas_id, num_iovas, __reserved;
	__aligned_u64 allowed_iovas, out_iova_alignment;
};
struct iommu_ioas_map {
	__u32 size, flags, ioas_id, __reserved;
	__aligned_u64 user_va, length, iova;
};
struct iommu_ioas_unmap { __u32 size, ioas_id; __aligned_u64 iova, length; };
struct iommu_hwpt_alloc {
	__u32 size, flags, dev_id, pt_id, out_hwpt_id, __reserved, data_type, data_len;
	__aligned_u64 data_uptr;
	__u32 fault_id, __reserved2;
};
struct iommu_hw_info {
	__u32 size, flags, dev_id, data_len;
	__aligned_u64 data_uptr;
	__u32 out_data_type;
	__u8 out_max_pasid_log2, __reserved[3];
	__aligned_u64 out_capabilities;
};
struct vfio_device_bind_iommufd { __u32 argsz, flags; __s32 iommufd; __u32 out_devid; };
struct vfio_device_attach_iommufd_pt { __u32 argsz, flags, pt_id; };
struct vfio_device_detach_iommufd_pt { __u32 argsz, flags; };

/* tcelab's PPC64 TCE driver data for IOMMU_HWPT_ALLOC, and its IOMMU_GET_HW_INFO data. */
#define IOMMU_HWPT_DATA_PPC64_TCE 3
#define IOMMU_HW_INFO_TYPE_PPC64_TCE 3
#define PPC64_TCE_WINDOW_DMA32 (1 << 0)
#define PPC64_TCE_WINDOW_DDW (1 << 1)
struct iommu_hwpt_ppc64_tce { __u32 windows, page_shift; __aligned_u64 window_size; __u32 levels, __reserved; };
struct iommu_hw_info_ppc64_tce {
	__u32 flags, max_windows;
	__aligned_u64 pgsizes, dma32_start, dma32_size, ddw_start;
	__u32 max_levels, __reserved;
};
#endif
