/**
 * struct iommufd_ctx and its objects (drivers/iommu/iommufd/main.c): one per open of /dev/iommu.
 * Objects live in an id table (ids from 1, the lowest free one first); each has a `users` count
 * whose one reference is the table's own, so DESTROY succeeds only when nothing else holds it.
 * The context itself lives while its file is open or a bound device holds it.
 */
import type { EventLog } from '../base/events.js';
import type { PhysMemory } from '../hw/memory.js';
import type { IommuDomain, IommuGroup } from '../kernel/iommu-group.js';
import type { KPciDev } from '../kernel/pci.js';
import type { KernelLog } from '../kernel/printk.js';
import type { Quirks } from '../kernel/quirks.js';
import { IoPagetable, type IoptPlatform } from './io-pagetable.js';
import type { AccountMode, UserStructs } from './pages.js';

/** What the iommufd core takes from the machine and the kernel command line. */
export interface IommufdPlatform {
  mem: PhysMemory;
  log: EventLog;
  klog: KernelLog;
  quirks: Quirks;
  users: UserStructs;
  iopt: IoptPlatform;
  /** iommufd.allow_unsafe_interrupts: bind without isolated MSI. */
  allowUnsafeInterrupts: boolean;
  /** Every live context (for the invariant checker and reports). */
  contexts: Set<IommufdCtx>;
  /** The interrupt controller isolates MSIs (false on PowerPC). */
  isolatedMsi: boolean;
}

export type ObjectType = 'ioas' | 'hwpt_paging' | 'device' | 'fault';

export abstract class IommufdObject {
  id = 0;
  /** The table's reference plus every holder's. */
  users = 1;
  abstract readonly type: ObjectType;
  /** Release what the object holds (iommufd_object_ops.destroy). */
  abstract destroy(): void;
}

export class Ioas extends IommufdObject {
  readonly type = 'ioas';
  readonly iopt: IoPagetable;
  /** HWPTs on this IOAS (ioas->hwpt_list), oldest first. */
  readonly hwpts: HwptPaging[] = [];

  constructor(platform: IoptPlatform) {
    super();
    this.iopt = new IoPagetable(platform);
  }

  destroy(): void {
    this.iopt.unmapAll();
  }
}

export class HwptPaging extends IommufdObject {
  readonly type = 'hwpt_paging';
  autoDomain = false;
  /** Listed on the IOAS and the domain added to its io_pagetable. */
  listed = false;
  domain: IommuDomain | null = null;

  constructor(readonly ioas: Ioas) {
    super();
  }

  destroy(): void {
    if (this.listed) {
      this.ioas.hwpts.splice(this.ioas.hwpts.indexOf(this), 1);
      this.ioas.iopt.removeDomain(this.domain!);
      this.listed = false;
    }
    if (this.domain) this.domain.ops.free?.(this.domain);
    this.ioas.users--;
  }
}

/** struct iommufd_group: the context's view of one IOMMU group. */
export class IommufdGroup {
  hwpt: HwptPaging | null = null;
  readonly devices: IommufdDevice[] = [];
  constructor(readonly group: IommuGroup) {}
}

export class IommufdDevice extends IommufdObject {
  readonly type = 'device';
  constructor(
    readonly ictx: IommufdCtx,
    readonly dev: KPciDev,
    readonly igroup: IommufdGroup,
  ) {
    super();
  }
  destroy(): void {
    const g = this.igroup;
    g.group.releaseDmaOwner();
    if (!g.devices.length) this.ictx.groups.delete(g.group.id);
  }
}

export class Fault extends IommufdObject {
  readonly type = 'fault';
  destroy(): void {}
}

const ID_LIMIT = 0x7fff_ffff;

export class IommufdCtx {
  /** id → object, or null for an id reserved by an object not finalized yet. */
  readonly objects = new Map<number, IommufdObject | null>();
  accountMode: AccountMode = 'user';
  vfioIoas: Ioas | null = null;
  readonly groups = new Map<number, IommufdGroup>();
  /** The file and every bound device or fault file hold the context. */
  refs = 1;
  released = false;

  constructor(readonly platform: IommufdPlatform) {
    platform.contexts.add(this);
  }

  /** _iommufd_object_alloc(): reserve the lowest free id. */
  alloc<T extends IommufdObject>(obj: T): T | number {
    let id = 1;
    while (this.objects.has(id)) id++;
    if (id > ID_LIMIT) return -16;
    obj.id = id;
    this.objects.set(id, null);
    return obj;
  }

  finalize(obj: IommufdObject): void {
    this.objects.set(obj.id, obj);
  }

  /** iommufd_object_abort_and_destroy(). */
  abort(obj: IommufdObject): void {
    obj.destroy();
    this.objects.delete(obj.id);
  }

  get<T extends IommufdObject>(id: number, type?: ObjectType): T | number {
    const o = this.objects.get(id);
    if (!o || (type && o.type !== type)) return -2;
    return o as T;
  }

  /** iommufd_object_remove(): -ENOENT, or -EBUSY while anything else holds the object. */
  remove(id: number): number {
    const o = this.objects.get(id);
    if (!o) return -2;
    if (o.users !== 1) return -16;
    o.users = 0;
    this.objects.delete(id);
    if (this.vfioIoas === o) this.vfioIoas = null;
    o.destroy();
    return 0;
  }

  /** iommufd_object_put_and_try_destroy(): drop a holder's reference, destroy if it was the last. */
  putAndTryDestroy(o: IommufdObject): void {
    o.users--;
    if (o.users === 1 && this.objects.get(o.id) === o) this.remove(o.id);
  }

  get isEmpty(): boolean {
    return this.objects.size === 0;
  }

  /** A reference from a bound device or a fault file (iommufd_ctx_get()). */
  hold(): void {
    this.refs++;
  }

  put(): void {
    if (--this.refs === 0) this.release();
  }

  /** iommufd_fops_release(): destroy leaf objects until none remain. */
  private release(): void {
    this.released = true;
    for (;;) {
      let destroyed = 0;
      let empty = true;
      for (const [id, o] of [...this.objects]) {
        if (!o) continue;
        empty = false;
        if (o.users !== 1) continue;
        o.users = 0;
        this.objects.delete(id);
        o.destroy();
        destroyed++;
      }
      if (empty || !destroyed) break;
    }
    this.objects.clear();
    this.platform.contexts.delete(this);
  }

  /** The live objects of a type. */
  objectsOf<T extends IommufdObject>(type: ObjectType): T[] {
    return [...this.objects.values()].filter((o): o is T => o?.type === type);
  }
}
