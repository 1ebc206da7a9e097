/**
 * A whole modelled POWER system: physical memory, PHBs and devices, the firmware (OPAL on
 * PowerNV, the PAPR hypervisor on pseries), the kernel's PEs, IOMMU groups and DMA layer, the VFIO
 * driver and the system-call surface, booted from a preset.
 */
import { GiB } from '../base/bits.js';
import { EventLog } from '../base/events.js';
import { Opal } from '../firmware/opal.js';
import { PaprHypervisor } from '../firmware/papr/hypervisor.js';
import { HYPERVISOR_PROFILES } from '../firmware/papr/profile.js';
import { PhysMemory } from '../hw/memory.js';
import { PciFunction, type PciFunctionSpec } from '../hw/pci-device.js';
import { Phb } from '../hw/phb.js';
import { Eeh } from '../kernel/eeh.js';
import type { IoctlArg } from '../kernel/uaccess.js';
import { IommuGroup, type IommuOps, IOMMU_CAP_CACHE_COHERENCY, tableGroupDomains } from '../kernel/iommu-group.js';
import type { IommufdPlatform } from '../iommufd/context.js';
import { UserStructs } from '../iommufd/pages.js';
import { iommufdOpen } from '../iommufd/main.js';
import { spaprTceRfcOps } from '../kernel/spapr-tce-iommu.js';
import { ppc64BlockPe, ppc64TceOps } from '../kernel/ppc64-iommu.js';
import { KPciDev } from '../kernel/pci.js';
import { PseriesIommu } from '../kernel/pseries/iommu.js';
import type { TableGroup } from '../kernel/table-group.js';
import { PnvIoda2 } from '../kernel/powernv/pci-ioda.js';
import { PNV_IODA_PE_BUS, PNV_IODA_PE_BUS_ALL, Pe, PnvPhb } from '../kernel/powernv/pe.js';
import { KernelLog } from '../kernel/printk.js';
import { accountLockedVm, Process } from '../kernel/process.js';
import { defaultQuirks, type Quirks } from '../kernel/quirks.js';
import { Syscalls } from '../uapi/syscalls.js';
import { VfioContainer } from '../vfio/container.js';
import { VfioDevice } from '../vfio/device.js';
import { noEehOps, vfioEehOps } from '../vfio/eeh.js';
import { VfioGroup } from '../vfio/group.js';
import { SpaprTceDriver } from '../vfio/spapr-tce.js';
import { SpaprTceIommufdDriver } from '../vfio/spapr-tce-iommufd.js';
import { PRESETS, type PresetName } from './presets.js';
import { bootPseries } from './pseries-boot.js';
import { pseriesTopology, qemuTopology, type Topology, tourTopology } from './topology.js';

export interface MachineOptions {
  preset: PresetName;
  pageSize: '4k' | '64k';
  mmu?: 'radix' | 'hash';
  ramBytes?: number;
  /** 'qemu' (the recorded machine), 'tour', or an explicit topology. */
  topology?: 'qemu' | 'tour' | Topology;
  quirks?: Partial<Quirks>;
  /** Model the PHBs' TCE cache (on by default, so a missing kill is observable). */
  tceCache?: boolean;
  /** pseries: the hypervisor profile (default qemu-7.2). */
  hypervisor?: string;
  /** pseries: dynamic DMA windows offered by the hypervisor (spapr-pci-host-bridge.ddw). */
  ddw?: boolean;
  /** powernv: the boot option iommu=nobypass (no 64-bit bypass window for the kernel's own DMA). */
  iommuNoBypass?: boolean;
  /** pseries: the guest kernel's option disable_ddw (its drivers ask for no dynamic DMA window). */
  disableDdw?: boolean;
  /** pseries: the top of hot-pluggable memory (QEMU -m …,maxmem=); none by default. */
  maxmemBytes?: number;
  /**
   * The kernel's IOMMUFD, with /dev/iommu and the VFIO device cdevs: absent (Debian's 6.12
   * ppc64el kernels have none), `rfc-2026` (the PPC64 IOMMUFD RFC as posted) or `ppc64`
   * (tcelab's design: both DMA windows, several PEs per domain; docs/iommufd-ppc64.md).
   */
  iommufd?: 'rfc-2026' | 'ppc64';
  /** iommufd.allow_unsafe_interrupts=1 on the kernel command line. */
  allowUnsafeInterrupts?: boolean;
  /**
   * Who provides /dev/vfio/vfio on an IOMMUFD kernel: VFIO's container (`legacy`, the default,
   * CONFIG_VFIO_CONTAINER) or IOMMUFD (`iommufd`, CONFIG_IOMMUFD_VFIO_CONTAINER).
   */
  vfioContainer?: 'legacy' | 'iommufd';
  /** The MMU's huge page size (HPAGE_SHIFT), when it is not the one this MMU mode gives. */
  hugePageShift?: number;
  /**
   * Kernel drivers built into the image that probe their devices at boot, before vfio-pci takes
   * them over: e1000e (8086:10d3) enables memory decoding, and its removal leaves it enabled.
   */
  builtinDrivers?: 'e1000e'[];
  /** pseries: the hypervisor offers H_PUT_TCE_INDIRECT and H_STUFF_TCE ("hcall-multi-tce"). */
  multiTce?: boolean;
}

