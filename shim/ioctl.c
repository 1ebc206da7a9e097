/*
 * ioctl() on model descriptors. The argument goes to the model as <linux/vfio.h> defines it:
 * by value for the integer-argument requests, as the struct's bytes otherwise (read from the
 * program's memory without faulting: an unreadable pointer goes as its integer value, so the
 * model answers EFAULT as copy_from_user would), and what the model writes back is copied into
 * the program's struct. Before REGISTER_MEMORY, a MAP_DMA on a v1 container and IOMMU_IOAS_MAP
 * the real mappings behind the user range are reported, so the model pins exactly what the
 * kernel could. A v2 MAP_DMA pins nothing: it maps pages pinned at REGISTER_MEMORY.
 */
#include "tcelab.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <linux/vfio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

enum { ARG_VALUE = -1, ARG_GROUP_FD = -2, ARG_STRING = -3, ARG_SIZED = -4 };

/* <linux/iommufd.h> commands (_IO(';', 0x80..0x8e)) and the device cdev ioctls (VFIO_BASE + 18..20):
 * every one starts with its size (argsz). */
#define IOMMUFD_CMD(req) (((req) & ~0xffUL) == (0x3bUL << 8) && ((req) & 0xff) >= 0x80 && ((req) & 0xff) <= 0x8e)
#define VFIO_CDEV_CMD(req) ((req) >= ((0x3bUL << 8) | 118) && (req) <= ((0x3bUL << 8) | 120))
#define IOMMU_IOAS_ALLOW_IOVAS_NR 0x82
#define IOMMU_IOAS_IOVA_RANGES_NR 0x84
#define IOMMU_IOAS_MAP_NR 0x85
#define IOMMU_HWPT_ALLOC_NR 0x89
#define IOMMU_GET_HW_INFO_NR 0x8a
/* At most this many bytes of user memory behind a struct's pointers go with a request. */
#define MAX_USER_REGION 4096

/* How a request's argument is passed: a struct of this size, or one of the ARG_ kinds. */
static long arg_size(unsigned long req)
{
	switch (req) {
	case VFIO_GROUP_GET_STATUS: return sizeof(struct vfio_group_status);
	case VFIO_GROUP_SET_CONTAINER: return ARG_GROUP_FD;
	case VFIO_GROUP_GET_DEVICE_FD: return ARG_STRING;
	case VFIO_DEVICE_GET_INFO: return sizeof(struct vfio_device_info);
	case VFIO_DEVICE_GET_REGION_INFO: return sizeof(struct vfio_region_info);
	case VFIO_DEVICE_GET_IRQ_INFO: return sizeof(struct vfio_irq_info);
	case VFIO_DEVICE_SET_IRQS: return ARG_SIZED;
	case VFIO_IOMMU_SPAPR_TCE_GET_INFO: return sizeof(struct vfio_iommu_spapr_tce_info);
	case VFIO_IOMMU_MAP_DMA: return sizeof(struct vfio_iommu_type1_dma_map);
	case VFIO_IOMMU_UNMAP_DMA: return sizeof(struct vfio_iommu_type1_dma_unmap);
	case VFIO_IOMMU_SPAPR_REGISTER_MEMORY:
	case VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY: return sizeof(struct vfio_iommu_spapr_register_memory);
	case VFIO_IOMMU_SPAPR_TCE_CREATE: return sizeof(struct vfio_iommu_spapr_tce_create);
	case VFIO_IOMMU_SPAPR_TCE_REMOVE: return sizeof(struct vfio_iommu_spapr_tce_remove);
	case VFIO_EEH_PE_OP: return sizeof(struct vfio_eeh_pe_op);
	default:
		if (IOMMUFD_CMD(req) || VFIO_CDEV_CMD(req))
			return ARG_SIZED;
		return ARG_VALUE; /* GET_API_VERSION, CHECK_EXTENSION, SET_IOMMU, ENABLE, ... */
	}
}

/* The largest variable-size argument (VFIO_DEVICE_SET_IRQS) the shim forwards. */
#define MAX_SIZED_ARG 4096

/* The calling thread's stack, [lo, hi), once known; lo == hi when it cannot be known. */
static __thread uintptr_t stack_lo, stack_hi;
static __thread int stack_known;

/*
 * Is [addr, addr + len) in the live part of the calling thread's stack: between this frame and
 * the stack's top? Such bytes are mapped and writable, so they can be copied without the
 * fault-safe system calls. Anything else (another stack, a coroutine's, the heap) is not.
 */
