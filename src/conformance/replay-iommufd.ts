/**
 * Replays a recording of the IOMMUFD oracle program (iommufd_oracle.c, and the RFC kit's probe
 * program built on it) against a modelled machine through /dev/iommu, the device cdevs and the
 * VFIO container. The program's layout is rebuilt in a modelled process: its 16 MiB buffer, a
 * read-only MiB and an unmapped hole. Its descriptors are chosen as the program chooses them:
 * the oldest open iommufd and device cdev unless a case names another one.
 */
import { errnoName } from '../base/errno.js';
import { Machine, type MachineOptions } from '../machine/machine.js';
import { type Process, touchUserPages } from '../kernel/process.js';
import { deviceState, netDeviceDma, sysfsWrite } from '../machine/sysfs.js';
import type { IoctlArg } from '../kernel/uaccess.js';
import * as I from '../kernel/include/uapi/linux/iommufd.js';
import * as V from '../kernel/include/uapi/linux/vfio.js';
import type { SysResult } from '../uapi/syscalls.js';
import type { Answer } from './compare.js';
import { isEnvironment, type OracleRecord } from './records.js';
import { EXTENSIONS as VFIO_EXTENSIONS } from './replay.js';

const MiB = 1n << 20n;
const BUF = 0x7fff_8000_0000n;
const READONLY = 0x7ffb_0000_0000n;
const HOLE = 0x7ffc_0000_0000n;
/** The probe program's 2 GiB PROT_NONE reservation: nothing there can be pinned. */
const PROTNONE = 0x7ff0_0000_0000n;
/** Scratch user memory for arrays behind struct pointers. */
const SCRATCH = 0x7ffa_0000_0000n;

/** The iommufd program also asks about an unknown extension. */
const EXTENSIONS: [string, number][] = [...VFIO_EXTENSIONS, ['99', 99]];

const OPS: Record<string, number> = {
  IOMMU_DESTROY: I.IOMMU_DESTROY,
  IOMMU_IOAS_ALLOC: I.IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_ALLOW_IOVAS: I.IOMMU_IOAS_ALLOW_IOVAS,
  IOMMU_IOAS_COPY: I.IOMMU_IOAS_COPY,
  IOMMU_IOAS_IOVA_RANGES: I.IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP: I.IOMMU_IOAS_MAP,
  IOMMU_IOAS_UNMAP: I.IOMMU_IOAS_UNMAP,
  IOMMU_OPTION: I.IOMMU_OPTION,
  IOMMU_VFIO_IOAS: I.IOMMU_VFIO_IOAS,
  IOMMU_HWPT_ALLOC: I.IOMMU_HWPT_ALLOC,
  IOMMU_GET_HW_INFO: I.IOMMU_GET_HW_INFO,
  IOMMU_HWPT_SET_DIRTY_TRACKING: I.IOMMU_HWPT_SET_DIRTY_TRACKING,
  IOMMU_HWPT_GET_DIRTY_BITMAP: I.IOMMU_HWPT_GET_DIRTY_BITMAP,
  IOMMU_HWPT_INVALIDATE: I.IOMMU_HWPT_INVALIDATE,
  IOMMU_FAULT_QUEUE_ALLOC: I.IOMMU_FAULT_QUEUE_ALLOC,
};

/** The device-free scenarios, the only ones a machine tcelab does not model can replay. */
export const DEVICE_FREE_SCENARIOS = new Set(['init', 'ioas_basic', 'abi_rules', 'end']);

export class IommufdReplayError extends Error {}

interface OpenFd {
  fd: number;
  label: string;
  kind: 'iommufd' | 'cdevA' | 'cdevB' | 'group' | 'container' | 'gdev' | 'fault';
}

/** The program's answers that later notes print. */
type Vars = Record<string, number>;

export class IommufdReplay {
  readonly machine: Machine;
  private readonly parent: Process;
  private child: Process | null = null;
  private open: OpenFd[] = [];
  private klogPos = 0;
  private vars: Vars = {};
  /** The probe's user page before any map, and MemFree when its leak test began. */
  private phys0: number | undefined;
  private memfree0 = 0;
  private readonly devA: { bdf: string; group: number; cdev: number };
  private readonly devB: { bdf: string; group: number; cdev: number };

  /** `boot`: the records whose devices the machine binds; empty for a device-free replay. */
  constructor(
    boot: OracleRecord[],
    opts: MachineOptions,
    private readonly deviceFree = false,
  ) {
    this.machine = new Machine(opts);
    const binds = boot.filter((r) => r.op === 'bind_vfio_pci');
    const env = boot.find(isEnvironment)?.out as { devA?: { bdf: string }; devB?: { bdf: string } } | undefined;
    for (const r of binds) this.machine.bindVfioPci(r.case.split(' ')[0]!);
    this.klogPos = this.machine.klog.nextSeq;
    const dev = (bdf: string | undefined) => {
      const d = bdf ? this.machine.device(bdf) : undefined;
      const b = d ? this.machine.bindVfioPci(d.name) : null;
      return { bdf: bdf ?? '', group: d?.group ?? -1, cdev: b?.cdev ?? -1 };
    };
    this.devA = dev(env?.devA?.bdf);
    this.devB = dev(env?.devB?.bdf);
    this.klogPos = this.machine.klog.nextSeq;
    this.parent = this.machine.sys.spawn('iommufd_oracle');
    const maps = this.parent.mm.mappings;
    maps.push({ start: BUF, end: BUF + 16n * MiB, kind: 'anon' });
    maps.push({ start: READONLY, end: READONLY + MiB, kind: 'readonly' });
    // main() fills both buffers (memset) before it forks the scenarios.
    const pages = (n: bigint) => Number(n / BigInt(this.machine.mem.pageSize));
    touchUserPages(this.parent.mm, this.machine.mem, BUF, pages(16n * MiB));
    touchUserPages(this.parent.mm, this.machine.mem, READONLY, pages(MiB));
  }