/** MAX_PAGE_ORDER of the Debian ppc64el kernels: 8 with 64K pages, 12 with 4K pages (16 MiB blocks). */
const MAX_PAGE_ORDER = { '64k': 8, '4k': 12 } as const;
/** Where the 32-bit MMIO window starts on the PHBs skiboot sets up (ioda.m32_pci_base). */
const M32_PCI_BASE = 0x8000_0000;

export class Machine {
  readonly log = new EventLog();
  readonly mem: PhysMemory;
  readonly phbs: Phb[] = [];
  readonly opal: Opal;
  readonly klog: KernelLog;
  readonly pnvPhbs: PnvPhb[] = [];
  readonly ioda: PnvIoda2;
  /** pseries: the hypervisor and the guest's LPAR IOMMU (null on PowerNV). */
  readonly papr: PaprHypervisor | null = null;
  readonly pseries: PseriesIommu | null = null;
  readonly devices: KPciDev[] = [];
  readonly groups: IommuGroup[] = [];
  readonly vfioGroups = new Map<number, VfioGroup>();
  readonly eeh: Eeh;
  readonly driver: SpaprTceDriver;
  readonly sys: Syscalls;
  readonly quirks: Quirks;
  readonly mmu: 'radix' | 'hash';
  readonly topology: Topology;
  /** The IOMMUFD core's view of this machine, when the kernel has one. */
  readonly iommufd: IommufdPlatform | null = null;
  private readonly iommuOps: IommuOps;
  /** driver_override of each function (the init's `vfio-pci`, or none). */
  readonly driverOverride = new Map<string, string | null>();
  /** Network interfaces of functions whose kernel driver registered one (eth0, …). */
  readonly netifs = new Map<string, string>();
  /** vfio-pci devices in cdev order (/dev/vfio/devices/vfioN). */
  private readonly cdevs: VfioDevice[] = [];
  /** Deferred kernel work (runtime PM) run at the next kernel entry. */
  private readonly deferred: (() => void)[] = [];
  /** WARN_ON_ONCE sites that already fired this boot. */
  readonly warnedOnce = new Set<string>();
  private current: Process | null = null;
  private nextTableId = 1;

