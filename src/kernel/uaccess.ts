/**
 * copy_from_user / copy_to_user over an ioctl argument. An argument is either a plain integer
 * (or a pointer with nothing readable behind it) or the bytes of a user buffer; a copy beyond
 * the buffer faults with -EFAULT as it would on an unmapped page.
 */
import { decode, offsetofend, type StructName, type structs, u32Num } from './include/uapi/linux/vfio.js';

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
 * copyStructFromUser() for a caller that only reads the fields: decoded from the argument with
 * no copy of its bytes kept (the same checks, the same record).
 */
export function readStructFromUser<S extends StructName>(
  arg: IoctlArg,
  s: S,
  last: keyof (typeof structs)[S]['fields'],
): { v: Fields<S>; minsz: number } | number {
  const minsz = offsetofend(s, last);
  if (typeof arg === 'bigint' || minsz > arg.length) return -14;
  const v = decode(s, arg, minsz);
  if ((v as Record<string, bigint>).argsz! < BigInt(minsz)) return -22;
  return { v, minsz };
}

/**
 * readStructFromUser()'s checks for a caller that reads the fields itself, as numbers: the
 * argument's bytes when they hold `minsz` (else -EFAULT) and argsz, the u32 at 0, is at least
 * `minsz` (else -EINVAL). No copy, no record.
 */
export function structBytesFromUser(arg: IoctlArg, minsz: number): Uint8Array | number {
  if (typeof arg === 'bigint' || minsz > arg.length) return -14;
  if (u32Num(arg, 0) < minsz) return -22;
  return arg;
}

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

/**
 * User memory the kernel reads and writes by address (copy_from_user/copy_to_user through a
 * pointer inside a struct: an array of IOVA ranges, a data buffer). The caller of a syscall
 * places its buffers here; an address outside every placed buffer faults with -EFAULT.
 */
export class UserMemory {
  private readonly regions: { start: bigint; bytes: Uint8Array }[] = [];

  /** Place (or replace) a buffer at `start`. */
  place(start: bigint, bytes: Uint8Array): void {
    const i = this.regions.findIndex((r) => r.start === start);
    if (i >= 0) this.regions.splice(i, 1);
    this.regions.push({ start, bytes });
  }

  private find(addr: bigint, len: number): { r: Uint8Array; off: number } | null {
    if (addr === 0n) return null;
    for (const r of this.regions) {
      const off = addr - r.start;
      if (off >= 0n && off + BigInt(len) <= BigInt(r.bytes.length)) return { r: r.bytes, off: Number(off) };
    }
    return null;
  }

  read(addr: bigint, len: number): Uint8Array | null {
    const f = this.find(addr, len);
    return f ? f.r.slice(f.off, f.off + len) : null;
  }

  write(addr: bigint, bytes: Uint8Array): boolean {
    const f = this.find(addr, bytes.length);
    if (!f) return false;
    f.r.set(bytes, f.off);
    return true;
  }
}