  run(r: OracleRecord): Answer {
    const proc = r.scn === 'init' || r.scn === 'end' || r.op === 'process_exit' ? this.parent : this.scenarioProcess();
    const res = this.exec(r, proc);
    const lines = this.machine.klog.since(this.klogPos);
    this.klogPos = this.machine.klog.nextSeq;
    const kb = (pages: number) => (pages * this.machine.mem.pageSize) / 1024;
    const p = r.op === 'process_exit' || r.scn === 'init' || r.scn === 'end' ? this.parent : proc;
    return { ...res, vmlck_kb: kb(p.mm.lockedVm), vmpin_kb: kb(p.mm.pinnedVm), dmesg: lines };
  }

  private scenarioProcess(): Process {
    if (!this.child) {
      const pid = this.machine.sys.fork(this.parent.pid).ret;
      this.child = this.machine.sys.processes.get(pid)!;
      this.open = [];
      this.vars = {};
    }
    return this.child;
  }

  private ioctl(p: Process, fd: number, req: number, arg: IoctlArg): SysResult {
    return this.machine.sys.ioctl(p.pid, fd, req, arg);
  }

  private addr(v: unknown): bigint {
    const s = String(v);
    const m = /^([a-z]+)\+0x([0-9a-f]+)$/.exec(s);
    if (!m) return BigInt(s);
    const base = { buf: BUF, unmapped: HOLE, readonly: READONLY, protnone: PROTNONE }[m[1]!];
    if (base === undefined) throw new IommufdReplayError(`unknown buffer "${m[1]}" in address ${s}`);
    return base + BigInt(`0x${m[2]}`);
  }

  /** The descriptor a call uses, as the program picks it. */
  private pick(kind: OpenFd['kind'], newest = false): number {
    const c = this.open.filter((o) => o.kind === kind);
    const o = newest ? c[c.length - 1] : c[0];
    return o ? o.fd : -1;
  }

  private iommufd(): number {
    return this.pick('iommufd');
  }

  /** The device file an ioctl of this case goes to. */
  private deviceFd(c: string): number {
    if (/group device fd|on group-obtained/.test(c)) return this.pick('gdev');
    if (/\bB\b/.test(c) && this.pick('cdevB') >= 0) return this.pick('cdevB');
    if (/second fd of the same device/.test(c)) return this.pick('cdevA', true);
    const fd = this.pick('cdevA');
    return fd >= 0 ? fd : this.pick('gdev');
  }

  private openKind(path: string, c: string): OpenFd['kind'] {
    if (path === '/dev/iommu') return 'iommufd';
    if (path === '/dev/vfio/vfio') return 'container';
    if (path.startsWith('/dev/vfio/devices/')) return path.endsWith(`vfio${this.devB.cdev}`) && !/\bA\b/.test(c) ? 'cdevB' : 'cdevA';
    return 'group';
  }

  /** The descriptor a close record names. */
  private closeTarget(c: string): OpenFd | undefined {
    const first = (k: OpenFd['kind']) => this.open.find((o) => o.kind === k);
    if (/fault/.test(c)) return first('fault');
    if (/group device fd/.test(c)) return first('gdev');
    if (/group/.test(c)) return this.open.filter((o) => o.kind === 'group').pop();
    if (/container/.test(c)) return first('container');
    if (/iommufd/.test(c)) {
      const named = /^(second|third) iommufd/.exec(c);
      return named ? this.open.find((o) => o.label === `${named[1]} iommufd`) : first('iommufd');
    }
    if (/\bB\b/.test(c)) return first('cdevB');
    if (/second fd/.test(c)) return this.open.filter((o) => o.kind === 'cdevA').pop();
    return first('cdevA') ?? first('gdev');
  }