  constructor(readonly opts: MachineOptions) {
    const preset = PRESETS[opts.preset];
    const pageShift = opts.pageSize === '64k' ? 16 : 12;
    this.mmu = opts.mmu ?? preset.mmu;
    this.quirks = { ...defaultQuirks(), ...opts.quirks };
    this.mem = new PhysMemory({ ramBytes: opts.ramBytes ?? 2 * GiB, pageShift, maxPageOrder: MAX_PAGE_ORDER[opts.pageSize] }, this.log);
    this.klog = new KernelLog(this.log);
    // iommu_setup() and disable_ddw_setup(), early parameters of the PowerNV and pSeries platforms.
    if (opts.iommuNoBypass && preset.platform === 'powernv') this.klog.printk('PowerNV: IOMMU bypass window disabled.');
    if (opts.disableDdw && preset.platform === 'pseries') this.klog.printk('ppc iommu: disabling ddw.');
    const topo = opts.topology ?? 'qemu';
    const recorded = preset.platform === 'pseries' ? pseriesTopology() : qemuTopology(preset.phbs);
    this.topology = topo === 'qemu' ? recorded : topo === 'tour' ? tourTopology(preset.phbs) : topo;
    for (let i = 0; i < this.topology.phbs; i++) this.phbs.push(new Phb(i, preset.phb, this.mem, this.log));
    for (const p of this.phbs) p.tceCacheEnabled = opts.tceCache ?? true;
    this.opal = new Opal(this.phbs, this.log);
    this.eeh = new Eeh(this.opal, this.klog);
    const ramTop = BigInt(this.mem.ramBytes);
    this.ioda = new PnvIoda2({
      mem: this.mem,
      klog: this.klog,
      opal: this.opal,
      log: this.log,
      memoryHotplugMax: ramTop,
      dramEnd: ramTop,
      bypassDisabled: opts.iommuNoBypass ?? false,
      staleTablePointer: this.quirks['stale-table-pointer'],
      phb3KillNoPagesLoops: this.quirks['phb3-kill-no-pages-loops'],
      busDevices: (pe) => this.busDevices(pe),
      newTableId: () => this.nextTableId++,
      current: () => this.current,
    });
    if (preset.platform === 'pseries') {
      const name = opts.hypervisor ?? 'qemu-7.2';
      const profile = HYPERVISOR_PROFILES[name];
      if (!profile) throw new Error(`hypervisor "${name}": tcelab models ${Object.keys(HYPERVISOR_PROFILES).join(', ')}`);
      const offered = { ...profile, ddw: opts.ddw ?? profile.ddw, multiTce: opts.multiTce ?? profile.multiTce };
      this.papr = new PaprHypervisor(offered, this.mem, this.log, this.topology.phbs);
      this.pseries = new PseriesIommu({
        hv: this.papr,
        mem: this.mem,
        klog: this.klog,
        log: this.log,
        quirks: this.quirks,
        memoryHotplugMax: BigInt(opts.maxmemBytes ?? 0),
        disableDdw: opts.disableDdw ?? false,
        current: () => this.current!,
        newTableId: () => this.nextTableId++,
      });
      this.eeh.enabled = profile.eehForEmulated;
    }
    // With IOMMUFD providing /dev/vfio/vfio in tcelab's design, the sPAPR container lives in IOMMUFD.
    const spaprOverIommufd = opts.iommufd === 'ppc64' && opts.vfioContainer === 'iommufd';
    this.driver = new (spaprOverIommufd ? SpaprTceIommufdDriver : SpaprTceDriver)({
      mem: this.mem,
      klog: this.klog,
      log: this.log,
      quirks: this.quirks,
      mmIommu: { mem: this.mem, log: this.log, thpShift: this.thpShift, quirks: this.quirks },
      eeh: this.eeh.enabled ? vfioEehOps(this.eeh) : noEehOps,
      current: () => this.current!,
    });
    if (opts.iommufd && preset.platform === 'pseries')
      throw new RangeError('iommufd: tcelab models IOMMUFD on PowerNV only (the RFC was built and recorded for PowerNV; a pSeries backend is not modelled)');
    this.iommuOps =
      opts.iommufd === 'rfc-2026'
        ? spaprTceRfcOps(this.quirks)
        : opts.iommufd === 'ppc64'
          ? ppc64TceOps(pageShift, (tg) => (tg instanceof Pe ? tg.tceBypassBase : (this.papr?.profile.dma64WinAddr ?? 1n << 59n)))
          : { capable: (_d, cap) => cap === IOMMU_CAP_CACHE_COHERENCY };
    if (opts.iommufd) {
      this.iommufd = {
        mem: this.mem,
        log: this.log,
        klog: this.klog,
        quirks: this.quirks,
        users: new UserStructs(),
        iopt: {
          pageSize: BigInt(this.mem.pageSize),
          hpageSize: 1n << BigInt(this.hugePageShift),
          capAtLeastPage: !this.quirks['iova-alignment-hpage-zero'],
        },
        allowUnsafeInterrupts: opts.allowUnsafeInterrupts ?? false,
        contexts: new Set(),
        // tcelab's design: a PowerNV PHB checks every MSI against the PE of the function that
        // sent it (the PE's MSI validation), so the PE's interrupts are isolated. The RFC's
        // driver claims no isolation, as the recorded kernel shows.
        isolatedMsi: opts.iommufd === 'ppc64',
      };
    }
    this.sys = new Syscalls(
      {
        iommufd: this.iommufd,
        vfioContainer: spaprOverIommufd ? 'iommufd-spapr' : (opts.vfioContainer ?? 'legacy'),
        ...(opts.iommufd === 'ppc64' && this.eeh.enabled ? { cdevEehPeOp: (g: IommuGroup, arg: IoctlArg) => vfioEehOps(this.eeh).peOp(g, arg) } : {}),
        vfioCdev: (n) => {
          const d = this.cdevs[n];
          const g = d?.kdev.group === null || !d ? undefined : this.vfioGroups.get(d.kdev.group);
          return d && g ? { device: d, group: g } : undefined;
        },
        klog: this.klog,
        log: this.log,
        pageSize: this.mem.pageSize,
        newContainer: () => {
          if (!spaprOverIommufd) return new VfioContainer(this.driver);
          const ictx = iommufdOpen(this.iommufd!);
          ictx.accountMode = 'mm';
          return new VfioContainer(this.driver, ictx);
        },
        vfioGroup: (id) => this.vfioGroups.get(id),
        deviceOpened: (d) => this.deviceOpened(d),
        deviceClosed: (d) => this.deviceClosed(d),
        runDeferred: () => this.runDeferred(),
        mmTeardown: (p) => this.mmTeardown(p),
        setCurrent: (p) => {
          this.current = p;
        },
      },
      (pid, comm) => new Process(pid, comm),
    );
    this.boot();
  }

