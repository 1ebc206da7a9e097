/**
 * The system-call surface a VFIO program sees: open/close/dup/ioctl/read on /dev/vfio/vfio,
 * /dev/vfio/N and /dev/kmsg, /proc/<pid>/status, setrlimit/setuid, fork and exit. Every call
 * returns {ret, errno} as libc would: ret -1 with an errno, or the kernel's non-negative result.
 */
import { errno } from '../base/errno.js';
import type { EventLog } from '../base/events.js';
import type { KernelLog } from '../kernel/printk.js';
import type { Process } from '../kernel/process.js';
import type { IoctlArg } from '../kernel/uaccess.js';
import { copyFromUser } from '../kernel/uaccess.js';
import {
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_IOCTL_NAMES,
} from '../kernel/include/uapi/linux/vfio.js';
import type { IommufdCtx, IommufdPlatform } from '../iommufd/context.js';
import type { IommuGroup } from '../kernel/iommu-group.js';
import { faultRelease } from '../iommufd/hw-pagetable.js';
import { iommufdIoctl, iommufdOpen } from '../iommufd/main.js';
import {
  IOMMUFD_IOCTLS,
  isIommufdCmd,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
} from '../kernel/include/uapi/linux/iommufd.js';
import { groupDeviceBind, VfioCdevFile } from '../vfio/cdev.js';
import type { VfioContainer } from '../vfio/container.js';
import type { VfioDevice } from '../vfio/device.js';
import type { VfioGroup } from '../vfio/group.js';
import { FdTable, OpenFile } from './files.js';

export interface SysResult {
  ret: number;
  errno: number;
  /**
   * The call never returns: the task now sleeps forever (D state) on a lock that a dead or looping
   * task holds, or loops in the kernel itself (a soft lockup); this says which. ret is -1 and errno 0: no errno describes a call that never ends.
   */
  blocked?: string;
  /** A kernel oops killed the task inside the call (the signal it died of). */
  signal?: number;
}

export interface KernelServices {
  klog: KernelLog;
  log: EventLog;
  pageSize: number;
  newContainer(): VfioContainer;
  vfioGroup(id: number): VfioGroup | undefined;
  /** The kernel's IOMMUFD (null when it is built without): /dev/iommu and the device cdevs. */
  iommufd: IommufdPlatform | null;
  /**
   * Who provides /dev/vfio/vfio: VFIO's own container, IOMMUFD's type1 emulation, or IOMMUFD
   * serving the sPAPR container (tcelab's PPC64 design: newContainer() gives it its iommufd).
   */
  vfioContainer: 'legacy' | 'iommufd' | 'iommufd-spapr';
  /** EEH PE operations on bound device cdevs (tcelab's PPC64 IOMMUFD design), if offered. */
  cdevEehPeOp?: (g: IommuGroup, arg: IoctlArg) => number;
  /** The device behind /dev/vfio/devices/vfioN, with its group. */
  vfioCdev(n: number): { device: VfioDevice; group: VfioGroup } | undefined;
  /** vfio-pci's first open of a device enables it; the last close disables it. */
  deviceOpened(d: VfioDevice): void;
  deviceClosed(d: VfioDevice): void;
  /** Deferred kernel work (runtime PM and the like) that runs at the next kernel entry. */
  runDeferred(): void;
  /** The mm of an exiting process is torn down once nothing holds it. */
  mmTeardown(p: Process): void;
  setCurrent(p: Process): void;
}

/** lseek() whence values. */
const SEEK_SET = 0;
const SEEK_END = 2;
const SEEK_DATA = 3;

const ok = (ret: number): SysResult => ({ ret, errno: 0 });
const err = (e: number): SysResult => ({ ret: -1, errno: e });
/** A kernel return value: negative is an errno, anything else is passed through. */
const kret = (r: number): SysResult => (r < 0 ? err(-r) : ok(r));