  private exec(r: OracleRecord, p: Process): Omit<Answer, 'vmlck_kb' | 'dmesg'> {
    const a = r.args;
    const sys = this.machine.sys;
    switch (r.op) {
      case 'bind_vfio_pci': {
        const b = this.machine.bindVfioPci(r.case.split(' ')[0]!);
        const out: Record<string, unknown> = { driver: 'vfio-pci', iommu_group: String(b.group) };
        if (b.cdev !== null) out.cdev = `vfio${b.cdev}`;
        if ('probe_error' in r.out) out.probe_error = null;
        return { ret: b.ret < 0 ? -1 : 0, errno: b.ret < 0 ? errnoName(-b.ret) : null, out };
      }
      case 'note':
        return { ret: 0, errno: null, out: this.note(r, p) };
      case 'open': {
        const path = String(a.path);
        const res = sys.open(p.pid, path);
        if (res.ret >= 0) this.open.push({ fd: res.ret, label: r.case, kind: this.openKind(path, r.case) });
        return { ...ans(res.ret < 0 ? res : { ret: 0, errno: 0 }), out: {} };
      }
      case 'close': {
        const o = this.closeTarget(r.case);
        if (!o) throw new IommufdReplayError(`no open descriptor for "${r.case}"`);
        this.open.splice(this.open.indexOf(o), 1);
        return { ...ans(sys.close(p.pid, o.fd)), out: {} };
      }
      case 'process_exit':
        if (this.child) sys.exit(this.child.pid);
        this.child = null;
        return { ret: 0, errno: null, out: { exited: 1, exit_status: 0, signaled: 0, signal: 0 } };
      case 'drop_privileges': {
        const limit = BigInt(Number(r.out.memlock_limit ?? 0));
        const set = limit !== p.rlimitMemlock;
        const r1 = set ? sys.setrlimitMemlock(p.pid, limit) : { ret: 0, errno: 0 };
        const r2 = sys.setuid(p.pid, 65534);
        return {
          ret: 0,
          errno: null,
          out: { memlock_limit: Number(p.rlimitMemlock), setrlimit: r1.ret, setrlimit_errno: r1.ret ? r1.errno : 0, setresuid: r2.ret, uid: p.uid },
        };
      }
      case 'mlock': {
        const rc = this.machine.mlock(p, 64n * 1024n);
        return { ret: rc < 0 ? -1 : 0, errno: rc < 0 ? errnoName(-rc) : null, out: {} };
      }
      case 'VFIO_DEVICE_BIND_IOMMUFD':
        return this.bind(r, p);
      case 'kcore_scan': {
        const page = BigInt(this.physOf(p, BUF + 0xf0_0000n) ?? 0) & ~0xfffn;
        const count = (perm: bigint) => this.machine.mem.countU64BE(page | perm);
        return { ret: 0, errno: null, out: { tce_R_only: count(1n), tce_W_only: count(2n), tce_RW: count(3n) } };
      }
      case 'sysfs_write': {
        const e = sysfsWrite(this.machine, String(a.path), String(a.value));
        return { ret: e ? -1 : 0, errno: e ? errnoName(e) : null, out: {} };
      }
      case 'device_state':
        return { ret: 0, errno: null, out: deviceState(this.machine, this.bdfOfCase(r.case)) };
      case 'shell':
        // `[ -n "$n" ] && ip link set $n up` / `udhcpc -i $n`: both need the interface and working DMA.
        return { ret: netDeviceDma(this.machine, this.bdfOfCase(r.case)) ? 0 : 1, errno: null, out: {} };
      case 'VFIO_DEVICE_ATTACH_IOMMUFD_PT': {
        const buf = struct('vfio_device_attach_iommufd_pt', { argsz: Number(a.argsz), flags: Number(a.flags), pt_id: Number(a.pt_id) });
        const res = this.ioctl(p, this.deviceFd(r.case), I.VFIO_DEVICE_ATTACH_IOMMUFD_PT, buf);
        const pt = field(buf, 'vfio_device_attach_iommufd_pt', 'pt_id');
        if (res.ret >= 0) this.vars[`pt:${r.case}`] = pt;
        return { ...ans(res), out: { pt_id: pt } };
      }
      case 'VFIO_DEVICE_DETACH_IOMMUFD_PT': {
        const buf = struct('vfio_device_detach_iommufd_pt', { argsz: Number(a.argsz), flags: Number(a.flags) });
        return { ...ans(this.ioctl(p, this.deviceFd(r.case), I.VFIO_DEVICE_DETACH_IOMMUFD_PT, buf)), out: {} };
      }
      case 'VFIO_DEVICE_GET_INFO': {
        if ('arg' in a)
          return { ...ans(this.ioctl(p, r.case.includes('/dev/iommu') ? this.iommufd() : this.deviceFd(r.case), V.VFIO_DEVICE_GET_INFO, 0n)), out: {} };
        const buf = V.encode('vfio_device_info', { argsz: 24 });
        const res = this.ioctl(p, this.deviceFd(r.case), V.VFIO_DEVICE_GET_INFO, buf);
        const d = V.decode('vfio_device_info', buf);
        const out =
          res.ret === 0
            ? { flags: `0x${d.flags.toString(16)}`, num_regions: Number(d.num_regions), num_irqs: Number(d.num_irqs), cap_offset: Number(d.cap_offset) }
            : {};
        return { ...ans(res), out };
      }
      case 'VFIO_DEVICE_RESET':
        return { ...ans(this.ioctl(p, this.deviceFd(r.case), V.VFIO_DEVICE_RESET, 0n)), out: {} };
      case 'VFIO_GROUP_GET_STATUS': {
        if ('arg' in a) return { ...ans(this.ioctl(p, this.iommufd(), V.VFIO_GROUP_GET_STATUS, 0n)), out: {} };
        const buf = V.encode('vfio_group_status', { argsz: 8 });
        const res = this.ioctl(p, this.pick('group', true), V.VFIO_GROUP_GET_STATUS, buf);
        const f = Number(V.decode('vfio_group_status', buf).flags);
        return { ...ans(res), out: res.ret === 0 ? { flags: f, viable: f & 1 ? 1 : 0, container_set: f & 2 ? 1 : 0 } : {} };
      }
      case 'VFIO_GROUP_SET_CONTAINER': {
        const b = new Uint8Array(4);
        new DataView(b.buffer).setInt32(0, this.pick('container'), true);
        return { ...ans(this.ioctl(p, this.pick('group', true), V.VFIO_GROUP_SET_CONTAINER, b)), out: {} };
      }
      case 'VFIO_GROUP_UNSET_CONTAINER':
        return { ...ans(this.ioctl(p, this.pick('group', true), V.VFIO_GROUP_UNSET_CONTAINER, 0n)), out: {} };
      case 'VFIO_GROUP_GET_DEVICE_FD': {
        const name = new TextEncoder().encode(`${String(a.name)}\0`);
        const res = this.ioctl(p, this.pick('group', true), V.VFIO_GROUP_GET_DEVICE_FD, name);
        if (res.ret >= 0) this.open.push({ fd: res.ret, label: r.case, kind: 'gdev' });
        return { ...ans(res.ret < 0 ? res : { ret: 0, errno: 0 }), out: {} };
      }
      case 'VFIO_GET_API_VERSION':
      case 'VFIO_SET_IOMMU':
      case 'VFIO_IOMMU_ENABLE': {
        const req = { VFIO_GET_API_VERSION: V.VFIO_GET_API_VERSION, VFIO_SET_IOMMU: V.VFIO_SET_IOMMU, VFIO_IOMMU_ENABLE: V.VFIO_IOMMU_ENABLE }[r.op]!;
        return { ...ans(this.ioctl(p, this.containerFd(r.case), req, BigInt(Number(a.arg ?? 0)))), out: {} };
      }
      case 'VFIO_CHECK_EXTENSION': {
        const out: Record<string, unknown> = {};
        const fd = this.containerFd(r.case);
        for (const [name, id] of EXTENSIONS) {
          const res = this.ioctl(p, fd, V.VFIO_CHECK_EXTENSION, BigInt(id));
          out[name] = res.ret < 0 ? errnoName(res.errno) : res.ret;
        }
        return { ret: 0, errno: null, out };
      }
      case 'VFIO_IOMMU_GET_INFO':
        return this.type1Info(r, p);
      case 'VFIO_IOMMU_SPAPR_TCE_GET_INFO':
        return { ...ans(this.ioctl(p, this.containerFd(r.case), V.VFIO_IOMMU_SPAPR_TCE_GET_INFO, 0n)), out: {} };
      case 'VFIO_IOMMU_SPAPR_TCE_CREATE': {
        const buf = V.encode('vfio_iommu_spapr_tce_create', { argsz: 40, page_shift: 12, window_size: 1n << 30n, levels: 1 });
        return { ...ans(this.ioctl(p, this.containerFd(r.case), V.VFIO_IOMMU_SPAPR_TCE_CREATE, buf)), out: {} };
      }
      case 'VFIO_IOMMU_SPAPR_REGISTER_MEMORY': {
        const buf = V.encode('vfio_iommu_spapr_register_memory', { argsz: 24, vaddr: BUF, size: MiB });
        return { ...ans(this.ioctl(p, this.containerFd(r.case), V.VFIO_IOMMU_SPAPR_REGISTER_MEMORY, buf)), out: {} };
      }
      case 'VFIO_IOMMU_DIRTY_PAGES':
        return { ...ans(this.ioctl(p, this.containerFd(r.case), (0x3b << 8) | (100 + 17), new Uint8Array(24))), out: {} };
      case 'VFIO_IOMMU_MAP_DMA': {
        const buf = V.encode('vfio_iommu_type1_dma_map', {
          argsz: 32,
          flags: Number(a.flags),
          vaddr: this.addr(a.vaddr),
          iova: big(a.iova),
          size: big(a.size),
        });
        return { ...ans(this.ioctl(p, this.containerFd(r.case), V.VFIO_IOMMU_MAP_DMA, buf)), out: {} };
      }
      case 'VFIO_IOMMU_UNMAP_DMA': {
        const buf = V.encode('vfio_iommu_type1_dma_unmap', { argsz: 24, flags: Number(a.flags), iova: big(a.iova), size: big(a.size) });
        const res = this.ioctl(p, this.containerFd(r.case), V.VFIO_IOMMU_UNMAP_DMA, buf);
        return { ...ans(res), out: { size_after: hex(V.decode('vfio_iommu_type1_dma_unmap', buf).size) } };
      }
      default:
        if (r.op in OPS && 'arg' in a) return { ...ans(this.ioctl(p, this.iommufd(), OPS[r.op]!, BigInt(Number(a.arg)))), out: {} };
        if (r.op in OPS) return 'sizeof' in a ? this.raw(r, p) : this.iommufdCmd(r, p);
        return this.rawNumber(r, p);
    }
  }

