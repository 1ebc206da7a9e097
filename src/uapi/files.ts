/** File objects behind file descriptors, shared by dup() and fork(), with their release. */
import type { Fault, IommufdCtx } from '../iommufd/context.js';
import type { VfioCdevFile } from '../vfio/cdev.js';
import type { VfioContainer } from '../vfio/container.js';
import type { VfioDevice } from '../vfio/device.js';
import type { VfioGroup } from '../vfio/group.js';

export type FileKind =
  | { kind: 'container'; container: VfioContainer }
  | { kind: 'group'; group: VfioGroup }
  | { kind: 'device'; device: VfioDevice; groupFile: OpenFile; df?: VfioCdevFile }
  | { kind: 'iommufd'; ctx: IommufdCtx }
  | { kind: 'iommufd-fault'; ctx: IommufdCtx; fault: Fault }
  | { kind: 'vfio-cdev'; df: VfioCdevFile }
  | { kind: 'kmsg'; pos: number }
  | { kind: 'status'; pid: number };

export class OpenFile {
  refs = 1;
  constructor(
    readonly path: string,
    readonly f: FileKind,
  ) {}
}

/** A process's descriptor table: the lowest free number first. */
export class FdTable {
  readonly fds = new Map<number, OpenFile>();

  install(file: OpenFile, min = 3): number {
    let fd = min;
    while (this.fds.has(fd)) fd++;
    this.fds.set(fd, file);
    return fd;
  }

  get(fd: number): OpenFile | undefined {
    return this.fds.get(fd);
  }

  /** A copy for fork(): same file objects, one more reference each. */
  clone(): FdTable {
    const t = new FdTable();
    for (const [fd, f] of this.fds) {
      f.refs++;
      t.fds.set(fd, f);
    }
    return t;
  }
}
