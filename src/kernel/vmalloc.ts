/**
 * The one vmalloc limit the model keeps (mm/vmalloc.c __vmalloc_node_range_noprof()): a request of
 * more pages than totalram_pages() fails at once with a warn_alloc() report. totalram_pages() is
 * RAM less what the kernel reserved at boot; the model counts the memmap (one struct page per page
 * of RAM), the part that grows with RAM. Running out of free pages part-way is not modelled.
 */
import type { PhysMemory } from '../hw/memory.js';
import type { KernelLog } from './printk.js';

/** sizeof(struct page) on ppc64. */
const STRUCT_PAGE_SIZE = 64;
/** GFP_KERNEL | __GFP_ZERO, as vzalloc() passes it and %pGg prints it. */
const VZALLOC_GFP = '0xdc0(GFP_KERNEL|__GFP_ZERO)';

/** totalram_pages(): RAM pages less the memmap reserved at boot. */
export function totalramPages(mem: PhysMemory): number {
  return mem.totalPages - Math.ceil((mem.totalPages * STRUCT_PAGE_SIZE) / mem.pageSize);
}

/**
 * Whether vzalloc(size) gets its memory. A size above totalram_pages() fails with the
 * "exceeds total pages" report (its stack dump and Mem-Info are not modelled).
 */
export function vzallocFits(mem: PhysMemory, klog: KernelLog, task: { pid: number; uid: number; comm: string }, size: number): boolean {
  const pages = Math.ceil(size / mem.pageSize);
  if (pages <= totalramPages(mem)) return true;
  const comm = task.comm.slice(0, 15);
  klog.printk(`${comm}: vmalloc error: size ${size}, exceeds total pages, mode:${VZALLOC_GFP}, nodemask=(null),cpuset=/,mems_allowed=0`);
  klog.printk(`CPU: 0 UID: ${task.uid} PID: ${task.pid} Comm: ${comm}`);
  return false;
}
