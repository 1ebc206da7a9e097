/**
 * The real kernel's bugs and oddities that tcelab reproduces by default where Linux 6.12 shows
 * them. Each has a name; a machine option turns it off to show the fixed behaviour.
 */
export const QUIRKS = {
  'unaligned-iova-returns-1': {
    default: true,
    source: 'iommu_tce_put_param_check / iommu_tce_clear_param_check are `A || B` macros',
    what: 'MAP_DMA/UNMAP_DMA with a misaligned IOVA return 1 instead of -EINVAL (fixed: -EINVAL)',
  },
  'no-end-of-window-check': {
    default: true,
    source: 'iommu_tce_check_ioba() checks only the first IOMMU page',
    what: 'MAP/UNMAP that run past the end of a window are accepted (fixed: -EINVAL)',
  },
  'create-locked-vm-leak': {
    default: true,
    source: 'tce_iommu_create_table() accounts locked_vm before create_table() and never gives it back on failure',
    what: 'a failed TCE_CREATE leaks its table size in locked_vm (fixed: the charge is returned)',
  },
  'unregister-while-mapped': {
    default: true,
    source: 'tce_iommu_unregister_pages() ignores the -EBUSY of the final mm_iommu_put()',
    what: 'UNREGISTER_MEMORY of a region that still has TCEs returns 0 and leaves it pinned (fixed: -EBUSY)',
  },
  'remove-any-address': {
    default: true,
    source: 'tce_iommu_remove_window() looks the window up with tce_iommu_find_table()',
    what: 'TCE_REMOVE removes the window containing start_addr, not only one starting there (fixed: -EINVAL)',
  },
  'v1-pin-write': {
    default: true,
    source: 'tce_iommu_use_page() derives the direction from the user address, which has no R/W bits',
    what: 'v1 MAP_DMA pins with FOLL_WRITE even for a read-only mapping, so it fails with -EFAULT (fixed: read-only maps pin read-only)',
  },
  'failed-ddw-sticky': {
    default: true,
    source: 'pSeries spapr_tce_create_table()/spapr_tce_unset_window() add the PE to failed_ddw_pdn_list, which is never cleared',
    what: 'after one failed RTAS create every window of that PE fails with -ENODEV until reboot (fixed: VFIO windows ignore the list)',
  },
  'default-window-kept-by-hypervisor': {
    default: true,
    source: 'pSeries remove_dma_window_named() calls ibm,remove-pe-dma-window only for a property as long as struct dynamic_dma_window_prop',
    what: 'removing the default window drops the property but the hypervisor keeps the window, so userspace gets one DDW (fixed: RTAS remove)',
  },
  'unchecked-userspace-view': {
    default: true,
    source: 'pSeries spapr_tce_create_table() ignores the -ENOMEM of pseries_tce_iommu_userspace_view_alloc()',
    what: 'a TCE_CREATE whose userspace view vzalloc() fails returns 0; the next MAP_DMA into it oopses in tce_iommu_ioctl (fixed: -ENOMEM)',
  },
  'missing-tce-kill': {
    default: false,
    source: 'not in 6.12: a kernel whose VFIO unmap path drops the iommu_tce_kill() after exchanging TCEs out',
    what: 'UNMAP_DMA clears TCEs in memory but the PHB keeps serving the old translations from its TCE cache',
  },
  'stale-table-pointer': {
    default: false,
    source: 'before db08e1d53034 (2017) ownership changes did not update the table pointer of bus-PE devices',
    what: 'a device of a bus PE keeps its boot-time table pointer after VFIO; its next 32-bit DMA uses a freed table',
  },
} as const;

export type QuirkName = keyof typeof QUIRKS;
export type Quirks = Record<QuirkName, boolean>;

export function defaultQuirks(): Quirks {
  const q = {} as Quirks;
  for (const [k, v] of Object.entries(QUIRKS)) q[k as QuirkName] = v.default;
  return q;
}

export function isQuirkName(s: string): s is QuirkName {
  return s in QUIRKS;
}