static __attribute__((noinline)) int on_live_stack(uint64_t addr, size_t len)
{
	if (!stack_known) {
		pthread_attr_t a;
		void *base;
		size_t size;
		stack_known = 1;
		if (!pthread_getattr_np(pthread_self(), &a)) {
			if (!pthread_attr_getstack(&a, &base, &size)) {
				stack_lo = (uintptr_t)base;
				stack_hi = (uintptr_t)base + size;
			}
			pthread_attr_destroy(&a);
		}
	}
	uintptr_t frame = (uintptr_t)__builtin_frame_address(0);
	return frame >= stack_lo && frame < stack_hi && addr >= frame && addr <= stack_hi && len <= stack_hi - addr;
}

/* Copy between the program's memory and ours page by page, stopping at the first fault. */
static size_t copy_user(void *ours, uint64_t addr, size_t len, int write)
{
	if (!addr)
		return 0;
	if (on_live_stack(addr, len)) {
		if (write)
			memcpy((void *)(uintptr_t)addr, ours, len);
		else
			memcpy(ours, (const void *)(uintptr_t)addr, len);
		return len;
	}
	size_t done = 0, page = (size_t)REAL(sysconf)(_SC_PAGESIZE);
	while (done < len) {
		uint64_t a = addr + done;
		size_t n = page - (size_t)(a % page);
		if (n > len - done)
			n = len - done;
		struct iovec local = { (uint8_t *)ours + done, n }, remote = { (void *)(uintptr_t)a, n };
		ssize_t r = write ? process_vm_writev(getpid(), &local, 1, &remote, 1, 0)
				  : process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
		if (r != (ssize_t)n)
			break;
		done += n;
	}
	return done;
}

/* Write back only the bytes the model changed (the program's struct may be read-only). */
static void copy_back(uint64_t addr, const uint8_t *before, const uint8_t *after, size_t n)
{
	for (size_t i = 0; i < n;) {
		if (before[i] == after[i]) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < n && before[j] != after[j])
			j++;
		copy_user((void *)(after + i), addr + i, j - i, 1);
		i = j;
	}
}

/* VFIO_GROUP_SET_CONTAINER names the container by a real fd: pass its model fd. */
static int32_t container_fd_for_model(int32_t cfd)
{
	if (fd_kind(cfd) != FD_NONE)
		return fd_model(cfd);
	if (cfd < 0)
		return cfd;
	/* A real file that is not a container: the kernel answers EINVAL, an unused number EBADF. */
	return fcntl(cfd, F_GETFD) >= 0 ? -1 : INT32_MAX;
}

/* The user range REGISTER_MEMORY, a v1 MAP_DMA or IOMMU_IOAS_MAP is about to pin. */
static void report_user_range(int fd, unsigned long req, const uint8_t *arg, size_t n)
{
	uint64_t vaddr, size;
	if (IOMMUFD_CMD(req) && (req & 0xff) == IOMMU_IOAS_MAP_NR && n >= 32) {
		memcpy(&vaddr, arg + 16, 8);
		memcpy(&size, arg + 24, 8);
	} else if (req == VFIO_IOMMU_SPAPR_REGISTER_MEMORY && n >= sizeof(struct vfio_iommu_spapr_register_memory)) {
		memcpy(&vaddr, arg + offsetof(struct vfio_iommu_spapr_register_memory, vaddr), 8);
		memcpy(&size, arg + offsetof(struct vfio_iommu_spapr_register_memory, size), 8);
	} else if (req == VFIO_IOMMU_MAP_DMA && n >= sizeof(struct vfio_iommu_type1_dma_map) && !fd_v2(fd)) {
		memcpy(&vaddr, arg + offsetof(struct vfio_iommu_type1_dma_map, vaddr), 8);
		memcpy(&size, arg + offsetof(struct vfio_iommu_type1_dma_map, size), 8);
	} else {
		return;
	}
	tce_report_memory(vaddr, size);
}

/* User memory an IOMMUFD command reads or writes through a pointer in its struct. */
struct user_region {
	uint64_t addr;
	uint32_t len;
	uint8_t *bytes;
};

