/**
 * Replays a recording of the oracle program (vfio_spapr_oracle.c) against a modelled machine,
 * call by call through the binary ABI, and produces the model's answer for every record. The
 * program's memory layout (its 16 MiB buffer, read-only page, THP and hugetlb buffers and the
 * unmapped hole) is rebuilt in a modelled process, and the mmap/munmap records of a scenario that
 * remaps memory change it as the program did; descriptors are tracked by the names the program
 * gives them ("container 1", "group B", "second device fd").
 */
import { errnoName } from '../base/errno.js';
import { Machine } from '../machine/machine.js';
import type { Process } from '../kernel/process.js';
import type { IoctlArg } from '../kernel/uaccess.js';
import * as V from '../kernel/include/uapi/linux/vfio.js';
import type { SysResult } from '../uapi/syscalls.js';
import type { Answer } from './compare.js';
import { machineOptionsFor } from './environment.js';
import { isEnvironment, type OracleRecord } from './records.js';

const MiB = 1n << 20n;
const BUF = 0x7fff_8000_0000n;
const THP = 0x7ffe_0000_0000n;
const HUGE = 0x7ffd_0000_0000n;
const HOLE = 0x7ffc_0000_0000n;
const READONLY = 0x7ffb_0000_0000n;
/** The v2_remap_registered scenario's 16 TiB of address space (the program's REMAP_BASE). */
const REMAP = 0x2000_0000_0000n;
/** The part of the program's 48 MiB buffer mapping that always lies above its aligned start. */
const BUF_SPAN = 32n * MiB;
/** The hugetlb buffer's size. */
const HUGE_SPAN = 32n * MiB;

/** The extensions the oracle programs ask VFIO_CHECK_EXTENSION about, by name. */
export const EXTENSIONS: [string, number][] = [
  ['VFIO_TYPE1_IOMMU', V.VFIO_TYPE1_IOMMU],
  ['VFIO_SPAPR_TCE_IOMMU', V.VFIO_SPAPR_TCE_IOMMU],
  ['VFIO_TYPE1v2_IOMMU', V.VFIO_TYPE1v2_IOMMU],
  ['VFIO_DMA_CC_IOMMU', V.VFIO_DMA_CC_IOMMU],
  ['VFIO_EEH', V.VFIO_EEH],
  ['VFIO_TYPE1_NESTING_IOMMU', V.VFIO_TYPE1_NESTING_IOMMU],
  ['VFIO_SPAPR_TCE_v2_IOMMU', V.VFIO_SPAPR_TCE_v2_IOMMU],
  ['VFIO_NOIOMMU_IOMMU', V.VFIO_NOIOMMU_IOMMU],
  ['VFIO_UNMAP_ALL', V.VFIO_UNMAP_ALL],
  ['VFIO_UPDATE_VADDR', V.VFIO_UPDATE_VADDR],
];

export class ReplayError extends Error {}

export class OracleReplay {
  readonly machine: Machine;
  private readonly parent: Process;
  private child: Process | null = null;
  private readonly fds = new Map<string, number>();
  private lastDevice: number | null = null;
  private klogPos = 0;
  private readonly readonlyBase: bigint;
  private readonly thpBase: bigint;

  /** `inheritedInit`: the init records of an earlier boot, for a boot that printed none of its own. */
  constructor(boot: OracleRecord[], inheritedInit: OracleRecord[] = []) {
    this.machine = new Machine(machineOptionsFor(boot[0]!));
    for (const r of inheritedInit) if (r.op === 'bind_vfio_pci') this.machine.bindVfioPci(bdfOf(r));
    this.klogPos = this.machine.klog.nextSeq;
    this.readonlyBase = inferReadonlyBase(boot);
    this.thpBase = inferThpBase(boot);
    this.parent = this.machine.sys.spawn('vfio_spapr_oracle');
    this.layout(this.parent, boot.find(isEnvironment) ?? inheritedInit.find(isEnvironment));
  }

