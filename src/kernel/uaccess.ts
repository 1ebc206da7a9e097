/**
 * copy_from_user / copy_to_user over an ioctl argument. An argument is either a plain integer
 * (or a pointer with nothing readable behind it) or the bytes of a user buffer; a copy beyond
 * the buffer faults with -EFAULT as it would on an unmapped page.
 */
import { decode, offsetofend, type StructName, type structs } from './include/uapi/linux/vfio.js';

export type IoctlArg = bigint | Uint8Array;

export function copyFromUser(arg: IoctlArg, len: number): Uint8Array | null {
  if (typeof arg === 'bigint') return null;
  if (len > arg.length) return null;
  return arg.slice(0, len);
}

export function copyToUser(arg: IoctlArg, bytes: Uint8Array): boolean {
  if (typeof arg === 'bigint') return false;
  if (bytes.length > arg.length) return false;
  arg.set(bytes, 0);
  return true;
}

/** The integer value of an argument (ioctls such as VFIO_SET_IOMMU take it by value). */
export function argValue(arg: IoctlArg): bigint {
  return typeof arg === 'bigint' ? arg : 0n;
}

type Fields<S extends StructName> = Record<keyof (typeof structs)[S]['fields'], bigint>;

/**
 * The opening of every VFIO struct ioctl: copy_from_user() of minsz = offsetofend(struct, last
 * required field) (-EFAULT), then `argsz < minsz` (-EINVAL). Returns the copied bytes, decoded.
 */
export function copyStructFromUser<S extends StructName>(
  arg: IoctlArg,
  s: S,
  last: keyof (typeof structs)[S]['fields'],
): { bytes: Uint8Array; v: Fields<S>; minsz: number } | number {
  const minsz = offsetofend(s, last);
  const bytes = copyFromUser(arg, minsz);
  if (!bytes) return -14;
  const v = decode(s, bytes);
  if ((v as Record<string, bigint>).argsz! < BigInt(minsz)) return -22;
  return { bytes, v, minsz };
}