export class Syscalls {
  readonly processes = new Map<number, Process>();
  private readonly fdTables = new Map<number, FdTable>();
  private nextPid = 100;
  private vfioByIommufdNoted = false;
  /** The count of ioctl events, kept without a listener (EventLog.counter). */
  private ioctlEvents: { n: number } | null = null;

  constructor(
    private readonly k: KernelServices,
    private readonly makeProcess: (pid: number, comm: string) => Process,
  ) {}

  spawn(comm: string): Process {
    const p = this.makeProcess(this.nextPid++, comm);
    this.processes.set(p.pid, p);
    this.fdTables.set(p.pid, new FdTable());
    return p;
  }

  /**
   * Kernel entry. Deferred work (runtime PM) runs on the next call that does something; reading
   * /dev/kmsg or /proc only observes and lets it wait, as a real program's reads right after a
   * call see the state before the work ran.
   */
  private enter(pid: number, runDeferred = true): Process | null {
    const p = this.processes.get(pid);
    if (!p || p.exited || p.stuck) return null;
    if (runDeferred) this.k.runDeferred();
    this.k.setCurrent(p);
    return p;
  }

  /** The answer to a call from a task that cannot make one: gone (ESRCH) or asleep forever. */
  private gone(pid: number): SysResult {
    const p = this.processes.get(pid);
    return p?.stuck ? { ret: -1, errno: 0, blocked: p.stuck } : err(errno.ESRCH);
  }

  /** The task never returns: asleep on a lock a dead or looping task holds, or looping itself. */
  private block(p: Process, why: string): SysResult {
    p.stuck = why;
    return { ret: -1, errno: 0, blocked: why };
  }

  private static who(p: Process): string {
    return `pid ${p.pid} (${p.comm})`;
  }

  private table(pid: number): FdTable {
    return this.fdTables.get(pid)!;
  }

  open(pid: number, path: string): SysResult {
    const p = this.enter(pid, !(path === '/dev/kmsg' || path.startsWith('/proc/')));
    if (!p) return this.gone(pid);
    let file: OpenFile;
    if (path === '/dev/vfio/vfio' && this.k.vfioContainer === 'iommufd' && this.k.iommufd) {
      // iommufd_fops_open() for the VFIO misc device: VFIO's rlimit accounting, and a note once.
      const ctx = iommufdOpen(this.k.iommufd);
      ctx.accountMode = 'mm';
      this.noteVfioByIommufd();
      file = new OpenFile(path, { kind: 'iommufd', ctx });
    } else if (path === '/dev/vfio/vfio') {
      if (this.k.vfioContainer === 'iommufd-spapr') this.noteVfioByIommufd();
      file = new OpenFile(path, { kind: 'container', container: this.k.newContainer() });
    } else if (path === '/dev/kmsg') file = new OpenFile(path, { kind: 'kmsg', pos: this.k.klog.firstSeq });
    else if (/^\/proc\/(self|\d+)\/status$/.test(path)) file = new OpenFile(path, { kind: 'status', pid });
    else if (path === '/dev/iommu' || path.startsWith('/dev/vfio/devices/')) {
      const r = this.openIommufd(pid, path);
      if (typeof r === 'number') return err(r);
      file = r;
    } else {
      const m = /^\/dev\/vfio\/(\d+)$/.exec(path);
      if (!m) return err(errno.ENOENT);
      const g = this.k.vfioGroup(Number(m[1]));
      if (!g) return err(errno.ENOENT);
      const wait = g.lockWait();
      if (wait) return this.block(p, wait);
      if (g.opened || g.cdevOpenCnt) return err(errno.EBUSY);
      g.opened = true;
      file = new OpenFile(path, { kind: 'group', group: g });
    }
    return ok(this.table(pid).install(file));
  }

  private noteVfioByIommufd(): void {
    if (!this.vfioByIommufdNoted) this.k.klog.printk('iommufd: IOMMUFD is providing /dev/vfio/vfio, not VFIO.');
    this.vfioByIommufdNoted = true;
  }