  /** The program's mappings, as main() creates them. */
  private layout(p: Process, environment: OracleRecord | undefined): void {
    const env = environment?.out ?? {};
    const maps = p.mm.mappings;
    maps.push({ start: BUF, end: BUF + BUF_SPAN, kind: 'anon' });
    maps.push({ start: this.readonlyBase, end: this.readonlyBase + MiB, kind: 'readonly' });
    maps.push({ start: this.thpBase, end: this.thpBase + 32n * MiB, kind: 'thp' });
    if (env.hugetlb_buffer === true && this.machine.hugePageShift) {
      maps.push({ start: HUGE, end: HUGE + 32n * MiB, kind: 'hugetlb', hugePageShift: this.machine.hugePageShift });
    }
  }

  /** Run one record and return the model's answer. */
  run(r: OracleRecord): Answer {
    const proc = this.opProcess(r);
    const res = this.exec(r, proc);
    const lines = this.machine.klog.since(this.klogPos);
    this.klogPos = this.machine.klog.nextSeq;
    const vmPid = r.op === 'process_exit' || r.scn === 'init' || r.scn === 'end' ? this.parent.pid : proc.pid;
    return { ...res, vmlck_kb: this.machine.sys.vmlckKb(vmPid), dmesg: lines };
  }

  /** Scenarios run in a forked child; init/end records and process_exit belong to the parent. */
  private opProcess(r: OracleRecord): Process {
    if (r.scn === 'init' || r.scn === 'end' || r.op === 'process_exit') return this.parent;
    if (!this.child) {
      const pid = this.machine.sys.fork(this.parent.pid).ret;
      this.child = this.machine.sys.processes.get(pid)!;
      this.fds.clear();
    }
    return this.child;
  }