  get pageShift(): number {
    return this.mem.pageShift;
  }

  /**
   * The huge page size the MMU offers to hugetlbfs: 16M under hash, 2M for a radix LPAR, none
   * for radix on the QEMU PowerNV machine.
   */
  get hugePageShift(): number {
    if (this.opts.hugePageShift !== undefined) return this.opts.hugePageShift;
    if (this.mmu === 'hash') return 24;
    return this.pseries ? 21 : 0;
  }

  /**
   * The transparent huge page size (0: none). has_transparent_hugepage() wants a huge page size
   * that is exactly one PMD's span: 16M under hash with 64K pages (PMD_SHIFT 24), 2M under radix
   * (PMD_SHIFT 21) where the MMU offers 2M. Hash with 4K pages has 2M PMDs and only 16M huge
   * pages, so no THP.
   */
  get thpShift(): number {
    if (this.opts.hugePageShift !== undefined) return this.opts.hugePageShift;
    const pmdShift = this.mmu === 'hash' && this.mem.pageShift === 16 ? 24 : 21;
    return this.hugePageShift === pmdShift ? pmdShift : 0;
  }

  private busDevices(pe: Pe): KPciDev[] {
    return this.devices.filter((d) => {
      if (d.hw.phb.index !== pe.phb.globalNumber) return false;
      if (d.hw.spec.addr.bus === pe.pbus) return true;
      return (pe.flags & PNV_IODA_PE_BUS_ALL) !== 0 && d.hw.spec.addr.bus > (pe.pbus ?? 0);
    });
  }

