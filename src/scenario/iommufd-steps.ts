/**
 * The `iommufd` scenario step: one /dev/iommu command or device-cdev ioctl, its struct built
 * from named fields. A field may name a value an earlier step kept with `as` (an object id or
 * an IOVA). `ranges` gives ALLOW_IOVAS its array; `ppc64` gives HWPT_ALLOC tcelab's PPC64 TCE
 * driver data. The step's `data` is the command's answer: the new id, the IOVA, the ranges.
 */
import { errnoName } from '../base/errno.js';
import * as I from '../kernel/include/uapi/linux/iommufd.js';
import { getField, setField } from '../kernel/include/uapi/linux/vfio.js';
import { IOMMU_HWPT_DATA_PPC64_TCE, PPC64_TCE_DATA_SIZE, PPC64_TCE_WINDOW_DDW, PPC64_TCE_WINDOW_DMA32 } from '../kernel/ppc64-iommu.js';
import type { Process } from '../kernel/process.js';
import type { Machine } from '../machine/machine.js';

const SCRATCH = 0x7ff8_0000_0000n;

/** The requests an `iommufd` step takes, with their struct. */
export const IOMMUFD_STEP_REQUESTS: Record<string, { req: number; struct: I.IommufdStruct }> = {
  ...Object.fromEntries(Object.entries(I.IOMMUFD_IOCTLS).map(([n, v]) => [v.name, { req: Number(n), struct: v.struct }])),
  VFIO_DEVICE_BIND_IOMMUFD: { req: I.VFIO_DEVICE_BIND_IOMMUFD, struct: 'vfio_device_bind_iommufd' },
  VFIO_DEVICE_ATTACH_IOMMUFD_PT: { req: I.VFIO_DEVICE_ATTACH_IOMMUFD_PT, struct: 'vfio_device_attach_iommufd_pt' },
  VFIO_DEVICE_DETACH_IOMMUFD_PT: { req: I.VFIO_DEVICE_DETACH_IOMMUFD_PT, struct: 'vfio_device_detach_iommufd_pt' },
};

/** The out field whose value is the step's answer. */
const ANSWER: Partial<Record<I.IommufdStruct, string>> = {
  iommu_ioas_alloc: 'out_ioas_id',
  iommu_hwpt_alloc: 'out_hwpt_id',
  iommu_ioas_map: 'iova',
  iommu_ioas_copy: 'dst_iova',
  iommu_ioas_unmap: 'length',
  iommu_option: 'val64',
  iommu_vfio_ioas: 'ioas_id',
  iommu_hw_info: 'out_data_type',
  vfio_device_bind_iommufd: 'out_devid',
  vfio_device_attach_iommufd_pt: 'pt_id',
};

export interface StepContext {
  m: Machine;
  p: Process;
  /** A descriptor by the name an `open` gave it. */
  fd(name: string): number;
  /** Values kept with `as`. */
  vars: Map<string, bigint>;
}

