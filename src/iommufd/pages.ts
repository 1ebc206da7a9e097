/**
 * struct iopt_pages (drivers/iommu/iommufd/pages.c): a range of user memory that one or more
 * IOAS areas map. Its pages are pinned only while some area over it fills a domain, once per
 * iopt_pages however many areas and domains use them, and every pin is charged: always to the
 * mm's pinned_vm, and to user->locked_vm (ACCOUNT_USER) or mm->locked_vm (ACCOUNT_MM) against
 * RLIMIT_MEMLOCK; CAP_IPC_LOCK holders are not charged (ACCOUNT_NONE).
 */
import type { EventLog } from '../base/events.js';
import type { PhysMemory } from '../hw/memory.js';
import { type Mm, type Process, pinUserPages, unpinUserPage } from '../kernel/process.js';

export type AccountMode = 'none' | 'user' | 'mm';

/** struct user_struct's locked_vm, per uid. */
export class UserStructs {
  private readonly lockedVm = new Map<number, number>();
  get(uid: number): number {
    return this.lockedVm.get(uid) ?? 0;
  }
  add(uid: number, pages: number): void {
    this.lockedVm.set(uid, this.get(uid) + pages);
  }
}

export interface PagesContext {
  mem: PhysMemory;
  log: EventLog;
  users: UserStructs;
}

/** The pinned user pages behind one or more areas (COPY shares them); freed with the last area. */
export class IoptPages {
  accountMode: AccountMode;
  /** Page index → how many area spans that fill domains cover it. */
  private readonly users = new Map<number, number>();
  /** Page index → pinned physical address. */
  readonly pfns = new Map<number, number>();
  npinned = 0;

  constructor(
    private readonly ctx: PagesContext,
    readonly source: Process,
    /** uptr, aligned down to PAGE_SIZE. */
    readonly uptr: bigint,
    readonly npages: number,
    readonly writable: boolean,
    /**
     * Pages another owner already pinned and charged (the sPAPR preregistered memory): their
     * physical addresses by page index. Filling them pins and charges nothing.
     */
    private readonly backing: ((index: number) => number) | null = null,
  ) {
    this.accountMode = source.capIpcLock ? 'none' : 'user';
  }

  private get mm(): Mm {
    return this.source.mm;
  }

  /**
   * Pin (and charge) pages [first, last] for one more user. On failure nothing changes:
   * -EFAULT when a page cannot be pinned, -ENOMEM over RLIMIT_MEMLOCK.
   */
  fill(first: number, last: number): number {
    const fresh: number[] = [];
    for (let i = first; i <= last; i++) if (!this.users.get(i)) fresh.push(i);
    if (this.backing) {
      for (const i of fresh) this.pfns.set(i, this.backing(i));
      for (let i = first; i <= last; i++) this.users.set(i, (this.users.get(i) ?? 0) + 1);
      return 0;
    }
    const ps = BigInt(this.ctx.mem.pageSize);
    const got: number[] = [];
    for (const i of fresh) {
      const r = pinUserPages(this.mm, this.ctx.mem, this.uptr + BigInt(i) * ps, 1, { write: this.writable });
      if (typeof r === 'number') {
        this.unpin(got);
        return r;
      }
      this.pfns.set(i, r[0]!);
      got.push(i);
    }
    const rc = this.updatePinned(got.length, true);
    if (rc) {
      this.unpin(got);
      return rc;
    }
    for (let i = first; i <= last; i++) this.users.set(i, (this.users.get(i) ?? 0) + 1);
    return 0;
  }

  /** Drop one user of pages [first, last]; pages nobody uses any more are unpinned and uncharged. */
  unfill(first: number, last: number): void {
    const gone: number[] = [];
    for (let i = first; i <= last; i++) {
      const n = (this.users.get(i) ?? 0) - 1;
      if (n > 0) this.users.set(i, n);
      else {
        this.users.delete(i);
        gone.push(i);
      }
    }
    this.unpin(gone);
    if (!this.backing) this.updatePinned(gone.length, false);
  }

  private unpin(idx: number[]): void {
    if (this.backing) {
      for (const i of idx) this.pfns.delete(i);
      return;
    }
    const ps = BigInt(this.ctx.mem.pageSize);
    for (const i of idx) {
      unpinUserPage(this.mm, Number((this.uptr + BigInt(i) * ps) / ps));
      this.pfns.delete(i);
    }
  }

  /** iopt_pages_update_pinned(). */
  private updatePinned(npages: number, inc: boolean): number {
    if (!npages) return 0;
    const p = this.source;
    const limit = Number(p.rlimitMemlock >> BigInt(this.ctx.mem.pageShift));
    if (this.accountMode === 'user') {
      if (inc) {
        if (this.ctx.users.get(p.uid) + npages > limit) return -12;
        this.ctx.users.add(p.uid, npages);
      } else this.ctx.users.add(p.uid, -npages);
    } else if (this.accountMode === 'mm') {
      // __account_locked_vm(mm, npages, inc, task, false): the limit applies even with CAP_IPC_LOCK.
      if (inc) {
        if (this.mm.lockedVm + npages > limit) return -12;
        this.mm.lockedVm += npages;
      } else this.mm.lockedVm -= Math.min(npages, this.mm.lockedVm);
    }
    this.npinned += inc ? npages : -npages;
    this.mm.pinnedVm += inc ? npages : -npages;
    this.ctx.log.emit({ layer: 'kernel', kind: 'iommufd-pin', pid: p.pid, pages: inc ? npages : -npages, mode: this.accountMode });
    return 0;
  }
}
