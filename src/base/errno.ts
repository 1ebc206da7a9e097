/** Linux errno values as seen by a ppc64 userspace program (the generic asm-generic numbering). */
export const errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  ENOTDIR: 20,
  EINVAL: 22,
  EMFILE: 24,
  ENOTTY: 25,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EPIPE: 32,
  ERANGE: 34,
  EDEADLOCK: 58,
  EOVERFLOW: 75,
  EMSGSIZE: 90,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  EPROTO: 71,
  EBADFD: 77,
} as const;

export type ErrnoName = keyof typeof errno;

const byNumber = new Map<number, ErrnoName>(Object.entries(errno).map(([k, v]) => [v, k as ErrnoName]));

/** The symbolic name of an errno value ("EINVAL"), or "E?<n>" for one the model never produces. */
export function errnoName(n: number): string {
  return byNumber.get(n) ?? `E?${n}`;
}

/** Kernel-style negative return: `return neg('EINVAL')` reads like `return -EINVAL`. */
export function neg(name: ErrnoName): number {
  return -errno[name];
}