  /** /dev/iommu and /dev/vfio/devices/vfioN: root-only device nodes of an IOMMUFD kernel. */
  private openIommufd(pid: number, path: string): OpenFile | number {
    const platform = this.k.iommufd;
    if (!platform) return errno.ENOENT;
    if (this.processes.get(pid)!.uid !== 0) return errno.EACCES;
    if (path === '/dev/iommu') return new OpenFile(path, { kind: 'iommufd', ctx: iommufdOpen(platform) });
    const m = /^\/dev\/vfio\/devices\/vfio(\d+)$/.exec(path);
    const c = m ? this.k.vfioCdev(Number(m[1])) : undefined;
    if (!c) return errno.ENOENT;
    return new OpenFile(path, { kind: 'vfio-cdev', df: new VfioCdevFile(c.device, c.group, this.cdevServices(pid)) });
  }

  private cdevServices(pid: number) {
    return {
      iommufdFromFd: (fd: number) => {
        const f = this.table(pid).get(fd);
        if (!f) return -errno.EBADF;
        return f.f.kind === 'iommufd' ? f.f.ctx : -errno.EBADFD;
      },
      deviceOpened: (d: VfioDevice) => this.k.deviceOpened(d),
      deviceClosed: (d: VfioDevice) => this.k.deviceClosed(d),
      ...(this.k.cdevEehPeOp ? { eehPeOp: this.k.cdevEehPeOp } : {}),
    };
  }

  dup(pid: number, fd: number): SysResult {
    if (!this.enter(pid)) return this.gone(pid);
    const f = this.table(pid).get(fd);
    if (!f) return err(errno.EBADF);
    f.refs++;
    return ok(this.table(pid).install(f, 0));
  }

  close(pid: number, fd: number): SysResult {
    const kind = this.fdTables.get(pid)?.get(fd)?.f.kind;
    const p = this.enter(pid, kind !== 'kmsg' && kind !== 'status');
    if (!p) return this.gone(pid);
    const t = this.table(pid);
    const f = t.get(fd);
    if (!f) return err(errno.EBADF);
    t.fds.delete(fd);
    const wait = this.fput(p, f);
    return wait ? this.block(p, wait) : ok(0);
  }

  /**
   * The last reference to a file releases it (vfio_*_fops_release). A release that needs a lock
   * a dead task holds does not happen: the reason is returned and the caller sleeps forever.
   */
  private fput(p: Process, f: OpenFile): string | null {
    if (--f.refs > 0) return null;
    switch (f.f.kind) {
      case 'container':
        f.f.container.put();
        break;
      case 'group': {
        const g = f.f.group;
        const wait = g.container ? g.containerWriteWait(g.container, Syscalls.who(p)) : g.lockWait();
        if (wait) return wait;
        g.release();
        break;
      }
      case 'iommufd':
        f.f.ctx.put();
        break;
      case 'iommufd-fault':
        faultRelease(f.f.ctx, f.f.fault);
        break;
      case 'vfio-cdev':
        f.f.df.release();
        break;
      case 'device': {
        const d = f.f.device;
        const wait = d.group!.lockWait();
        if (wait) return wait;
        if (f.f.df) f.f.df.release();
        else {
          d.group!.containerUsers--;
          this.k.deviceClosed(d);
        }
        return this.fput(p, f.f.groupFile);
      }
      default:
        break;
    }
    return null;
  }

