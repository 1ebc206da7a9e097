/**
 * struct iommufd_ucmd: one /dev/iommu command. The kernel copies `min(size, sizeof)` bytes of the
 * user's struct, insists that any bytes past its own struct are zero (-E2BIG), and answers by
 * copying back at most as many bytes as the user's size says.
 */
import type { Process } from '../kernel/process.js';
import type { IoctlArg } from '../kernel/uaccess.js';
import { getField, setField } from '../kernel/include/uapi/linux/vfio.js';
import { type IommufdFields, type IommufdStruct, iommufdStructs } from '../kernel/include/uapi/linux/iommufd.js';
import type { IommufdCtx } from './context.js';

export class Ucmd<S extends IommufdStruct> {
  private readonly kbuf: Uint8Array;

  constructor(
    readonly ictx: IommufdCtx,
    readonly proc: Process,
    readonly struct: S,
    private readonly ubuf: Uint8Array,
    readonly userSize: number,
  ) {
    const ksize = iommufdStructs[struct].size;
    this.kbuf = new Uint8Array(ksize);
    this.kbuf.set(ubuf.subarray(0, Math.min(ksize, userSize)));
  }

  get<K extends keyof IommufdFields<S>>(k: K): bigint {
    return getField(this.kbuf, (iommufdStructs[this.struct].fields as Record<string, { off: number; size: 1 | 2 | 4 | 8 }>)[k as string]!);
  }

  num<K extends keyof IommufdFields<S>>(k: K): number {
    return Number(this.get(k));
  }

  set<K extends keyof IommufdFields<S>>(k: K, v: bigint | number): void {
    setField(this.kbuf, (iommufdStructs[this.struct].fields as Record<string, { off: number; size: 1 | 2 | 4 | 8 }>)[k as string]!, v);
  }

  /** iommufd_ucmd_respond(): copy the struct back, at most the user's size. */
  respond(): number {
    const n = Math.min(this.userSize, this.kbuf.length);
    this.ubuf.set(this.kbuf.subarray(0, n));
    return 0;
  }

  /** Copy one field back to the user (IOMMU_OPTION answers only val64). */
  respondField<K extends keyof IommufdFields<S>>(k: K): number {
    const f = (iommufdStructs[this.struct].fields as Record<string, { off: number; size: 1 | 2 | 4 | 8 }>)[k as string]!;
    this.ubuf.set(this.kbuf.subarray(f.off, f.off + f.size), f.off);
    return 0;
  }
}

/**
 * The opening of iommufd_fops_ioctl(): read the size (-EFAULT), check it against the minimum
 * (-EINVAL), copy_struct_from_user() (-E2BIG for a non-zero tail, -EFAULT past the buffer).
 */
export function ucmdFromUser<S extends IommufdStruct>(ictx: IommufdCtx, proc: Process, struct: S, arg: IoctlArg): Ucmd<S> | number {
  if (typeof arg === 'bigint' || arg.length < 4) return -14;
  const size = new DataView(arg.buffer, arg.byteOffset, 4).getUint32(0, true);
  const s = iommufdStructs[struct];
  if (size < s.min) return -22;
  if (size > s.size) {
    if (size > arg.length) return -14;
    for (let i = s.size; i < size; i++) if (arg[i]) return -7;
  } else if (size > arg.length) return -14;
  return new Ucmd(ictx, proc, struct, arg, size);
}
