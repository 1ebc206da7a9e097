/**
 * Processes as the VFIO paths see them: credentials, RLIMIT_MEMLOCK, the mm with its locked_vm
 * counter (VmLck), its address space of mappings, page pinning, and the mm's list of
 * preregistered IOMMU memory.
 */
import type { EventLog } from '../base/events.js';
import type { PhysMemory } from '../hw/memory.js';
import type { MmIommuRegion } from './mm-iommu.js';
import { UserMemory } from './uaccess.js';

export type MappingKind = 'anon' | 'readonly' | 'hugetlb' | 'thp';

export interface Mapping {
  start: bigint;
  end: bigint;
  kind: MappingKind;
  /** Page size of a hugetlb mapping. */
  hugePageShift?: number;
  /**
   * A private hugetlb mapping inherited through fork(): its huge pages are shared copy-on-write
   * with the parent, and a pin must first copy each into a huge page of its own.
   */
  cowShared?: boolean;
}

export class Mm {
  /** locked_vm, in kernel pages. */
  lockedVm = 0;
  /** pinned_vm (VmPin), in kernel pages. */
  pinnedVm = 0;
  /** Buffers the kernel reads and writes through pointers inside ioctl structs. */
  readonly user = new UserMemory();
  readonly mappings: Mapping[] = [];
  /** mm->context.iommu_group_mem_list (newest first, like list_add). */
  readonly iommuGroupMemList: MmIommuRegion[] = [];
  /** user page (virtual page number) → physical page frame, allocated on first pin/touch. */
  readonly pages = new Map<number, number>();
  /** Outstanding pins per user virtual page number. */
  readonly pins = new Map<number, number>();
  /**
   * Anonymous pages shared copy-on-write with another mm since a fork(). Pinning one (FOLL_PIN)
   * unshares it first: the pinning mm gets its own copy at a new physical address.
   */
  readonly cowShared = new Set<number>();
  /** mmgrab() count from VFIO containers; the mm outlives the process while held. */
  grabs = 0;
  destroyed = false;

  constructor(readonly owner: number) {}

  /**
   * munmap() of [start, end) as far as the mappings go: the parts of mappings outside it stay.
   * Pages pinned there stay pinned (and keep their physical pages) until they are unpinned.
   */
  unmapRange(start: bigint, end: bigint): void {
    const kept: Mapping[] = [];
    for (const m of this.mappings) {
      if (m.end <= start || m.start >= end) {
        kept.push(m);
        continue;
      }
      if (m.start < start) kept.push({ ...m, end: start });
      if (m.end > end) kept.push({ ...m, start: end });
    }
    this.mappings.splice(0, this.mappings.length, ...kept);
  }

  /** mmap() with MAP_FIXED: `m` replaces whatever was mapped over its range. */
  mapFixed(m: Mapping): void {
    this.unmapRange(m.start, m.end);
    this.mappings.push(m);
    this.mappings.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  }

  findMapping(addr: bigint): Mapping | undefined {
    return this.mappings.find((m) => addr >= m.start && addr < m.end);
  }

  /**
   * findMapping(addr), and the lowest mapping start or end above addr (null: none): every
   * address from addr up to it finds the same mapping.
   */
  findMappingUntil(addr: bigint): { m: Mapping | undefined; until: bigint | null } {
    let until: bigint | null = null;
    for (const m of this.mappings) {
      if (m.start > addr && (until === null || m.start < until)) until = m.start;
      if (m.end > addr && (until === null || m.end < until)) until = m.end;
    }
    return { m: this.findMapping(addr), until };
  }
}