  /** PCI probe, then the platform's DMA setup, in the order the kernel does it at boot. */
  private boot(): void {
    for (const spec of this.topology.devices) {
      if (!this.phbs[spec.addr.domain])
        throw new Error(
          `topology: device ${spec.addr.domain}:${spec.addr.bus} is on PHB ${spec.addr.domain}, but ${this.opts.preset} has ${this.phbs.length} PHBs`,
        );
    }
    const order = (a: PciFunctionSpec) => ((a.addr.domain * 256 + a.addr.bus) * 32 + a.addr.dev) * 8 + a.addr.fn;
    const specs = [...this.topology.devices].sort((a, b) => order(a) - order(b));
    for (const spec of specs) this.devices.push(new KPciDev(new PciFunction(spec, this.phbs[spec.addr.domain]!)));
    if (this.papr && this.pseries) bootPseries(this, this.papr, this.pseries);
    else this.bootPowernv();
    if (this.opts.builtinDrivers?.includes('e1000e'))
      for (const d of this.devices) if (d.hw.spec.vendor === 0x8086 && d.hw.spec.device === 0x10d3) d.command |= 0x0002;
  }

  /** PowerNV: a PE per bus (pnv_pci_configure_bus()), its DMA setup and its group. */
  private bootPowernv(): void {
    for (const hw of this.phbs) {
      const pphb = new PnvPhb(hw, M32_PCI_BASE);
      this.pnvPhbs.push(pphb);
      const dom = hw.index.toString(16).padStart(4, '0');
      // pnv_pci_configure_bus(): the root bus (holding the root port) gets a PE; it carries no DMA.
      const root = pphb.allocPe()!;
      this.configureBusMessages(dom, 0, root, [`${dom}:00:00.0`]);
      const onPhb = this.devices.filter((d) => d.hw.phb === hw);
      const buses = [...new Set(onPhb.map((d) => d.hw.spec.addr.bus))].sort((a, b) => a - b);
      const covered = new Set<number>();
      for (const bus of buses) {
        if (covered.has(bus)) continue;
        const devs = onPhb.filter((d) => d.hw.spec.addr.bus === bus);
        // Behind a PCIe-to-PCI bridge the secondary bus and everything below form one PE.
        const all = devs.some((d) => d.isBridge);
        const members = all ? onPhb.filter((d) => d.hw.spec.addr.bus >= bus) : devs;
        if (all) for (const d of members) covered.add(d.hw.spec.addr.bus);
        let num: number | null;
        if (members.some((d) => d.hw.spec.m64)) {
          num = pphb.nextM64Segment++;
          pphb.reservePe(num);
        } else {
          num = pphb.allocPe();
        }
        if (num === null) continue;
        const pe = new Pe(pphb, num, all ? PNV_IODA_PE_BUS_ALL : PNV_IODA_PE_BUS, null, bus, this.ioda);
        pphb.pes.set(num, pe);
        for (const d of members) {
          hw.rtt.set(d.hw.rid, num);
          pe.devices.push(d);
        }
        this.configureBusMessages(
          dom,
          bus,
          num,
          members.map((d) => d.name),
        );
        for (const d of members) this.dmaDevSetup(d, pe);
      }
    }
  }

  /** What pnv_pci_configure_bus() and pnv_ioda_setup_bus_PE() print. */
  private configureBusMessages(dom: string, bus: number, pe: number, devs: string[]): void {
    const b = bus.toString(16).padStart(2, '0');
    this.klog.printk(`pci_bus ${dom}:${b}: Configuring PE for bus`);
    this.klog.printk(
      `pci ${dom}:${b}     : [PE# ${pe.toString(16).padStart(2, '0')}] Secondary bus 0x${bus.toString(16).padStart(16, '0')} associated with PE#${pe.toString(16)}`,
    );
    for (const d of devs) this.klog.printk(`pci ${d}: Configured PE#${pe.toString(16)}`);
  }

  /** pnv_pci_ioda_dma_dev_setup() for one function. */
  private dmaDevSetup(d: KPciDev, pe: Pe): void {
    if (d.isBridge) return;
    if (!pe.dmaSetupDone) {
      this.ioda.setupDmaPe(pe);
      if (pe.dmaSetupDone && pe.groupId === null)
        this.registerGroup(
          pe,
          pe.devices.filter((x) => !x.isBridge),
        );
    }
    d.dmaOffset = pe.tceBypassBase;
    this.ioda.setTableBase(d, pe.tables[0]);
    d.group = pe.groupId;
    // The kernel driver's probe fails (-EBUSY) while a user owns the group.
    const g = pe.groupId === null ? undefined : this.groups[pe.groupId];
    d.driver = g?.ownerCnt ? null : 'kernel';
    if (pe.groupId !== null) this.klog.printk(`pci ${d.name}: Adding to iommu group ${pe.groupId}`);
  }

