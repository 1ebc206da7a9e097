/**
 * The one modelled machine a server keeps for all its clients: booted with every non-bridge
 * function bound to vfio-pci (as the recording kit's init does), the model processes of the
 * clients, who forked whom, and a read-only view of the state for tests and tools.
 */
import { errno } from '../base/errno.js';
import { Machine, type MachineOptions } from '../machine/machine.js';
import { machineReport, type PeReport } from '../scenario/report.js';
import type { SysResult } from '../uapi/syscalls.js';
import { groupTces } from './tce-census.js';

export interface ProcessView {
  pid: number;
  realPid: number | null;
  comm: string;
  uid: number;
  exited: boolean;
  vmlckKb: number;
}

export interface GroupView {
  id: number;
  devices: string[];
  owner: 'kernel' | 'vfio';
  opened: boolean;
  /** Valid TCEs in the tables of the group's PE. */
  tces: number;
}

export interface HostView {
  machine: string;
  pageSize: number;
  mmu: string;
  processes: ProcessView[];
  groups: GroupView[];
  pes: PeReport[];
}

export class ModelHost {
  readonly machine: Machine;
  /** Model pid → real pid, from each client's HELLO. */
  private readonly realPids = new Map<number, number>();
  /** Forked model pid → its parent's, until the parent reaps it. */
  private readonly parents = new Map<number, number>();
  /** Forked model pids no client has attached to yet. */
  private readonly unattached = new Set<number>();

  constructor(opts: MachineOptions) {
    this.machine = new Machine(opts);
    for (const d of this.machine.devices) if (!d.isBridge) this.machine.bindVfioPci(d.name);
  }

  get sys() {
    return this.machine.sys;
  }

  /** A new client process. */
  spawn(comm: string, realPid: number): number {
    const p = this.sys.spawn(comm);
    this.realPids.set(p.pid, realPid);
    return p.pid;
  }

  /** A forked child's first connection: it takes over the model process its parent's fork made. */
  attach(pid: number, realPid: number): number | string {
    if (!this.unattached.has(pid)) return `attach_pid ${pid} is not a forked process waiting for its child`;
    this.unattached.delete(pid);
    this.realPids.set(pid, realPid);
    return pid;
  }

  fork(parent: number): SysResult {
    const r = this.sys.fork(parent);
    if (r.ret >= 0) {
      this.parents.set(r.ret, parent);
      this.unattached.add(r.ret);
    }
    return r;
  }

  /** The parent waited for a child (or its fork failed): the child's process is released. */
  reap(parent: number, child: number): SysResult {
    if (this.parents.get(child) !== parent) return { ret: -1, errno: errno.ECHILD };
    this.parents.delete(child);
    this.unattached.delete(child);
    this.sys.exit(child);
    return { ret: 0, errno: 0 };
  }

  /**
   * A process died without saying it exits: children it forked that never connected (the real
   * fork may not have happened) are released with it. A parent that exits normally keeps them,
   * since its child may connect after the parent is gone.
   */
  releaseUnattachedChildren(parent: number): void {
    for (const child of [...this.unattached]) if (this.parents.get(child) === parent) this.reap(parent, child);
  }

  view(): HostView {
    const m = this.machine;
    return {
      machine: m.opts.preset,
      pageSize: m.mem.pageSize,
      mmu: m.mmu,
      processes: [...this.sys.processes.values()].map((p) => ({
        pid: p.pid,
        realPid: this.realPids.get(p.pid) ?? null,
        comm: p.comm,
        uid: p.uid,
        exited: p.exited,
        vmlckKb: this.sys.vmlckKb(p.pid),
      })),
      groups: m.groups.map((g) => ({
        id: g.id,
        devices: g.devices.map((d) => d.name),
        owner: g.domain === 'blocked' ? 'vfio' : 'kernel',
        opened: m.vfioGroups.get(g.id)?.opened ?? false,
        tces: groupTces(m.mem, g.tableGroup),
      })),
      pes: machineReport(m).pes,
    };
  }
}