export class Process {
  uid = 0;
  /** CAP_IPC_LOCK (root has it until it drops its uid). */
  capIpcLock = true;
  /** RLIMIT_MEMLOCK in bytes (the kernel default is 8 MiB). */
  rlimitMemlock = 8n * 1024n * 1024n;
  readonly mm: Mm;
  exited = false;
  /** A kernel oops killed the task in the middle of a system call (the signal it dies of). */
  oops: { fn: string; signal: number } | null = null;
  /** The kernel function the task loops in without end (a soft lockup): the call never returns. */
  lockup: string | null = null;
  /**
   * Why the task hangs forever: in uninterruptible sleep (D state) on a lock an oopsed task still
   * holds, or looping in the kernel (a soft lockup). A stuck task makes no more system calls and is never reaped.
   */
  stuck: string | null = null;

  constructor(
    readonly pid: number,
    readonly comm: string,
  ) {
    this.mm = new Mm(pid);
  }

  setuid(uid: number): void {
    this.uid = uid;
    if (uid !== 0) this.capIpcLock = false;
  }
}

/** account_locked_vm() (mm/util.c): charges or returns pages; -ENOMEM over RLIMIT_MEMLOCK. */
export function accountLockedVm(proc: Process, mm: Mm, pages: number, inc: boolean, kernelPageShift: number, log?: EventLog): number {
  if (pages === 0) return 0;
  if (inc) {
    const limit = Number(proc.rlimitMemlock >> BigInt(kernelPageShift));
    if (mm.lockedVm + pages > limit && !proc.capIpcLock) return -12;
    mm.lockedVm += pages;
  } else {
    mm.lockedVm -= Math.min(pages, mm.lockedVm);
  }
  log?.emit({ layer: 'kernel', kind: 'locked-vm', pid: mm.owner, pages: mm.lockedVm, delta: inc ? pages : -pages });
  return 0;
}

/** pin_user_pages() gup flags, and what the MMU gives a page fault. */
export interface PinFlags {
  /** FOLL_WRITE. */
  write: boolean;
  /**
   * The transparent huge page shift (PMD size; 0 or absent: no THP). A THP-advised mapping that
   * holds the whole aligned huge page around an untouched address faults it in as one.
   */
  thpShift?: number;
}

/**
 * pin_user_pages(): pins `npages` kernel pages from `addr`, allocating physical pages for
 * untouched anonymous memory. Returns the physical addresses or -errno (-EFAULT for a hole or a
 * read-only mapping when writing; hugetlb pages that cannot be pinned also fail). Nothing stays
 * pinned on failure.
 */
export function pinUserPages(mm: Mm, mem: PhysMemory, addr: bigint, npages: number, flags: PinFlags): number[] | number {
  const out: number[] = [];
  const err = pinUserPagesUpTo(mm, mem, addr, npages, flags, out);
  if (err) return unpinAll(mm, out, addr, BigInt(mem.pageSize), err);
  return out;
}

/**
 * pin_user_pages() as the kernel's loop runs it: pins pages from `addr` into `out` until one
 * fails, and returns that page's -errno (0 when all `npages` were pinned). The pages pinned
 * before it stay pinned: the caller decides (the kernel call returns their number if any).
 * A hugetlb page shared copy-on-write since a fork() (Mapping.cowShared) cannot be pinned: the
 * copy needs a free huge page, and the oracle program's pool holds exactly its own buffer.
 */
