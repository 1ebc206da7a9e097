/** A VFIO user's sPAPR TCE v2 container, set up as a program does before its first window call. */
import assert from 'node:assert/strict';
import * as V from '../../src/kernel/include/uapi/linux/vfio.js';
import type { Machine } from '../../src/machine/machine.js';

/** Opens /dev/vfio/vfio and /dev/vfio/<group>, sets the group's container and SET_IOMMU v2. Returns the container fd. */
export function openV2Container(m: Machine, pid: number, group = 0): number {
  const c = m.sys.open(pid, '/dev/vfio/vfio').ret;
  const g = m.sys.open(pid, `/dev/vfio/${group}`).ret;
  const fd = new Uint8Array(4);
  new DataView(fd.buffer).setInt32(0, c, true);
  assert.equal(m.sys.ioctl(pid, g, V.VFIO_GROUP_SET_CONTAINER, fd).ret, 0);
  assert.equal(m.sys.ioctl(pid, c, V.VFIO_SET_IOMMU, BigInt(V.VFIO_SPAPR_TCE_v2_IOMMU)).ret, 0);
  return c;
}