  /**
   * The probe's leak test: 32 HWPT_ALLOC + DESTROY on the bound device and its IOAS, the kernel
   * lines they print flushed, and the MemFree drop in MiB rounded to 16 as the program prints it.
   */
  private leakLoop(p: Process): Record<string, unknown> {
    this.memfree0 = this.machine.mem.freeBytes;
    const fd = this.iommufd();
    let ok = 0;
    for (let i = 0; i < 32; i++) {
      const buf = struct('iommu_hwpt_alloc', { size: 48, dev_id: this.kept('dev', 'bind'), pt_id: this.kept('ioas', 'IOAS') });
      if (this.ioctl(p, fd, I.IOMMU_HWPT_ALLOC, buf).ret !== 0) continue;
      const id = field(buf, 'iommu_hwpt_alloc', 'out_hwpt_id');
      if (this.ioctl(p, fd, I.IOMMU_DESTROY, struct('iommu_destroy', { size: 8, id })).ret === 0) ok++;
    }
    this.klogPos = this.machine.klog.nextSeq;
    return { alloc_destroy_ok: ok, memfree_drop_mib_rounded_to_16: this.memfreeDrop(), expected_if_leaked_mib: ok * 4 };
  }

  private memfreeDrop(): number {
    const kb = Math.trunc((this.memfree0 - this.machine.mem.freeBytes) / 1024);
    return Math.trunc((Math.trunc(kb / 1024) + 8) / 16) * 16;
  }

  /** "A: …" / "B: …" cases of the probe program name the device. */
  private bdfOfCase(c: string): string {
    return c.startsWith('B:') ? this.devB.bdf : this.devA.bdf;
  }

  /** The physical address behind a user address of a process, if the page is present. */
  private physOf(p: Process, va: bigint): number | undefined {
    const ps = BigInt(this.machine.mem.pageSize);
    const pfn = p.mm.pages.get(Number(va / ps));
    return pfn === undefined ? undefined : pfn * this.machine.mem.pageSize + Number(va % ps);
  }

  /** The container (or /dev/iommu) a VFIO container ioctl of this case goes to. */
  private containerFd(c: string): number {
    return /\/dev\/iommu/.test(c) || this.pick('container') < 0 ? this.iommufd() : this.pick('container');
  }

  private bind(r: OracleRecord, p: Process): Omit<Answer, 'vmlck_kb' | 'dmesg'> {
    const a = r.args;
    const c = r.case;
    let ifd: number;
    if (a.iommufd === '-1') ifd = -1;
    else if (/another cdev fd/.test(c)) ifd = this.pick('cdevA', true);
    else if (/(second|third|another) iommufd/.test(c)) ifd = this.pick('iommufd', true);
    else ifd = this.iommufd();
    const buf = struct('vfio_device_bind_iommufd', { argsz: Number(a.argsz), flags: Number(a.flags), iommufd: ifd, out_devid: 0xdeadbeef });
    const res = this.ioctl(p, this.deviceFd(c), I.VFIO_DEVICE_BIND_IOMMUFD, buf);
    const id = field(buf, 'vfio_device_bind_iommufd', 'out_devid');
    if (res.ret >= 0) this.vars[`dev:${c}`] = id;
    return { ...ans(res), out: res.ret >= 0 ? { out_devid: id } : {} };
  }