  ioctl(pid: number, fd: number, request: number, arg: IoctlArg): SysResult {
    const p = this.enter(pid);
    if (!p) return this.gone(pid);
    const f = this.table(pid).get(fd);
    if (!f) return err(errno.EBADF);
    const wait = f.f.kind === 'container' ? f.f.container.ioctlWait(request) : f.f.kind === 'group' ? f.f.group.lockWait() : null;
    let r = wait ? this.block(p, wait) : this.dispatch(p, f, request, arg);
    if (p.oops) r = this.die(p, f);
    else if (p.lockup) r = this.spin(p, f);
    const log = this.k.log;
    // The event (and the request's name) only for a listener; counted either way.
    if (!log.listening) {
      this.ioctlEvents ??= log.counter('vfio', 'ioctl');
      this.ioctlEvents.n++;
    } else log.emit({ layer: 'vfio', kind: 'ioctl', pid, file: f.path, request: ioctlName(f.f.kind, request), ret: r.ret, errno: r.errno });
    return r;
  }

  /**
   * The task oopsed inside an ioctl: it dies holding what the call held (a container ioctl reads
   * the container's group_lock), and exits. The exit's own release of a group in that container
   * waits for the lock for writing, forever: the task never finishes dying.
   */
  private die(p: Process, f: OpenFile): SysResult {
    if (f.f.kind === 'container') f.f.container.deadReader ??= `${Syscalls.who(p)}, dead in ${p.oops!.fn}`;
    this.exit(p.pid);
    return { ret: -1, errno: 0, signal: p.oops!.signal };
  }

  /**
   * The task loops inside an ioctl without end (a soft lockup): the call never returns and keeps
   * what it holds (a container ioctl reads the container's group_lock).
   */
  private spin(p: Process, f: OpenFile): SysResult {
    const why = `${Syscalls.who(p)}, looping in ${p.lockup} (soft lockup)`;
    if (f.f.kind === 'container') f.f.container.deadReader ??= why;
    return this.block(p, why);
  }

  private dispatch(p: Process, f: OpenFile, request: number, arg: IoctlArg): SysResult {
    switch (f.f.kind) {
      case 'container': {
        // The file is an iommufd when IOMMUFD provides it: IOMMUFD's own commands work on it too.
        const ictx = f.f.container.ictx;
        if (ictx && isIommufdCmd(request)) return this.iommufdIoctl(p, ictx, request, arg);
        return kret(f.f.container.ioctl(request, arg));
      }
      case 'device':
        // A kernel with device cdevs answers BIND_IOMMUFD on every device file.
        if (request === VFIO_DEVICE_BIND_IOMMUFD && this.k.iommufd) return kret(groupDeviceBind(arg));
        return kret(f.f.device.ioctl(request, arg));
      case 'group':
        return this.groupIoctl(p, f, f.f.group, request, arg);
      case 'iommufd':
        return this.iommufdIoctl(p, f.f.ctx, request, arg);
      case 'vfio-cdev':
        return kret(f.f.df.ioctl(request, arg));
      default:
        return err(errno.ENOTTY);
    }
  }

  private iommufdIoctl(p: Process, ctx: IommufdCtx, request: number, arg: IoctlArg): SysResult {
    return kret(
      iommufdIoctl(ctx, p, request, arg, (fault) =>
        this.table(p.pid).install(new OpenFile('anon_inode:[iommufd-pgfault]', { kind: 'iommufd-fault', ctx, fault }), 0),
      ),
    );
  }