  private exec(r: OracleRecord, p: Process): Omit<Answer, 'vmlck_kb' | 'dmesg'> {
    const a = r.args;
    const sys = this.machine.sys;
    switch (r.op) {
      case 'bind_vfio_pci': {
        const b = this.machine.bindVfioPci(bdfOf(r));
        return {
          ret: b.ret < 0 ? -1 : 0,
          errno: b.ret < 0 ? errnoName(-b.ret) : null,
          out: { driver: 'vfio-pci', iommu_group: String(b.group), ...(b.cdev === null ? {} : { cdev: `vfio${b.cdev}` }), probe_error: null },
        };
      }
      case 'note':
        return { ret: 0, errno: null, out: r.case === 'environment' ? this.environment(r) : r.out };
      case 'open': {
        const res = sys.open(p.pid, String(a.path));
        if (res.ret >= 0) this.fds.set(this.openLabel(r.case), res.ret);
        return { ...sysAnswer(res.ret < 0 ? res : { ret: 0, errno: 0 }), out: {} };
      }
      case 'close': {
        const label = this.closeLabel(r.case);
        const fd = this.fds.get(label);
        if (fd === undefined) throw new ReplayError(`no open descriptor for "${r.case}"`);
        this.fds.delete(label);
        return { ...sysAnswer(sys.close(p.pid, fd)), out: {} };
      }
      case 'process_exit': {
        if (this.child) sys.exit(this.child.pid);
        this.child = null;
        return { ret: 0, errno: null, out: { exited: 1, exit_status: 0, signaled: 0, signal: 0 } };
      }
      case 'mmap':
        return { ...this.mmap(p, r), out: {} };
      case 'munmap': {
        const at = this.addr(a.addr);
        p.mm.unmapRange(at, at + big(a.size));
        return { ret: 0, errno: null, out: {} };
      }
      case 'drop_privileges': {
        const limit = BigInt(Number(r.out.memlock_limit ?? 1048576));
        const r1 = sys.setrlimitMemlock(p.pid, limit);
        const r2 = sys.setuid(p.pid, 65534);
        return {
          ret: 0,
          errno: null,
          out: { memlock_limit: Number(limit), setrlimit: r1.ret, setrlimit_errno: r1.ret ? r1.errno : 0, setresuid: r2.ret, uid: p.uid },
        };
      }
      case 'VFIO_GET_API_VERSION':
      case 'VFIO_IOMMU_ENABLE':
      case 'VFIO_IOMMU_DISABLE':
      case 'VFIO_SET_IOMMU': {
        const req = {
          VFIO_GET_API_VERSION: V.VFIO_GET_API_VERSION,
          VFIO_IOMMU_ENABLE: V.VFIO_IOMMU_ENABLE,
          VFIO_IOMMU_DISABLE: V.VFIO_IOMMU_DISABLE,
          VFIO_SET_IOMMU: V.VFIO_SET_IOMMU,
        }[r.op];
        return { ...sysAnswer(this.ioctl(p, this.container(r.case), req, BigInt(Number(a.arg ?? 0)))), out: {} };
      }
      case 'VFIO_IOMMU_GET_INFO(type1)':
        return { ...sysAnswer(this.ioctl(p, this.container(r.case), V.VFIO_IOMMU_GET_INFO, 0n)), out: {} };
      case 'VFIO_CHECK_EXTENSION': {
        const out: Record<string, unknown> = {};
        for (const [name, id] of EXTENSIONS) {
          const res = this.ioctl(p, this.container(r.case), V.VFIO_CHECK_EXTENSION, BigInt(id));
          out[name] = res.ret < 0 ? errnoName(res.errno) : res.ret;
        }
        return { ret: 0, errno: null, out };
      }
      case 'VFIO_IOMMU_SPAPR_TCE_GET_INFO': {
        const buf = new Uint8Array(32).fill(0xa5);
        const dv = new DataView(buf.buffer);
        dv.setUint32(0, Number(a.argsz), true);
        dv.setUint32(4, 0x5a5a5a5a, true);
        const res = this.ioctl(p, this.container(r.case), V.VFIO_IOMMU_SPAPR_TCE_GET_INFO, buf);
        const f = V.decode('vfio_iommu_spapr_tce_info', buf);
        const out =
          res.ret === 0
            ? {
                flags: Number(f.flags),
                ddw_flag: Number(f.flags & 1n),
                dma32_window_start: `0x${f.dma32_window_start.toString(16)}`,
                dma32_window_size: `0x${f.dma32_window_size.toString(16)}`,
                'ddw.pgsizes': `0x${f['ddw.pgsizes'].toString(16)}`,
                'ddw.max_dynamic_windows_supported': Number(f['ddw.max_dynamic_windows_supported']),
                'ddw.levels': Number(f['ddw.levels']),
                raw_hex: Buffer.from(buf).toString('hex'),
              }
            : {};
        return { ...sysAnswer(res), out };
      }
      case 'VFIO_IOMMU_MAP_DMA': {
        const buf = V.encode('vfio_iommu_type1_dma_map', {
          argsz: Number(a.argsz),
          flags: Number(a.flags),
          vaddr: this.addr(a.vaddr),
          iova: big(a.iova),
          size: big(a.size),
        });
        return { ...sysAnswer(this.ioctl(p, this.container(r.case), V.VFIO_IOMMU_MAP_DMA, buf)), out: {} };
      }
      case 'VFIO_IOMMU_UNMAP_DMA': {
        const buf = V.encode('vfio_iommu_type1_dma_unmap', { argsz: Number(a.argsz), flags: Number(a.flags), iova: big(a.iova), size: big(a.size) });
        const res = this.ioctl(p, this.container(r.case), V.VFIO_IOMMU_UNMAP_DMA, buf);
        return { ...sysAnswer(res), out: { size_after: `0x${V.decode('vfio_iommu_type1_dma_unmap', buf).size.toString(16)}` } };
      }
      case 'VFIO_IOMMU_SPAPR_REGISTER_MEMORY':
      case 'VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY': {
        const buf = V.encode('vfio_iommu_spapr_register_memory', {
          argsz: Number(a.argsz),
          flags: Number(a.flags),
          vaddr: this.addr(a.vaddr),
          size: big(a.size),
        });
        const req = r.op === 'VFIO_IOMMU_SPAPR_REGISTER_MEMORY' ? V.VFIO_IOMMU_SPAPR_REGISTER_MEMORY : V.VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY;
        return { ...sysAnswer(this.ioctl(p, this.container(r.case), req, buf)), out: {} };
      }
      case 'VFIO_IOMMU_SPAPR_TCE_CREATE': {
        const buf = V.encode('vfio_iommu_spapr_tce_create', {
          argsz: Number(a.argsz),
          flags: Number(a.flags),
          page_shift: Number(a.page_shift),
          window_size: big(a.window_size),
          levels: Number(a.levels),
          start_addr: 0xdeadbeefdeadbeefn,
        });
        const res = this.ioctl(p, this.container(r.case), V.VFIO_IOMMU_SPAPR_TCE_CREATE, buf);
        return { ...sysAnswer(res), out: { start_addr: `0x${V.decode('vfio_iommu_spapr_tce_create', buf).start_addr.toString(16)}` } };
      }
      case 'VFIO_IOMMU_SPAPR_TCE_REMOVE': {
        const buf = V.encode('vfio_iommu_spapr_tce_remove', { argsz: Number(a.argsz), flags: Number(a.flags), start_addr: big(a.start_addr) });
        return { ...sysAnswer(this.ioctl(p, this.container(r.case), V.VFIO_IOMMU_SPAPR_TCE_REMOVE, buf)), out: {} };
      }
      case 'VFIO_EEH_PE_OP': {
        const buf = V.encode('vfio_eeh_pe_op', { argsz: Number(a.argsz), flags: Number(a.flags), op: Number(a.op) });
        return { ...sysAnswer(this.ioctl(p, this.container(r.case), V.VFIO_EEH_PE_OP, buf)), out: {} };
      }
      case 'VFIO_GROUP_GET_STATUS': {
        const buf = V.encode('vfio_group_status', { argsz: 8 });
        const res = this.ioctl(p, this.group(r.case), V.VFIO_GROUP_GET_STATUS, buf);
        const flags = Number(V.decode('vfio_group_status', buf).flags);
        return { ...sysAnswer(res), out: res.ret === 0 ? { flags, viable: flags & 1, container_set: (flags >> 1) & 1 } : {} };
      }
      case 'VFIO_GROUP_SET_CONTAINER': {
        const buf = new Uint8Array(4);
        new DataView(buf.buffer).setInt32(0, this.fds.get(this.targetContainer(r.case)) ?? -1, true);
        return { ...sysAnswer(this.ioctl(p, this.group(r.case), V.VFIO_GROUP_SET_CONTAINER, buf)), out: {} };
      }
      case 'VFIO_GROUP_UNSET_CONTAINER':
        return { ...sysAnswer(this.ioctl(p, this.group(r.case), V.VFIO_GROUP_UNSET_CONTAINER, 0n)), out: {} };
      case 'VFIO_GROUP_GET_DEVICE_FD': {
        const name = new TextEncoder().encode(`${String(a.name)}\0`);
        const res = this.ioctl(p, this.group(r.case), V.VFIO_GROUP_GET_DEVICE_FD, name);
        if (res.ret >= 0) {
          this.fds.set(this.fds.has('device fd') ? 'second device fd' : 'device fd', res.ret);
          this.lastDevice = res.ret;
          return { ret: 0, errno: null, out: {} };
        }
        return { ...sysAnswer(res), out: {} };
      }
      case 'VFIO_DEVICE_GET_INFO': {
        const buf = V.encode('vfio_device_info', { argsz: 24 });
        const res = sys.ioctl(p.pid, this.lastDevice ?? -1, V.VFIO_DEVICE_GET_INFO, buf);
        const f = V.decode('vfio_device_info', buf);
        const flags = Number(f.flags);
        const out = res.ret === 0 ? { flags, reset: flags & 1, pci: (flags >> 1) & 1, num_regions: Number(f.num_regions), num_irqs: Number(f.num_irqs) } : {};
        return { ...sysAnswer(res), out };
      }
      default:
        throw new ReplayError(`tcelab cannot replay op "${r.op}"`);
    }
  }