static int user_regions(unsigned long req, const uint8_t *arg, size_t n, struct user_region *out)
{
	uint32_t u32;
	uint64_t ptr = 0, len = 0;
	if (!IOMMUFD_CMD(req))
		return 0;
	switch (req & 0xff) {
	case IOMMU_IOAS_ALLOW_IOVAS_NR:
	case IOMMU_IOAS_IOVA_RANGES_NR: /* num_iovas @8, allowed_iovas @16: struct iommu_iova_range[] */
		if (n < 24)
			return 0;
		memcpy(&u32, arg + 8, 4);
		memcpy(&ptr, arg + 16, 8);
		len = (uint64_t)u32 * 16;
		break;
	case IOMMU_GET_HW_INFO_NR: /* data_len @12, data_uptr @16 */
		if (n < 24)
			return 0;
		memcpy(&u32, arg + 12, 4);
		memcpy(&ptr, arg + 16, 8);
		len = u32;
		break;
	case IOMMU_HWPT_ALLOC_NR: /* data_len @28, data_uptr @32 */
		if (n < 40)
			return 0;
		memcpy(&u32, arg + 28, 4);
		memcpy(&ptr, arg + 32, 8);
		len = u32;
		break;
	default:
		return 0;
	}
	if (!ptr || !len)
		return 0;
	out->addr = ptr;
	out->len = (uint32_t)(len < MAX_USER_REGION ? len : MAX_USER_REGION);
	out->bytes = calloc(1, out->len);
	/* What cannot be read stays out of the region: the model then faults as copy_from_user would. */
	out->len = (uint32_t)copy_user(out->bytes, ptr, out->len, 0);
	if (!out->len) {
		free(out->bytes);
		return 0;
	}
	return 1;
}

static long model_ioctl(int fd, unsigned long req, uint64_t argp)
{
	long size = arg_size(req);
	uint8_t *bytes = NULL;
	size_t n = 0;
	if (size == ARG_SIZED) {
		uint32_t argsz = 0;
		copy_user(&argsz, argp, 4, 0);
		size = argsz < MAX_SIZED_ARG ? argsz : MAX_SIZED_ARG;
	}
	if (size == ARG_STRING) {
		bytes = calloc(1, PATH_MAX + 1);
		n = copy_user(bytes, argp, PATH_MAX, 0);
		size_t len = strnlen((char *)bytes, n);
		n = len < n ? len + 1 : 0; /* no NUL within reach: as unreadable */
	} else if (size == ARG_GROUP_FD) {
		int32_t cfd;
		if (copy_user(&cfd, argp, 4, 0) == 4) {
			cfd = container_fd_for_model(cfd);
			bytes = malloc(4);
			memcpy(bytes, &cfd, 4);
			n = 4;
		}
	} else if (size >= 0) {
		bytes = calloc(1, (size_t)size + 1);
		n = copy_user(bytes, argp, (size_t)size, 0);
	}
	if (n)
		report_user_range(fd, req, bytes, n);
	struct user_region ur = { 0 };
	int nur = n ? user_regions(req, bytes, n, &ur) : 0;
	struct tce_msg m = { 0 };
	struct tce_reply r = { 0 };
	msg_u8(&m, OP_IOCTL);
	msg_u32(&m, (uint32_t)fd_model(fd));
	msg_u32(&m, (uint32_t)req);
	msg_u8(&m, nur ? 2 : n ? 1 : 0);
	if (nur) { /* the struct, then the user memory behind its pointer */
		msg_u32(&m, (uint32_t)n);
		msg_bytes(&m, bytes, n);
		msg_u64(&m, ur.addr);
		msg_bytes(&m, ur.bytes, ur.len);
	} else if (n) {
		msg_bytes(&m, bytes, n);
	} else {
		msg_u64(&m, argp);
	}
	if (tce_call(&m, &r)) {
		free(bytes);
		free(ur.bytes);
		return -1;
	}
	if (n && size != ARG_GROUP_FD && size != ARG_STRING)
		copy_back(argp, bytes, r.body, r.body_len < n ? r.body_len : n);
	if (nur && r.body_len >= n + ur.len)
		copy_back(ur.addr, ur.bytes, r.body + n, ur.len);
	free(bytes);
	free(ur.bytes);
	free(r.body);
	tce_check_killed(&r);
	if (r.ret < 0) {
		errno = r.err;
		return -1;
	}
	if (req == VFIO_SET_IOMMU)
		fd_set_v2(fd, argp == VFIO_SPAPR_TCE_v2_IOMMU);
	if (req == VFIO_GROUP_GET_DEVICE_FD) { /* a new model descriptor */
		int dfd = fd_install(r.ret, FD_MODEL, 0);
		if (dfd < 0) {
			int e = errno;
			struct tce_msg c = { 0 };
			msg_u8(&c, OP_CLOSE);
			msg_u32(&c, (uint32_t)r.ret);
			tce_simple(&c);
			errno = e;
		}
		return dfd;
	}
	return r.ret;
}

int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	if (fd_kind(fd) != FD_MODEL)
		return REAL(ioctl)(fd, req, arg);
	return (int)model_ioctl(fd, req, (uint64_t)(uintptr_t)arg);
}