export function iommufdStep(c: StepContext, fields: Record<string, unknown>): { ret: number; errno: string | null; data?: string } {
  const name = String(fields.request);
  const r = IOMMUFD_STEP_REQUESTS[name];
  if (!r) throw new Error(`iommufd: unknown request ${name}; expected one of ${Object.keys(IOMMUFD_STEP_REQUESTS).join(', ')}`);
  const def = I.iommufdStructs[r.struct];
  const fmap = def.fields as Record<string, { off: number; size: 1 | 2 | 4 | 8 }>;
  const buf = new Uint8Array(def.size);
  setField(buf, fmap.size ?? fmap.argsz!, def.size);
  const value = (k: string, v: unknown): bigint => {
    if (typeof v === 'string' && c.vars.has(v)) return c.vars.get(v)!;
    if (k === 'iommufd' && typeof v === 'string') return BigInt(c.fd(v));
    if (typeof v === 'number' || typeof v === 'bigint' || (typeof v === 'string' && /^(0x[0-9a-f]+|\d+)$/i.test(v))) return BigInt(v);
    throw new Error(`iommufd ${name}: field ${k} is ${JSON.stringify(v)}, neither a number nor a kept value (${[...c.vars.keys()].join(', ') || 'none kept'})`);
  };
  for (const [k, v] of Object.entries(fields)) {
    if (['fd', 'request', 'as', 'ranges', 'ppc64'].includes(k)) continue;
    if (!fmap[k]) throw new Error(`iommufd ${name}: no field "${k}" (fields: ${Object.keys(fmap).join(', ')})`);
    setField(buf, fmap[k]!, value(k, v));
  }
  if (fields.ranges !== undefined) placeRanges(c, buf, fmap, fields.ranges as unknown[][]);
  if (fields.ppc64 !== undefined) placePpc64(c, buf, fmap, fields.ppc64 as Record<string, unknown>);
  if (r.struct === 'iommu_ioas_iova_ranges' || r.struct === 'iommu_hw_info') {
    c.p.mm.user.place(SCRATCH, new Uint8Array(16 * 16));
    setField(buf, fmap[r.struct === 'iommu_hw_info' ? 'data_uptr' : 'allowed_iovas']!, SCRATCH);
    if (r.struct === 'iommu_ioas_iova_ranges' && !('num_iovas' in fields)) setField(buf, fmap.num_iovas!, 16);
    if (r.struct === 'iommu_hw_info' && !('data_len' in fields)) setField(buf, fmap.data_len!, 64);
  }
  const res = c.m.sys.ioctl(c.p.pid, c.fd(String(fields.fd)), r.req, buf);
  if (res.ret < 0) return { ret: -1, errno: errnoName(res.errno) };
  let data: string | undefined;
  if (r.struct === 'iommu_ioas_iova_ranges') data = ranges(c, Number(getField(buf, fmap.num_iovas!)));
  else if (ANSWER[r.struct]) {
    const v = getField(buf, fmap[ANSWER[r.struct]!]!);
    data = r.struct === 'iommu_ioas_map' || r.struct === 'iommu_ioas_copy' || r.struct === 'iommu_ioas_unmap' ? `0x${v.toString(16)}` : String(v);
    if (fields.as) c.vars.set(String(fields.as), v);
  }
  return { ret: res.ret, errno: null, data };
}

/** IOVA_RANGES' answer: "start-last" pairs in hex. */
function ranges(c: StepContext, n: number): string {
  const b = c.p.mm.user.read(SCRATCH, 16 * Math.min(n, 16))!;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: string[] = [];
  for (let i = 0; i < Math.min(n, 16); i++) out.push(`0x${dv.getBigUint64(16 * i, true).toString(16)}-0x${dv.getBigUint64(16 * i + 8, true).toString(16)}`);
  return out.join(',');
}

function placeRanges(c: StepContext, buf: Uint8Array, fmap: Record<string, { off: number; size: 1 | 2 | 4 | 8 }>, rs: unknown[][]): void {
  const arr = new Uint8Array(16 * Math.max(rs.length, 1));
  const dv = new DataView(arr.buffer);
  rs.forEach((x, i) => {
    dv.setBigUint64(16 * i, BigInt(x[0] as number | string), true);
    dv.setBigUint64(16 * i + 8, BigInt(x[1] as number | string), true);
  });
  c.p.mm.user.place(SCRATCH, arr);
  setField(buf, fmap.num_iovas!, rs.length);
  setField(buf, fmap.allowed_iovas!, rs.length ? SCRATCH : 0n);
}

/** struct iommu_hwpt_ppc64_tce from `ppc64: { windows: [dma32, ddw], page_shift, window_size, levels }`. */
function placePpc64(c: StepContext, buf: Uint8Array, fmap: Record<string, { off: number; size: 1 | 2 | 4 | 8 }>, o: Record<string, unknown>): void {
  const b = new Uint8Array(PPC64_TCE_DATA_SIZE);
  const dv = new DataView(b.buffer);
  const ws = (o.windows as string[] | undefined) ?? ['dma32', 'ddw'];
  dv.setUint32(0, (ws.includes('dma32') ? PPC64_TCE_WINDOW_DMA32 : 0) | (ws.includes('ddw') ? PPC64_TCE_WINDOW_DDW : 0), true);
  dv.setUint32(4, Number(o.page_shift ?? 16), true);
  dv.setBigUint64(8, BigInt((o.window_size as number | string | undefined) ?? 1n << 32n), true);
  dv.setUint32(16, Number(o.levels ?? 1), true);
  c.p.mm.user.place(SCRATCH + 0x1000n, b);
  setField(buf, fmap.data_type!, IOMMU_HWPT_DATA_PPC64_TCE);
  setField(buf, fmap.data_len!, PPC64_TCE_DATA_SIZE);
  setField(buf, fmap.data_uptr!, SCRATCH + 0x1000n);
}