  /**
   * The program's mmap(MAP_FIXED_NOREPLACE) of touched small pages ("anon"), THP-advised pages
   * ("thp"), hugetlb pages, or PROT_NONE ("none": as a hole to a pin): EEXIST over a mapping,
   * ENOENT for hugetlb when the MMU has no huge page size.
   */
  private mmap(p: Process, r: OracleRecord): { ret: number; errno: string | null } {
    const start = this.addr(r.args.addr);
    const end = start + big(r.args.size);
    const kind = String(r.args.kind);
    if (p.mm.mappings.some((m) => m.start < end && start < m.end)) return { ret: -1, errno: 'EEXIST' };
    const huge = this.machine.hugePageShift;
    if (kind === 'none') return { ret: 0, errno: null };
    if (kind === 'hugetlb') {
      if (!huge) return { ret: -1, errno: 'ENOENT' };
      p.mm.mapFixed({ start, end, kind, hugePageShift: huge });
    } else if (kind === 'anon' || kind === 'thp') p.mm.mapFixed({ start, end, kind });
    else throw new ReplayError(`mmap of kind "${kind}": tcelab replays anon, thp, hugetlb and none`);
    return { ret: 0, errno: null };
  }

  private ioctl(p: Process, fd: number, req: number, arg: IoctlArg): SysResult {
    return this.machine.sys.ioctl(p.pid, fd, req, arg);
  }

