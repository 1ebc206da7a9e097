// B2 bulk map: VFIO v2 MAP_DMA of 4 GiB of preregistered memory into a fresh 64K-page DDW
// (4 GiB window, 2 levels, levels allocated on demand) in one call, then UNMAP_DMA, on a machine
// with 8 GiB of modelled RAM. Each run creates the window and removes it untimed; the time is
// MAP + UNMAP, the work the TCEs written by both (2 per page).
import { V, vfioV2 } from './vfio.mjs';

const GiB = 2n ** 30n;
const BUF = 0x1_0000_0000n;

export async function setup({ mapBytes = 4 * 2 ** 30 }) {
  const size = BigInt(mapBytes);
  const s = vfioV2({ ramBytes: 8 * 2 ** 30, buf: BUF, bufSize: size });
  const window = size < 4n * GiB ? 4n * GiB : size;
  const pages = Number(size >> 16n);
  const run = () => {
    const start = s.createWindow(16, window, 2);
    const map = s.mapArg(start, BUF, size);
    const unmap = s.unmapArg(start, size);
    const t0 = process.hrtime.bigint();
    s.must('MAP_DMA', s.io(V.VFIO_IOMMU_MAP_DMA, map));
    s.must('UNMAP_DMA', s.io(V.VFIO_IOMMU_UNMAP_DMA, unmap));
    const t = Number(process.hrtime.bigint() - t0) / 1e9;
    s.removeWindow(start);
    return { t, work: 2 * pages, check: pages };
  };
  return { run, info: { pages } };
}