  /** iommu_register_group(): a new IOMMU group for a table group, and its VFIO group. */
  registerGroup(tg: TableGroup, devices: KPciDev[]): IommuGroup {
    const { platform, blocked } = tableGroupDomains(tg, this.opts.iommufd === 'ppc64' ? ppc64BlockPe : undefined);
    const g = new IommuGroup(this.groups.length, tg, devices, this.log, platform, blocked, this.iommuOps);
    tg.groupId = g.id;
    this.groups.push(g);
    this.vfioGroups.set(
      g.id,
      new VfioGroup(
        g,
        g.devices.map((x) => new VfioDevice(x, this.mem.pageSize)),
      ),
    );
    return g;
  }

  /** The table group (PowerNV PE or pSeries PE) of a function's IOMMU group. */
  tableGroupOf(d: KPciDev): TableGroup | undefined {
    return d.group === null ? undefined : this.groups[d.group]?.tableGroup;
  }

  /** The PowerNV PE of a function (none on pseries). */
  peOf(d: KPciDev): Pe | undefined {
    const num = d.hw.phb.rtt.get(d.hw.rid);
    return num === undefined ? undefined : this.pnvPhbs[d.hw.phb.index]?.pes.get(num);
  }

  device(name: string): KPciDev | undefined {
    return this.devices.find((d) => d.name === name);
  }

  /**
   * Bind a function to its kernel driver: refused with -EBUSY while VFIO owns the group
   * (iommu_device_use_default_domain()).
   */
  bindKernelDriver(name: string): number {
    const d = this.device(name);
    if (!d || d.removed) return -19;
    const g = d.group === null ? undefined : this.groups[d.group];
    const rc = g ? g.useDefaultDomain() : 0;
    if (rc) return rc;
    d.driver = 'kernel';
    return 0;
  }

  /**
   * Hot-unplug a function (pnv_pci_release_device()). A function whose VFIO device file is open
   * cannot go yet: vfio-pci's remove waits for the user to release it (-EBUSY here). The last
   * function of a PE releases the PE: its kernel window and bypass go, its PE number is freed.
   */
  hotplugRemove(name: string): number {
    const d = this.device(name);
    if (!d || d.removed) return -19;
    if (d.openCount > 0) return -16;
    const pe = this.peOf(d);
    // vfio-pci's remove (vfio_device_remove_group()) runs before the PCI core releases the
    // function: the last device of a VFIO group takes the group out of its container.
    const g = d.group === null ? undefined : this.groups[d.group];
    if (g) {
      g.devices.splice(g.devices.indexOf(d), 1);
      const vg = this.vfioGroups.get(g.id);
      if (vg) {
        vg.devices.splice(
          vg.devices.findIndex((x) => x.kdev === d),
          1,
        );
        if (!g.devices.length) {
          vg.removeLastDevice();
          this.vfioGroups.delete(g.id);
        }
      }
    }
    d.group = null;
    d.removed = true;
    d.driver = null;
    this.ioda.setTableBase(d, null);
    d.hw.phb.rtt.delete(d.hw.rid);
    if (!pe) return 0;
    if (pe.devices.every((x) => x.removed || x.isBridge)) {
      this.ioda.releasePe(pe);
      const pphb = this.pnvPhbs[pe.phb.globalNumber]!;
      pphb.pes.delete(pe.peNumber);
      pphb.peAlloc[pe.peNumber] = false;
    }
    return 0;
  }