  private type1Info(r: OracleRecord, p: Process): Omit<Answer, 'vmlck_kb' | 'dmesg'> {
    const buf = new Uint8Array(512);
    new DataView(buf.buffer).setUint32(0, 512, true);
    const res = this.ioctl(p, this.containerFd(r.case), V.VFIO_IOMMU_GET_INFO, buf);
    if (res.ret !== 0) return { ...ans(res), out: {} };
    const dv = new DataView(buf.buffer);
    const caps: Record<string, unknown>[] = [];
    let off = dv.getUint32(16, true);
    while (off && off + 8 <= 512 && caps.length < 8) {
      const id = dv.getUint16(off, true);
      const cap: Record<string, unknown> = { id, version: dv.getUint16(off + 2, true) };
      if (id === 1) {
        const n = dv.getUint32(off + 8, true);
        const rs: string[][] = [];
        for (let i = 0; i < n && i < 8; i++) rs.push([hex(dv.getBigUint64(off + 16 + 16 * i, true)), hex(dv.getBigUint64(off + 24 + 16 * i, true))]);
        cap.iova_ranges = rs;
      } else if (id === 3) cap.avail = dv.getUint32(off + 8, true);
      caps.push(cap);
      off = dv.getUint32(off + 4, true);
    }
    const out = {
      argsz: dv.getUint32(0, true),
      flags: `0x${dv.getUint32(4, true).toString(16)}`,
      iova_pgsizes: hex(dv.getBigUint64(8, true)),
      cap_offset: dv.getUint32(16, true),
      caps,
    };
    return { ...ans(res), out };
  }