  private groupIoctl(p: Process, gf: OpenFile, g: VfioGroup, request: number, arg: IoctlArg): SysResult {
    switch (request) {
      case VFIO_GROUP_GET_STATUS:
        return kret(g.getStatus(arg));
      case VFIO_GROUP_SET_CONTAINER: {
        const b = copyFromUser(arg, 4);
        if (!b) return err(errno.EFAULT);
        const cfd = new DataView(b.buffer, b.byteOffset).getInt32(0, true);
        if (cfd < 0) return err(errno.EINVAL);
        const cf = this.table(p.pid).get(cfd);
        if (!cf) return err(errno.EBADF);
        if (cf.f.kind === 'iommufd') return kret(g.setIommufd(cf.f.ctx));
        const c = cf.f.kind === 'container' ? cf.f.container : null;
        const wait = !g.container && !g.dead ? g.containerWriteWait(c, Syscalls.who(p)) : null;
        if (wait) return this.block(p, wait);
        return kret(g.setContainer(c));
      }
      case VFIO_GROUP_UNSET_CONTAINER: {
        const wait = g.container && g.containerUsers === 1 ? g.containerWriteWait(g.container, Syscalls.who(p)) : null;
        if (wait) return this.block(p, wait);
        return kret(g.unsetContainer());
      }
      case VFIO_GROUP_GET_DEVICE_FD: {
        if (typeof arg === 'bigint') return err(errno.EFAULT);
        const nul = arg.indexOf(0);
        const name = new TextDecoder().decode(nul >= 0 ? arg.subarray(0, nul) : arg);
        const d = g.lookupDevice(name);
        if (typeof d === 'number') return err(-d);
        if (g.iommufd) {
          const df = new VfioCdevFile(d, g, this.cdevServices(p.pid), true);
          const rc = df.openForGroup(g.iommufd);
          if (rc) return err(-rc);
          d.group = g;
          gf.refs++;
          return ok(this.table(p.pid).install(new OpenFile(`vfio-device:${name}`, { kind: 'device', device: d, groupFile: gf, df })));
        }
        d.group = g;
        g.containerUsers++;
        gf.refs++;
        this.k.deviceOpened(d);
        return ok(this.table(p.pid).install(new OpenFile(`vfio-device:${name}`, { kind: 'device', device: d, groupFile: gf })));
      }
      default:
        return err(errno.ENOTTY);
    }
  }

  /**
   * read(): /dev/kmsg returns one record per call ("pri,seq,ts,-;text"); EAGAIN when drained
   * (the file is read as O_NONBLOCK); EPIPE once when the records from the reader's position on
   * were pushed out of the ring, and the position moves to the oldest one left.
   */
  read(pid: number, fd: number): { ret: number; errno: number; text?: string } {
    if (!this.enter(pid, false)) return this.gone(pid);
    const f = this.table(pid).get(fd);
    if (!f) return err(errno.EBADF);
    if (f.f.kind === 'kmsg') {
      const klog = this.k.klog;
      if (f.f.pos >= klog.nextSeq) return err(errno.EAGAIN);
      if (f.f.pos < klog.firstSeq) {
        f.f.pos = klog.firstSeq;
        return err(errno.EPIPE);
      }
      const seq = f.f.pos++;
      const text = `6,${seq},0,-;${klog.record(seq)}\n`;
      return { ret: text.length, errno: 0, text };
    }
    if (f.f.kind === 'status') {
      const text = this.statusText(f.f.pid);
      return { ret: text.length, errno: 0, text };
    }
    return err(errno.EINVAL);
  }

  /**
   * lseek() of a /dev/kmsg reader (devkmsg_llseek): offset 0 only (ESPIPE otherwise), SEEK_SET
   * to the oldest record in the ring, SEEK_DATA to the first after the last clear (no clear is
   * modelled: record 0), SEEK_END past the newest; any other whence EINVAL. The model's other
   * files cannot seek (ESPIPE).
   */
  lseek(pid: number, fd: number, offset: bigint, whence: number): SysResult {
    if (!this.enter(pid, false)) return this.gone(pid);
    const f = this.table(pid).get(fd);
    if (!f) return err(errno.EBADF);
    if (f.f.kind !== 'kmsg' || offset !== 0n) return err(errno.ESPIPE);
    const klog = this.k.klog;
    if (whence === SEEK_SET) f.f.pos = klog.firstSeq;
    else if (whence === SEEK_DATA) f.f.pos = 0;
    else if (whence === SEEK_END) f.f.pos = klog.nextSeq;
    else return err(errno.EINVAL);
    return ok(0);
  }