  /** Hot-plug a function back (the PCI rescan after a removal): a fresh PE, DMA setup, a group. */
  hotplugAdd(name: string): number {
    const d = this.device(name);
    if (!d?.removed) return -17;
    const pphb = this.pnvPhbs[d.hw.phb.index]!;
    const bus = d.hw.spec.addr.bus;
    d.removed = false;
    // A PE that kept other functions takes this one back, with its group.
    let pe = [...pphb.pes.values()].find((p) => p.devices.includes(d));
    if (pe) {
      const g = pe.groupId === null ? undefined : this.groups[pe.groupId];
      if (g && !g.devices.includes(d)) g.devices.push(d);
      const vg = g && this.vfioGroups.get(g.id);
      if (vg && !vg.devices.some((x) => x.kdev === d)) vg.devices.push(new VfioDevice(d, this.mem.pageSize));
    } else {
      const num = d.hw.spec.m64 ? pphb.nextM64Segment++ : pphb.allocPe();
      if (num === null) return -28;
      pphb.reservePe(num);
      pe = new Pe(pphb, num, PNV_IODA_PE_BUS, null, bus, this.ioda);
      pphb.pes.set(num, pe);
      pe.devices.push(d);
      this.configureBusMessages(d.hw.phb.index.toString(16).padStart(4, '0'), bus, num, [d.name]);
    }
    d.hw.phb.rtt.set(d.hw.rid, pe.peNumber);
    this.dmaDevSetup(d, pe);
    return 0;
  }

  /** Bind a function to vfio-pci through driver_override, as the recording kit's init does. */
  bindVfioPci(name: string): { ret: number; group: number | null; cdev: number | null } {
    const d = this.device(name);
    if (!d || d.removed) return { ret: -19, group: null, cdev: null };
    d.driver = 'vfio-pci';
    this.driverOverride.set(d.name, 'vfio-pci');
    const vd = d.group === null ? undefined : this.vfioGroups.get(d.group)?.devices.find((x) => x.kdev === d);
    if (this.iommufd && vd && !this.cdevs.includes(vd)) this.cdevs.push(vd);
    // vfio-pci leaves an idle device in D3hot; QEMU's emulated devices refuse it.
    if (d.hw.spec.refusesD3hot && d.hw.phb.gen.idleD3hot) this.klog.printk(`vfio-pci ${d.name}: Refused to change power state from D0 to D3hot`);
    const cdev = vd ? this.cdevs.indexOf(vd) : -1;
    return { ret: 0, group: d.group, cdev: cdev >= 0 ? cdev : null };
  }

  private deviceOpened(d: VfioDevice): void {
    const k = d.kdev;
    if (k.openCount++ === 0) {
      // vfio_pci_core_enable(): pci_enable_device() turns on memory decoding, and I/O decoding for
      // a function with I/O BARs where the PHB has an I/O window (spapr PHBs do, PowerNV's do not).
      const old = k.command;
      const io = this.pseries && (k.hw.spec.bars ?? []).some((b) => b.kind === 'io') ? 0x0001 : 0;
      k.command |= 0x0002 | io;
      if (old !== k.command) this.klog.printk(`vfio-pci ${k.name}: enabling device (${hex4(old)} -> ${hex4(k.command)})`);
    }
  }

  private deviceClosed(d: VfioDevice): void {
    const k = d.kdev;
    if (--k.openCount === 0 && k.hw.spec.refusesD3hot && k.hw.phb.gen.idleD3hot) {
      this.deferred.push(() => this.klog.printk(`vfio-pci ${k.name}: Refused to change power state from D0 to D3hot`));
    }
  }

  private runDeferred(): void {
    while (this.deferred.length) this.deferred.shift()!();
  }

  /** mlock() of anonymous memory: charged to locked_vm within RLIMIT_MEMLOCK. */
  mlock(p: Process, bytes: bigint): number {
    return accountLockedVm(p, p.mm, Number(bytes / BigInt(this.mem.pageSize)), true, this.pageShift, this.log);
  }

  /** The final mmdrop(): destroy_context() warns once per boot if IOMMU memory is still listed. */
  private mmTeardown(p: Process): void {
    if (p.mm.grabs > 0 || p.mm.destroyed) return;
    p.mm.destroyed = true;
    if (p.mm.iommuGroupMemList.length && !this.warnedOnce.has('destroy_context')) {
      this.warnedOnce.add('destroy_context');
      this.klog.warn('arch/powerpc/mm/book3s64/mmu_context.c', 276, 'destroy_context', p);
    }
  }
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}