  /** The environment record as the modelled machine would print it. */
  private environment(r: OracleRecord): Record<string, unknown> {
    const m = this.machine;
    const o = r.out;
    const groupOf = (bdf: unknown) => (typeof bdf === 'string' && bdf ? (m.device(bdf)?.group ?? -1) : -1);
    const huge = m.hugePageShift;
    return {
      ...o,
      machine: 'ppc64le',
      pagesize: m.mem.pageSize,
      mmu: m.mmu === 'radix' ? 'Radix' : 'Hash',
      platform: m.pseries ? 'pSeries' : 'PowerNV',
      groupA: groupOf(o.bdfA),
      groupB: o.bdfB ? groupOf(o.bdfB) : o.groupB,
      hugetlb_buffer: huge > 0,
      hugetlb_errno: huge > 0 ? '' : 'ENOENT',
      hugepagesize: huge > 0 ? 2 ** huge : 0,
      AnonHugePages_kB_after_touching_thpbuf: m.thpShift > 0 ? 32768 : 0,
      sizeof_tce_info: V.structs.vfio_iommu_spapr_tce_info.size,
      sizeof_tce_create: V.structs.vfio_iommu_spapr_tce_create.size,
      sizeof_tce_remove: V.structs.vfio_iommu_spapr_tce_remove.size,
      sizeof_register_memory: V.structs.vfio_iommu_spapr_register_memory.size,
      sizeof_dma_map: V.structs.vfio_iommu_type1_dma_map.size,
      sizeof_dma_unmap: V.structs.vfio_iommu_type1_dma_unmap.size,
      sizeof_eeh_pe_op: V.structs.vfio_eeh_pe_op.size,
    };
  }

  /** A symbolic address of the program ("buf+0x1000", "unmapped+0x0", "0xffff0000"). */
  private addr(v: unknown): bigint {
    const s = String(v);
    const m = /^([a-z]+)\+0x([0-9a-f]+)$/.exec(s);
    if (!m) return BigInt(s);
    const off = BigInt(`0x${m[2]}`);
    const base = { buf: BUF, thpbuf: this.thpBase, hugebuf: HUGE, unmapped: HOLE, readonly: this.readonlyBase, remapbuf: REMAP }[m[1]!];
    if (base === undefined) throw new ReplayError(`unknown buffer "${m[1]}" in address ${s}`);
    return base + off;
  }