  /** A /dev/iommu command the program builds from named fields. */
  private iommufdCmd(r: OracleRecord, p: Process): Omit<Answer, 'vmlck_kb' | 'dmesg'> {
    const a = r.args;
    const fd = this.iommufd();
    const call = (req: number, buf: Uint8Array) => this.ioctl(p, fd, req, buf);
    switch (r.op) {
      case 'IOMMU_IOAS_ALLOC': {
        const buf = struct('iommu_ioas_alloc', { size: 12, out_ioas_id: 0xdeadbeef });
        const res = call(I.IOMMU_IOAS_ALLOC, buf);
        const id = field(buf, 'iommu_ioas_alloc', 'out_ioas_id');
        if (res.ret === 0) {
          this.vars[`ioas:${r.case}`] = id;
          this.vars.firstIoas ??= id;
        }
        return { ...ans(res), out: res.ret === 0 ? { out_ioas_id: id } : {} };
      }
      case 'IOMMU_DESTROY':
        return { ...ans(call(I.IOMMU_DESTROY, struct('iommu_destroy', { size: 8, id: Number(a.id) }))), out: {} };
      case 'IOMMU_IOAS_IOVA_RANGES': {
        const num = Number(a.num_iovas);
        const ranges = new Uint8Array(16 * 16).fill(0xa5);
        p.mm.user.place(SCRATCH, ranges);
        const withPtr = !/allowed_iovas NULL/.test(r.case);
        const buf = struct('iommu_ioas_iova_ranges', {
          size: 32,
          ioas_id: Number(a.ioas_id ?? this.vars.firstIoas ?? 0),
          num_iovas: num,
          allowed_iovas: withPtr ? SCRATCH : 0n,
          out_iova_alignment: 0xdead,
        });
        const res = call(I.IOMMU_IOAS_IOVA_RANGES, buf);
        const got = field(buf, 'iommu_ioas_iova_ranges', 'num_iovas');
        if (!withPtr) return { ...ans(res), out: { num_iovas: got } };
        const n = Math.min(got, num, 16);
        const dv = new DataView(ranges.buffer);
        const written: string[][] = [];
        for (let i = 0; i < n; i++) written.push([hex(dv.getBigUint64(16 * i, true)), hex(dv.getBigUint64(16 * i + 8, true))]);
        const out: Record<string, unknown> = {
          num_iovas: got,
          out_iova_alignment: hex(fieldBig(buf, 'iommu_ioas_iova_ranges', 'out_iova_alignment')),
          ranges_written: written,
        };
        if (num < 16 && dv.getBigUint64(16 * num, true) !== 0xa5a5a5a5a5a5a5a5n) out.wrote_past_num = true;
        return { ...ans(res), out };
      }
      case 'IOMMU_IOAS_ALLOW_IOVAS': {
        const rs = (a.ranges as string[][]) ?? [];
        const arr = new Uint8Array(16 * Math.max(rs.length, 1));
        const dv = new DataView(arr.buffer);
        rs.forEach((x, i) => {
          dv.setBigUint64(16 * i, big(x[0]), true);
          dv.setBigUint64(16 * i + 8, big(x[1]), true);
        });
        p.mm.user.place(SCRATCH, arr);
        const buf = struct('iommu_ioas_allow_iovas', { size: 24, ioas_id: Number(a.ioas_id), num_iovas: rs.length, allowed_iovas: rs.length ? SCRATCH : 0n });
        return { ...ans(call(I.IOMMU_IOAS_ALLOW_IOVAS, buf)), out: {} };
      }
      case 'IOMMU_IOAS_MAP': {
        const buf = struct('iommu_ioas_map', {
          size: 40,
          flags: Number(a.flags),
          ioas_id: Number(a.ioas_id),
          user_va: this.addr(a.user_va),
          length: big(a.length),
          iova: big(a.iova),
        });
        const t0 = performance.now();
        const res = call(I.IOMMU_IOAS_MAP, buf);
        // The probe's timed maps print the TCE count and the wall time instead of the IOVA.
        if ('tces_4k' in r.out) return { ...ans(res), out: { tces_4k: Number(big(a.length) >> 12n), elapsed_ms: Math.floor(performance.now() - t0) } };
        return { ...ans(res), out: res.ret === 0 ? { iova: hex(fieldBig(buf, 'iommu_ioas_map', 'iova')) } : {} };
      }
      case 'IOMMU_IOAS_COPY': {
        const buf = struct('iommu_ioas_copy', {
          size: 40,
          flags: Number(a.flags),
          dst_ioas_id: Number(a.dst_ioas_id),
          src_ioas_id: Number(a.src_ioas_id),
          length: big(a.length),
          dst_iova: big(a.dst_iova),
          src_iova: big(a.src_iova),
        });
        const res = call(I.IOMMU_IOAS_COPY, buf);
        return { ...ans(res), out: res.ret === 0 ? { dst_iova: hex(fieldBig(buf, 'iommu_ioas_copy', 'dst_iova')) } : {} };
      }
      case 'IOMMU_IOAS_UNMAP': {
        const buf = struct('iommu_ioas_unmap', { size: 24, ioas_id: Number(a.ioas_id), iova: big(a.iova), length: big(a.length) });
        const res = call(I.IOMMU_IOAS_UNMAP, buf);
        return { ...ans(res), out: { length: hex(fieldBig(buf, 'iommu_ioas_unmap', 'length')) } };
      }
      case 'IOMMU_OPTION': {
        const opt = { RLIMIT_MODE: 0, HUGE_PAGES: 1 }[String(a.option_id)] ?? 7;
        const op = { SET: 0, GET: 1 }[String(a.op)] ?? 5;
        const buf = struct('iommu_option', { size: 24, option_id: opt, op, object_id: Number(a.object_id), val64: BigInt(Number(a.val64)) });
        const res = call(I.IOMMU_OPTION, buf);
        return { ...ans(res), out: { val64: Number(fieldBig(buf, 'iommu_option', 'val64')) } };
      }
      case 'IOMMU_VFIO_IOAS': {
        const op = { GET: 0, SET: 1, CLEAR: 2 }[String(a.op)] ?? 7;
        const buf = struct('iommu_vfio_ioas', { size: 12, ioas_id: Number(a.ioas_id), op });
        const res = call(I.IOMMU_VFIO_IOAS, buf);
        return { ...ans(res), out: { ioas_id: field(buf, 'iommu_vfio_ioas', 'ioas_id') } };
      }
      case 'IOMMU_HWPT_ALLOC': {
        const data = new Uint8Array(24);
        p.mm.user.place(SCRATCH, data);
        const buf = struct('iommu_hwpt_alloc', {
          size: 48,
          flags: Number(a.flags),
          dev_id: Number(a.dev_id),
          pt_id: Number(a.pt_id),
          out_hwpt_id: 0xdeadbeef,
          data_type: Number(a.data_type),
          data_len: Number(a.data_len),
          data_uptr: Number(a.data_len) ? SCRATCH : 0n,
          fault_id: Number(a.fault_id),
        });
        const res = call(I.IOMMU_HWPT_ALLOC, buf);
        const id = field(buf, 'iommu_hwpt_alloc', 'out_hwpt_id');
        if (res.ret === 0) this.vars[`hwpt:${r.case}`] = id;
        return { ...ans(res), out: res.ret === 0 ? { out_hwpt_id: id } : {} };
      }
      case 'IOMMU_GET_HW_INFO': {
        const data = new Uint8Array(64).fill(0xa5);
        p.mm.user.place(SCRATCH, data);
        const dlen = Number(a.data_len);
        const buf = struct('iommu_hw_info', {
          size: Number(a.size),
          flags: Number(a.flags),
          dev_id: Number(a.dev_id),
          data_len: dlen,
          data_uptr: SCRATCH,
          out_data_type: 0xdead,
          out_capabilities: 0xdead,
        });
        const res = call(I.IOMMU_GET_HW_INFO, buf);
        const show = Math.min(dlen < 32 ? dlen + 4 : 32, 32);
        return {
          ...ans(res),
          out: {
            out_data_type: field(buf, 'iommu_hw_info', 'out_data_type'),
            data_len: field(buf, 'iommu_hw_info', 'data_len'),
            out_capabilities: hex(fieldBig(buf, 'iommu_hw_info', 'out_capabilities')),
            out_max_pasid_log2: field(buf, 'iommu_hw_info', 'out_max_pasid_log2'),
            data_hex: Buffer.from(data.subarray(0, show)).toString('hex'),
          },
        };
      }
      case 'IOMMU_HWPT_SET_DIRTY_TRACKING':
        return {
          ...ans(
            call(I.IOMMU_HWPT_SET_DIRTY_TRACKING, struct('iommu_hwpt_set_dirty_tracking', { size: 16, flags: Number(a.flags), hwpt_id: Number(a.hwpt_id) })),
          ),
          out: {},
        };
      case 'IOMMU_HWPT_GET_DIRTY_BITMAP': {
        p.mm.user.place(SCRATCH, new Uint8Array(512));
        const buf = struct('iommu_hwpt_get_dirty_bitmap', {
          size: 48,
          hwpt_id: Number(a.hwpt_id),
          iova: big(a.iova),
          length: big(a.length),
          page_size: big(a.page_size),
          data: SCRATCH,
        });
        return { ...ans(call(I.IOMMU_HWPT_GET_DIRTY_BITMAP, buf)), out: {} };
      }
      case 'IOMMU_HWPT_INVALIDATE': {
        p.mm.user.place(SCRATCH, new Uint8Array(64));
        const buf = struct('iommu_hwpt_invalidate', {
          size: 32,
          hwpt_id: Number(a.hwpt_id),
          data_uptr: SCRATCH,
          data_type: Number(a.data_type),
          entry_len: Number(a.entry_len),
          entry_num: Number(a.entry_num),
        });
        const res = call(I.IOMMU_HWPT_INVALIDATE, buf);
        return { ...ans(res), out: { entry_num: field(buf, 'iommu_hwpt_invalidate', 'entry_num') } };
      }
      case 'IOMMU_FAULT_QUEUE_ALLOC': {
        const buf = struct('iommu_fault_alloc', { size: 16, out_fault_id: 0xdeadbeef, out_fault_fd: 0xdeadbeef });
        const res = call(I.IOMMU_FAULT_QUEUE_ALLOC, buf);
        if (res.ret !== 0) return { ...ans(res), out: {} };
        const ffd = field(buf, 'iommu_fault_alloc', 'out_fault_fd');
        this.open.push({ fd: ffd, label: r.case, kind: 'fault' });
        return { ...ans(res), out: { out_fault_id: field(buf, 'iommu_fault_alloc', 'out_fault_id'), out_fault_fd_valid: 1 } };
      }
      default:
        throw new IommufdReplayError(`cannot replay ${r.op}`);
    }
  }

