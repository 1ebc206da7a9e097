// B6 ioctl path, in process: VFIO_IOMMU_MAP_DMA then VFIO_IOMMU_UNMAP_DMA of one 64K page
// through Machine.sys.ioctl (the binary ABI: encoded structs, fd table, container dispatch,
// decode, checks, tce_iommu_build_v2 / tce_iommu_clear, kill) into a 64K-page DDW, cycling
// over 1024 IOVAs and user pages. The argument buffers are encoded once, as a C caller keeps its
// structs. Work = ioctl calls (2 per page).
import { V, vfioV2 } from './vfio.mjs';

const BUF = 0x1000_0000n;
const SLOTS = 1024;

export async function setup({ pairs = 50000 }) {
  const size = BigInt(SLOTS) * 65536n;
  const s = vfioV2({ ramBytes: 2 * 2 ** 30, buf: BUF, bufSize: size });
  const start = s.createWindow(16, 2n ** 32n, 2);
  const maps = [];
  const unmaps = [];
  for (let k = 0; k < SLOTS; k++) {
    maps.push(s.mapArg(start + BigInt(k) * 65536n, BUF + BigInt(k) * 65536n, 65536n));
    unmaps.push(s.unmapArg(start + BigInt(k) * 65536n, 65536n));
  }
  const { sys } = s.m;
  const pid = s.p.pid;
  const fd = s.c;
  const run = () => {
    let bad = 0;
    for (let i = 0; i < pairs; i++) {
      const k = i & (SLOTS - 1);
      if (sys.ioctl(pid, fd, V.VFIO_IOMMU_MAP_DMA, maps[k]).ret !== 0) bad++;
      if (sys.ioctl(pid, fd, V.VFIO_IOMMU_UNMAP_DMA, unmaps[k]).ret !== 0) bad++;
    }
    if (bad) throw new Error(`B6: ${bad} calls failed`);
    return { work: 2 * pairs, check: 2 * pairs - bad };
  };
  return { run };
}
