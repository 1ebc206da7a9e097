/**
 * copy_from_user / copy_to_user over an ioctl argument. An argument is either a plain integer
 * (or a pointer with nothing readable behind it) or the bytes of a user buffer; a copy beyond
 * the buffer faults with -EFAULT as it would on an unmapped page.
 */
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