  /**
   * The ABI checks: the program's struct image for this case, the recorded size, a zero or
   * non-zero tail, sent from a 12 KiB buffer; the answer is the image afterwards.
   */
  private raw(r: OracleRecord, p: Process): Omit<Answer, 'vmlck_kb' | 'dmesg'> {
    const a = r.args;
    const size = Number(a.size);
    const img = rawImage(r.op, r.case, this.vars['ioas:IOAS for ABI checks'] ?? 1, BUF, SCRATCH);
    const b = new Uint8Array(3 * 4096);
    b.set(img);
    new DataView(b.buffer).setUint32(0, size, true);
    if (String(a.tail).startsWith('last byte') && size > img.length) b[size - 1] = 1;
    // The array behind allowed_iovas: ALLOW_IOVAS reads {0, U64_MAX}; IOVA_RANGES writes into it.
    const arr = new Uint8Array(64);
    if (r.op === 'IOMMU_IOAS_ALLOW_IOVAS') new DataView(arr.buffer).setBigUint64(8, (1n << 64n) - 1n, true);
    p.mm.user.place(SCRATCH, arr);
    const res = this.ioctl(p, this.iommufd(), OPS[r.op]!, b);
    let hexs = '';
    for (let i = 0; i < img.length; i += 8) {
      const n = Math.min(8, img.length - i);
      if (n === 8) {
        const w = new DataView(b.buffer).getBigUint64(i, true);
        if (w >= 0x100_0000_0000n && w < 0x8000_0000_0000n) {
          hexs += '<ptr>';
          continue;
        }
      }
      hexs += Buffer.from(b.subarray(i, i + n)).toString('hex');
    }
    return { ...ans(res), out: { raw_hex: hexs } };
  }

  /** An ioctl by raw number (`_IO(';',0x8f)`, a NULL argument). */
  private rawNumber(r: OracleRecord, p: Process): Omit<Answer, 'vmlck_kb' | 'dmesg'> {
    const m = /^_IO(W?)\('(.)',0x([0-9a-f]+)(,struct iommu_destroy)?\)$/.exec(r.op);
    const fd = this.iommufd();
    if (m) {
      const type = m[2]!.charCodeAt(0);
      let req = (type << 8) | Number.parseInt(m[3]!, 16);
      if (m[1]) req = (req | (1 << 30) | (8 << 16)) >>> 0;
      const arg: IoctlArg = 'arg' in r.args ? BigInt(Number(r.args.arg)) : struct('iommu_destroy', { size: 8, id: 1 });
      return { ...ans(this.ioctl(p, fd, req, arg)), out: {} };
    }
    throw new IommufdReplayError(`cannot replay ${r.op}`);
  }

  /** The first value the program kept from a case starting with `prefix`. */
  private kept(kind: string, prefix: string): number {
    for (const [k, val] of Object.entries(this.vars)) if (k.startsWith(`${kind}:${prefix}`)) return val;
    return -1;
  }

  private note(r: OracleRecord, p: Process): Record<string, unknown> {
    const v = this.vars;
    const page = BUF + 0xf0_0000n;
    if (r.case === 'user page') {
      this.phys0 = this.physOf(p, page);
      return { user_va: 'buf+0xf00000', phys_found: this.phys0 !== undefined };
    }
    if (r.case.startsWith('page after ')) {
      const now = this.physOf(p, page);
      return { phys_found: now !== undefined, moved_by_pinning: now !== undefined && now !== this.phys0 };
    }
    if (r.case.startsWith('32 x (HWPT_ALLOC + IOMMU_DESTROY)')) return this.leakLoop(p);
    if (r.case.startsWith('after closing device and iommufd')) return { memfree_drop_mib_rounded_to_16: this.memfreeDrop() };
    switch (r.case) {
      case 'attached':
        return { pt: this.kept('pt', 'attach to IOAS 1'), allocated_not_attached: this.kept('hwpt', 'HWPT_ALLOC on IOAS 2 while attached') };
      case 'detached_but_window_set':
        return { hwpt: this.kept('hwpt', 'HWPT_ALLOC on IOAS 2 while the device is detached') };
      case 'environment': {
        const o = r.out as Record<string, unknown>;
        const sizes: Record<string, number> = {};
        const names: Record<string, I.IommufdStruct | number> = {
          ioas_alloc: 'iommu_ioas_alloc',
          destroy: 'iommu_destroy',
          iova_ranges: 'iommu_ioas_iova_ranges',
          allow_iovas: 'iommu_ioas_allow_iovas',
          map: 'iommu_ioas_map',
          copy: 'iommu_ioas_copy',
          unmap: 'iommu_ioas_unmap',
          option: 'iommu_option',
          vfio_ioas: 'iommu_vfio_ioas',
          hwpt_alloc: 'iommu_hwpt_alloc',
          hw_info: 'iommu_hw_info',
          hw_info_vtd: 24,
          set_dirty: 'iommu_hwpt_set_dirty_tracking',
          get_dirty: 'iommu_hwpt_get_dirty_bitmap',
          invalidate: 'iommu_hwpt_invalidate',
          fault_alloc: 'iommu_fault_alloc',
          bind_iommufd: 'vfio_device_bind_iommufd',
          attach_pt: 'vfio_device_attach_iommufd_pt',
          detach_pt: 'vfio_device_detach_iommufd_pt',
        };
        for (const [k, s] of Object.entries(names)) sizes[k] = typeof s === 'number' ? s : I.iommufdStructs[s].size;
        if (o.program === 'rfc_probe')
          return { program: 'rfc_probe', release: o.release, pagesize: this.machine.mem.pageSize, devA: this.devA, devB: this.devB };
        return {
          release: o.release,
          version: o.version,
          machine: o.machine,
          pagesize: this.machine.mem.pageSize,
          // Without the recorded machine's devices, the program's device arguments are echoed.
          devA: this.deviceFree ? o.devA : this.devA,
          devB: this.deviceFree ? o.devB : this.devB,
          sizeof: sizes,
        };
      }
      case 'ids': {
        if ('dev_id_after_rebind' in r.out) return { dev_id_after_rebind: v['dev:bind reopened device to third iommufd'] ?? -1 };
        const ptA = this.kept('pt', 'attach A');
        const ptB = this.kept('pt', 'attach B');
        return { dev_a: this.kept('dev', 'bind A'), dev_b: this.kept('dev', 'bind B'), pt_a: ptA, pt_b: ptB, shared_hwpt: ptA === ptB };
      }
      case 'exiting':
        return { hwpt: v['hwpt:HWPT on IOAS 2'] ?? -1, ioas: v['ioas:IOAS'] ?? -1, ioas2: v['ioas:IOAS 2'] ?? -1 };
      case 'ids_after_exit':
        return { ioas: v['ioas:IOAS'] ?? -1, dev: v['dev:bind'] ?? -1 };
      default:
        return r.out;
    }
  }
}