export function pinUserPagesUpTo(mm: Mm, mem: PhysMemory, addr: bigint, npages: number, flags: PinFlags, out: number[]): number {
  const pageSize = BigInt(mem.pageSize);
  for (let i = 0; i < npages; i++) {
    const va = addr + BigInt(i) * pageSize;
    const m = mm.findMapping(va);
    if (!m) return -14;
    if (m.kind === 'readonly' && flags.write) return -14;
    if (m.kind === 'hugetlb' && m.cowShared) return -14;
    const vpn = Number(va / pageSize);
    let pfn = mm.pages.get(vpn);
    if (pfn !== undefined && mm.cowShared.has(vpn)) {
      // gup_must_unshare(): a pinned anonymous page must be exclusive to this mm.
      const to = mem.allocPages(0, { kind: 'user', label: `pid ${mm.owner} page 0x${(va - (va % pageSize)).toString(16)}` });
      if (to === null) return -12;
      mem.copyPage(pfn, to);
      mm.cowShared.delete(vpn);
      mm.pages.set(vpn, to);
      pfn = to;
    }
    if (pfn === undefined) {
      const huge = hugeShiftAt(m, va, flags.thpShift ?? 0);
      const p = huge
        ? faultHugePage(mm, mem, huge, va)
        : mem.allocPages(0, { kind: 'user', label: `pid ${mm.owner} page 0x${(va - (va % pageSize)).toString(16)}` });
      if (p === null) return -12;
      pfn = p;
      mm.pages.set(vpn, pfn);
    }
    mm.pins.set(vpn, (mm.pins.get(vpn) ?? 0) + 1);
    out.push(pfn * mem.pageSize);
  }
  return 0;
}

/** The huge page size a fault at `va` of `m` gets: hugetlb, or a whole aligned THP; 0 for a small page. */
function hugeShiftAt(m: Mapping, va: bigint, thpShift: number): number {
  if (m.kind === 'hugetlb') return m.hugePageShift ?? 0;
  if (m.kind !== 'thp' || !thpShift) return 0;
  const size = 1n << BigInt(thpShift);
  const head = va - (va % size);
  return head >= m.start && head + size <= m.end ? thpShift : 0;
}

/**
 * A huge page faulted in: one physically contiguous block (a compound page) for the whole huge
 * page around `va`, its kernel pages mapped at once. Returns the frame behind `va`, null when no
 * block is free.
 */
function faultHugePage(mm: Mm, mem: PhysMemory, shift: number, va: bigint): number | null {
  const order = Math.max(0, shift - mem.pageShift);
  const hsize = BigInt(mem.pageSize) << BigInt(order);
  const head = va - (va % hsize);
  const block = mem.allocPages(order, { kind: 'user', label: `pid ${mm.owner} huge page 0x${head.toString(16)}` });
  if (block === null) return null;
  const vpn0 = Number(head / BigInt(mem.pageSize));
  for (let k = 0; k < 2 ** order; k++) if (!mm.pages.has(vpn0 + k)) mm.pages.set(vpn0 + k, block + k);
  return mm.pages.get(Number(va / BigInt(mem.pageSize)))!;
}

function unpinAll(mm: Mm, pinned: number[], addr: bigint, pageSize: bigint, err: number): number {
  for (let i = 0; i < pinned.length; i++) unpinUserPage(mm, Number((addr + BigInt(i) * pageSize) / pageSize));
  return err;
}

/** A program writing to its anonymous memory: every page gets a physical page. */
export function touchUserPages(mm: Mm, mem: PhysMemory, addr: bigint, npages: number): void {
  const pageSize = BigInt(mem.pageSize);
  for (let i = 0; i < npages; i++) {
    const va = addr + BigInt(i) * pageSize;
    const vpn = Number(va / pageSize);
    if (mm.pages.has(vpn)) continue;
    const pfn = mem.allocPages(0, { kind: 'user', label: `pid ${mm.owner} page 0x${va.toString(16)}` });
    if (pfn === null) return;
    mm.pages.set(vpn, pfn);
  }
}

/** unpin_user_page() by user virtual page number. */
export function unpinUserPage(mm: Mm, vpn: number): void {
  const n = mm.pins.get(vpn) ?? 0;
  if (n <= 1) mm.pins.delete(vpn);
  else mm.pins.set(vpn, n - 1);
}

/** The user virtual page number holding a physical page, for unpinning by hpa. */
export function vpnOfPhys(mm: Mm, mem: PhysMemory, pa: number): number | undefined {
  const pfn = Math.floor(pa / mem.pageSize);
  for (const [vpn, p] of mm.pages) if (p === pfn) return vpn;
  return undefined;
}
