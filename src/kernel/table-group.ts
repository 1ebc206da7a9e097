/** struct iommu_table_group and iommu_table_group_ops: one per PE, two windows (tables[0..1]). */
import type { IommuTable } from './iommu-table.js';
import type { KPciDev } from './pci.js';

export const IOMMU_TABLE_GROUP_MAX_TABLES = 2;

export interface TableGroupOps {
  /** Bytes VFIO charges to locked_vm for a table; 0 = invalid request. */
  getTableSize(pageShift: number, windowSize: bigint, levels: number): number;
  /** Allocate a table for window `num` (with a userspace view); returns -errno or the table. */
  createTable(tg: TableGroup, num: number, pageShift: number, windowSize: bigint, levels: number): number | IommuTable;
  setWindow(tg: TableGroup, num: number, tbl: IommuTable): number;
  unsetWindow(tg: TableGroup, num: number): number;
  takeOwnership(tg: TableGroup, dev: string): number;
  releaseOwnership(tg: TableGroup, dev: string): void;
}

export interface TableGroup {
  tce32Start: number;
  tce32Size: number;
  /** Bitmap of supported IOMMU page sizes, in bytes (SZ_4K | SZ_64K | ...). */
  pgsizes: bigint;
  maxDynamicWindowsSupported: number;
  maxLevels: number;
  tables: [IommuTable | null, IommuTable | null];
  ops: TableGroupOps;
  /** The iommu_group number, once registered. */
  groupId: number | null;
  /** A name for logs and reports ("PHB0 PE#1fd"). */
  readonly label: string;
}

/** The struct iommu_table_group fields every platform's PE carries, and the functions it holds. */
export abstract class TableGroupBase implements TableGroup {
  tce32Start = 0;
  tce32Size = 0;
  pgsizes = 0n;
  maxDynamicWindowsSupported = 0;
  maxLevels = 0;
  tables: [IommuTable | null, IommuTable | null] = [null, null];
  groupId: number | null = null;
  /** The functions whose DMA this PE carries (device_count). */
  readonly devices: KPciDev[] = [];
  abstract readonly ops: TableGroupOps;
  abstract get label(): string;
}