/** The struct images of the program's ABI checks (scn_abi_rules). */
function rawImage(op: string, c: string, ioas: number, buf: bigint, scratch: bigint): Uint8Array {
  switch (op) {
    case 'IOMMU_IOAS_ALLOC':
      return struct('iommu_ioas_alloc', { flags: c === 'flags=1' ? 1 : 0 });
    case 'IOMMU_DESTROY':
      return struct('iommu_destroy', { id: 12345 });
    case 'IOMMU_IOAS_IOVA_RANGES':
      return struct('iommu_ioas_iova_ranges', { ioas_id: ioas, num_iovas: 4, allowed_iovas: scratch, __reserved: c === '__reserved=1' ? 1 : 0 });
    case 'IOMMU_IOAS_MAP':
      return struct('iommu_ioas_map', {
        flags: c === 'flags=0xffff' ? 0xffff : 7,
        ioas_id: ioas,
        user_va: buf,
        length: 4096,
        iova: c === 'size 32 < min 40' || c === 'size 48, zero tail' ? 0x1000000 : 0x1001000,
        __reserved: c === '__reserved=1' ? 1 : 0,
      });
    case 'IOMMU_IOAS_COPY':
      return struct('iommu_ioas_copy', { flags: 7, dst_ioas_id: ioas, src_ioas_id: ioas, length: 4096, dst_iova: 0x2000000, src_iova: 0x1000000 });
    case 'IOMMU_IOAS_UNMAP':
      return struct('iommu_ioas_unmap', { ioas_id: ioas, iova: 0x2000000, length: 4096 });
    case 'IOMMU_IOAS_ALLOW_IOVAS':
      return struct('iommu_ioas_allow_iovas', { ioas_id: ioas, num_iovas: 1, allowed_iovas: scratch, __reserved: c === '__reserved=1' ? 1 : 0 });
    case 'IOMMU_OPTION':
      return struct('iommu_option', { option_id: 0, op: 1, __reserved: c === '__reserved=1' ? 1 : 0 });
    case 'IOMMU_VFIO_IOAS':
      return struct('iommu_vfio_ioas', { op: 0, __reserved: c === '__reserved=1' ? 1 : 0 });
    case 'IOMMU_GET_HW_INFO':
      return struct('iommu_hw_info', { dev_id: 1 });
    case 'IOMMU_HWPT_ALLOC':
      return struct('iommu_hwpt_alloc', { dev_id: 1, pt_id: ioas });
    case 'IOMMU_HWPT_SET_DIRTY_TRACKING':
      return struct('iommu_hwpt_set_dirty_tracking', { hwpt_id: ioas });
    case 'IOMMU_HWPT_GET_DIRTY_BITMAP':
      return struct('iommu_hwpt_get_dirty_bitmap', { hwpt_id: ioas, length: 4096, page_size: 4096 });
    case 'IOMMU_HWPT_INVALIDATE':
      return struct('iommu_hwpt_invalidate', { hwpt_id: ioas });
    case 'IOMMU_FAULT_QUEUE_ALLOC':
      return struct('iommu_fault_alloc', { flags: c === 'flags=1' ? 1 : 0 });
    default:
      throw new IommufdReplayError(`no ABI image for ${op}`);
  }
}

function struct<S extends I.IommufdStruct>(s: S, values: Partial<Record<keyof (typeof I.iommufdStructs)[S]['fields'], bigint | number>>): Uint8Array {
  const def = I.iommufdStructs[s];
  const b = new Uint8Array(def.size);
  for (const [k, v] of Object.entries(values)) {
    const f = (def.fields as Record<string, V.Field>)[k];
    if (f && v !== undefined) V.setField(b, f, v as bigint | number);
  }
  return b;
}

function fieldBig<S extends I.IommufdStruct>(b: Uint8Array, s: S, k: keyof (typeof I.iommufdStructs)[S]['fields']): bigint {
  return V.getField(b, (I.iommufdStructs[s].fields as Record<string, V.Field>)[k as string]!);
}

function field<S extends I.IommufdStruct>(b: Uint8Array, s: S, k: keyof (typeof I.iommufdStructs)[S]['fields']): number {
  return Number(fieldBig(b, s, k));
}

function big(v: unknown): bigint {
  return BigInt(String(v));
}

function hex(v: bigint): string {
  return `0x${v.toString(16)}`;
}

function ans(r: SysResult): { ret: number; errno: string | null } {
  return r.ret < 0 ? { ret: -1, errno: errnoName(r.errno) } : { ret: r.ret, errno: null };
}
