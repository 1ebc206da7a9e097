/*
 * Small helpers shared by the examples: fail loudly with the call and errno, and open a VFIO
 * sPAPR v2 container with one group attached. Plain <linux/vfio.h>; nothing tcelab-specific.
 */
#ifndef VFIO_COMMON_H
#define VFIO_COMMON_H
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/vfio.h>

#define CHECK(call, what)                                                              \
	do {                                                                           \
		if ((call) < 0) {                                                      \
			fprintf(stderr, "%s failed: %s (%s)\n", what, strerror(errno), \
				strerrorname_np(errno));                               \
			exit(1);                                                       \
		}                                                                      \
	} while (0)

/* Open the container and /dev/vfio/<group>, attach the group and select the sPAPR v2 IOMMU. */
static inline void open_v2_container(int group, int *container, int *groupfd)
{
	char path[32];
	struct vfio_group_status st = { .argsz = sizeof(st) };

	CHECK(*container = open("/dev/vfio/vfio", O_RDWR), "open /dev/vfio/vfio");
	if (ioctl(*container, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
		fprintf(stderr, "unexpected VFIO API version\n");
		exit(1);
	}
	if (ioctl(*container, VFIO_CHECK_EXTENSION, VFIO_SPAPR_TCE_v2_IOMMU) != 1) {
		fprintf(stderr, "the kernel has no sPAPR TCE v2 IOMMU\n");
		exit(1);
	}
	snprintf(path, sizeof(path), "/dev/vfio/%d", group);
	CHECK(*groupfd = open(path, O_RDWR), path);
	CHECK(ioctl(*groupfd, VFIO_GROUP_GET_STATUS, &st), "VFIO_GROUP_GET_STATUS");
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		fprintf(stderr, "group %d is not viable: bind all its devices to vfio-pci\n", group);
		exit(1);
	}
	CHECK(ioctl(*groupfd, VFIO_GROUP_SET_CONTAINER, container), "VFIO_GROUP_SET_CONTAINER");
	CHECK(ioctl(*container, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_v2_IOMMU), "VFIO_SET_IOMMU(v2)");
}

/* The VmLck line of /proc/self/status, in kB: the memory locked (accounted) for this process. */
static inline long vmlck_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmLck:", 6))
			kb = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kb;
}
#endif