  /** /proc/<pid>/status as far as a VFIO program reads it. */
  statusText(pid: number): string {
    const p = this.processes.get(pid);
    if (!p) return '';
    const kb = (p.mm.lockedVm * this.k.pageSize) / 1024;
    return `Name:\t${p.comm.slice(0, 15)}\nPid:\t${pid}\nUid:\t${p.uid}\t${p.uid}\t${p.uid}\t${p.uid}\nVmLck:\t${String(kb).padStart(8)} kB\n`;
  }

  /** VmLck in kB, as the status file shows it. */
  vmlckKb(pid: number): number {
    const p = this.processes.get(pid);
    return p ? (p.mm.lockedVm * this.k.pageSize) / 1024 : 0;
  }

  setrlimitMemlock(pid: number, bytes: bigint): SysResult {
    const p = this.enter(pid);
    if (!p) return this.gone(pid);
    if (bytes > p.rlimitMemlock && !p.capIpcLock && p.uid !== 0) return err(errno.EPERM);
    p.rlimitMemlock = bytes;
    return ok(0);
  }

  setuid(pid: number, uid: number): SysResult {
    const p = this.enter(pid);
    if (!p) return this.gone(pid);
    if (p.uid !== 0 && uid !== p.uid) return err(errno.EPERM);
    p.setuid(uid);
    return ok(0);
  }

  /** fork(): a new process with its own mm; inherited fds share their file objects. */
  fork(pid: number): SysResult {
    const parent = this.enter(pid);
    if (!parent) return this.gone(pid);
    const child = this.makeProcess(this.nextPid++, parent.comm);
    child.uid = parent.uid;
    child.capIpcLock = parent.capIpcLock;
    child.rlimitMemlock = parent.rlimitMemlock;
    // A private hugetlb mapping's pages are shared copy-on-write too (hugetlb_cow), a huge page each.
    for (const m of parent.mm.mappings) child.mm.mappings.push(m.kind === 'hugetlb' ? { ...m, cowShared: true } : { ...m });
    // Anonymous pages the parent has are shared copy-on-write, unless the parent pinned them.
    for (const [vpn, pfn] of parent.mm.pages) {
      if (parent.mm.pins.has(vpn)) continue;
      child.mm.pages.set(vpn, pfn);
      child.mm.cowShared.add(vpn);
      parent.mm.cowShared.add(vpn);
    }
    this.processes.set(child.pid, child);
    this.fdTables.set(child.pid, this.table(pid).clone());
    return ok(child.pid);
  }

  /**
   * exit(): closes every descriptor, then tears the mm down. The final fput()s of an exiting task
   * run as task work, last queued first: the highest descriptor is released first. A release
   * that waits on a lock a dead task holds stops it there: the task stays, stuck, with what it
   * still holds.
   */
  exit(pid: number): void {
    const p = this.enter(pid);
    if (!p) return;
    const t = this.table(pid);
    for (const fd of [...t.fds.keys()].sort((a, b) => b - a)) {
      this.close(pid, fd);
      if (p.stuck) return;
    }
    p.exited = true;
    this.k.mmTeardown(p);
  }
}

/** An ioctl's name for the event log: the same number means different calls on different files. */
function ioctlName(kind: string, request: number): string {
  if (kind === 'vfio-cdev' || kind === 'iommufd') {
    const cdev = {
      [VFIO_DEVICE_BIND_IOMMUFD]: 'VFIO_DEVICE_BIND_IOMMUFD',
      [VFIO_DEVICE_ATTACH_IOMMUFD_PT]: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT',
      [VFIO_DEVICE_DETACH_IOMMUFD_PT]: 'VFIO_DEVICE_DETACH_IOMMUFD_PT',
    }[request];
    const n = IOMMUFD_IOCTLS[request]?.name ?? (kind === 'vfio-cdev' ? cdev : undefined);
    if (n) return n;
  }
  return VFIO_IOCTL_NAMES[request] ?? `0x${request.toString(16)}`;
}