  private openLabel(c: string): string {
    if (/^container/.test(c)) return c.match(/^container( \d)?/)![0];
    const g = /\b([AB])\b/.exec(c);
    if (g) return `group ${g[1]}`;
    throw new ReplayError(`cannot tell what "${c}" opens`);
  }

  private closeLabel(c: string): string {
    if (/^second device fd/.test(c)) return 'second device fd';
    if (/^device fd/.test(c)) return 'device fd';
    if (/^container( \d)?/.test(c)) {
      const n = /^container (\d)/.exec(c);
      return n ? `container ${n[1]}` : 'container';
    }
    if (/^group ([AB])\b/.test(c)) return `group ${c[6]}`;
    if (/^group fd/.test(c)) return this.firstOpen(['group A', 'group B']);
    throw new ReplayError(`cannot tell what "${c}" closes`);
  }

  private firstOpen(labels: string[]): string {
    const l = labels.find((x) => this.fds.has(x));
    if (!l) throw new ReplayError(`none of ${labels.join(', ')} is open`);
    return l;
  }

  private container(c: string): number {
    const n = /\bcontainer (\d)\b/.exec(c);
    const label = n ? `container ${n[1]}` : this.firstOpen(['container', 'container 1', 'container 2']);
    return this.fds.get(label) ?? -1;
  }

  private targetContainer(c: string): string {
    const n = /-> container (\d)/.exec(c);
    if (n) return `container ${n[1]}`;
    return this.firstOpen(['container', 'container 1', 'container 2']);
  }

  private group(c: string): number {
    const g = /\b([AB])\b/.exec(c);
    const label = g ? `group ${g[1]}` : this.firstOpen(['group A', 'group B']);
    return this.fds.get(label) ?? -1;
  }
}

/**
 * The program labels any address within 64 MiB of its buffer as "buf+X". Its buffer mapping is
 * only guaranteed to reach 32 MiB past the aligned start; an address beyond that is the read-only
 * mapping, which ASLR happened to place there.
 */
function inferReadonlyBase(boot: OracleRecord[]): bigint {
  const off = lowestOffsetPast(boot, 'buf', BUF_SPAN);
  return off === null ? READONLY : BUF + off;
}

/**
 * Likewise an address past the 32 MiB hugetlb buffer labelled "hugebuf+X" lies in the THP buffer,
 * which the pseries guest placed within 64 MiB of it.
 */
function inferThpBase(boot: OracleRecord[]): bigint {
  const off = lowestOffsetPast(boot, 'hugebuf', HUGE_SPAN);
  return off === null ? THP : HUGE + off;
}

/** The lowest X of the program's "label+X" addresses that lies at or past `span`. */
function lowestOffsetPast(boot: OracleRecord[], label: string, span: bigint): bigint | null {
  const re = new RegExp(`^${label}\\+0x([0-9a-f]+)$`);
  let best: bigint | null = null;
  for (const r of boot) {
    for (const v of Object.values(r.args)) {
      const m = typeof v === 'string' ? re.exec(v) : null;
      if (!m) continue;
      const off = BigInt(`0x${m[1]}`);
      if (off >= span && (best === null || off < best)) best = off;
    }
  }
  return best;
}

/** The function a bind_vfio_pci record names ("0000:00:01.0 vendor=… device=…"). */
function bdfOf(r: OracleRecord): string {
  return r.case.split(' ')[0]!;
}

function big(v: unknown): bigint {
  return BigInt(String(v));
}

function sysAnswer(r: SysResult): { ret: number; errno: string | null } {
  return r.ret < 0 ? { ret: -1, errno: errnoName(r.errno) } : { ret: r.ret, errno: null };
}
