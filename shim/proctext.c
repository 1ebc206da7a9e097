/* /proc files whose text the model writes: CPU and MMU, memory and huge pages, THP use, VmLck. */
#include "tcelab.h"
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int tce_proc_text_which(const char *path)
{
	static const char *const names[] = {
		[PROC_CPUINFO] = "/proc/cpuinfo",
		[PROC_MEMINFO] = "/proc/meminfo",
		[PROC_SMAPS_ROLLUP] = "/proc/self/smaps_rollup",
		[PROC_STATUS] = "/proc/self/status",
	};
	for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
		if (!strcmp(path, names[i]))
			return i;
	return -1;
}

int tce_proc_text_fd(int which)
{
	/* THP use is counted over the mappings the model knows: tell it all of them first. */
	if (which == PROC_SMAPS_ROLLUP && tce_report_all_memory())
		return -1;
	struct tce_msg m = { 0 };
	struct tce_reply r = { 0 };
	msg_u8(&m, OP_PROC_TEXT);
	msg_u8(&m, (uint8_t)which);
	if (tce_call(&m, &r))
		return -1;
	int fd = memfd_create("tcelab-proc", MFD_CLOEXEC);
	size_t off = 0;
	while (fd >= 0 && off < r.body_len) {
		ssize_t w = write(fd, r.body + off, r.body_len - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	free(r.body);
	if (fd >= 0)
		REAL(lseek)(fd, 0, SEEK_SET);
	return fd;
}
