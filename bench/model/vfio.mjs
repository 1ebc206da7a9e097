// A VFIO sPAPR v2 session on a modelled machine through the binary ABI (Machine.sys.ioctl), as
// test/vfio/quirks.test.ts drives it: container, group 0 attached, v2 IOMMU, memory preregistered.
import { load } from './common.mjs';

const { Machine } = await load('machine/machine.js');
const V = await load('kernel/include/uapi/linux/vfio.js');

export { V };

export function vfioV2({ ramBytes, buf, bufSize, regSize = bufSize, machine = {} }) {
  const m = new Machine({ preset: 'powernv9', pageSize: '64k', ramBytes, ...machine });
  m.bindVfioPci('0000:01:00.0');
  const p = m.sys.spawn('bench');
  p.mm.mappings.push({ start: buf, end: buf + bufSize, kind: 'anon' });
  const c = m.sys.open(p.pid, '/dev/vfio/vfio').ret;
  const g = m.sys.open(p.pid, '/dev/vfio/0').ret;
  const fd = new Uint8Array(4);
  new DataView(fd.buffer).setInt32(0, c, true);
  const io = (req, arg) => m.sys.ioctl(p.pid, c, req, arg);
  const must = (what, r) => {
    if (r.ret < 0) throw new Error(`${what}: errno ${r.errno}`);
    return r;
  };
  must('GROUP_SET_CONTAINER', m.sys.ioctl(p.pid, g, V.VFIO_GROUP_SET_CONTAINER, fd));
  must('SET_IOMMU', io(V.VFIO_SET_IOMMU, 7n));
  must('REGISTER_MEMORY', io(V.VFIO_IOMMU_SPAPR_REGISTER_MEMORY, V.encode('vfio_iommu_spapr_register_memory', { argsz: 24, vaddr: buf, size: regSize })));
  const createWindow = (pageShift, windowSize, levels) => {
    const arg = V.encode('vfio_iommu_spapr_tce_create', { argsz: 40, page_shift: pageShift, window_size: windowSize, levels });
    must('TCE_CREATE', io(V.VFIO_IOMMU_SPAPR_TCE_CREATE, arg));
    return V.decode('vfio_iommu_spapr_tce_create', arg).start_addr;
  };
  const removeWindow = (start) => must('TCE_REMOVE', io(V.VFIO_IOMMU_SPAPR_TCE_REMOVE, V.encode('vfio_iommu_spapr_tce_remove', { argsz: 16, start_addr: start })));
  const mapArg = (iova, vaddr, size) => V.encode('vfio_iommu_type1_dma_map', { argsz: 32, flags: 3, vaddr, iova, size });
  const unmapArg = (iova, size) => V.encode('vfio_iommu_type1_dma_unmap', { argsz: 24, iova, size });
  return { m, p, c, io, must, createWindow, removeWindow, mapArg, unmapArg };
}
