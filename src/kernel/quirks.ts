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
  'register-partial-pin-count': {
    default: true,
    source: 'mm_iommu_do_alloc() returns the positive count pin_user_pages() gave for a chunk it could not pin whole',
    what: 'REGISTER_MEMORY over memory that can be pinned only in part (a PROT_NONE or unmapped tail) returns the number of pages pinned, nothing registered (fixed: -EFAULT)',
  },
  'prereg-pageshift-sticky': {
    default: true,
    source: 'mm_iommu_do_alloc() sets its pageshift variable only at a hugetlb page and never back to PAGE_SHIFT',
    what: 'a region of hugetlb pages then small pages allows large IOMMU pages over the small ones too; their MAP_DMA fails later, -EPERM from tce_page_is_contained() (fixed: the small pages limit the region, -EINVAL)',
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
  'iova-alignment-hpage-zero': {
    default: true,
    source: 'iommufd iopt_alloc_iova() caps the IOVA alignment at HPAGE_SIZE, which is 1 on PowerPC when the MMU offers no huge page size (HPAGE_SHIFT 0)',
    what: 'with a domain attached, every IOMMU_IOAS_MAP without FIXED_IOVA fails with -EINVAL on radix PowerNV (fixed: the cap is at least PAGE_SIZE)',
  },
  'rfc-aperture-off-by-one': {
    default: true,
    source: 'PPC64 IOMMUFD RFC (2026) spapr_tce_domain_alloc_paging() sets geometry.aperture_end = 0x40000000, an inclusive end',
    what: '--iommufd rfc-2026: IOVA_RANGES reports [0, 0x40000000], one byte past the 1 GiB table (fixed: 0x3fffffff)',
  },
  'rfc-hwpt-alloc-programs-pe': {
    default: true,
    source: 'PPC64 IOMMUFD RFC spapr_tce_domain_alloc_paging() calls set_window() for the allocating device',
    what: "--iommufd rfc-2026: HWPT_ALLOC switches the device's live translation, even while it is blocked or attached elsewhere, and a close after it leaves the kernel driver without DMA (fixed: the window is programmed at attach)",
  },
  'rfc-single-device-domain': {
    default: true,
    source: 'PPC64 IOMMUFD RFC spapr_tce_iommu_attach_device() only records the device ("REVISIT: single device")',
    what: '--iommufd rfc-2026: a second PE attached to a shared HWPT gets no window (fixed: every attached PE is programmed)',
  },
  'rfc-domain-table-leak': {
    default: true,
    source: 'PPC64 IOMMUFD RFC spapr_tce_domain_free() only kfree()s the domain and never puts its iommu_table',
    what: '--iommufd rfc-2026: the TCE table (and its userspace view) of every destroyed HWPT stays allocated (fixed: the table is put)',
  },
  'rfc-inverted-direction': {
    default: true,
    source: 'PPC64 IOMMUFD RFC spapr_tce_iommu_map_pages() maps !IOMMU_WRITE to DMA_FROM_DEVICE and !IOMMU_READ to DMA_TO_DEVICE',
    what: '--iommufd rfc-2026: a READABLE-only map gives the device write access and a WRITEABLE-only map read-only access (fixed: IOMMU_WRITE allows device writes)',
  },
  'rfc-mapped-one-page': {
    default: true,
    source: 'PPC64 IOMMUFD RFC spapr_tce_iommu_map_pages() sets *mapped = pgsize instead of pgsize * pgcount',
    what: '--iommufd rfc-2026: the iommu core re-maps the rest of every run, N calls and about N*N/2 TCE writes for N pages (fixed: *mapped covers the run)',
  },
  'unchecked-userspace-view': {
    default: true,
    source: 'pSeries spapr_tce_create_table() ignores the -ENOMEM of pseries_tce_iommu_userspace_view_alloc()',
    what: 'a TCE_CREATE whose userspace view vzalloc() fails returns 0; the next MAP_DMA into it oopses in tce_iommu_ioctl (fixed: -ENOMEM)',
  },
  'phb3-kill-no-pages-loops': {
    default: true,
    source: 'pnv_pci_phb3_tce_invalidate() writes the kill register up to page index + npages - 1, unsigned',
    what: 'on PHB3 (POWER8) a TCE kill of no pages at bus address 0 (a v2 MAP_DMA that fails on its first page there) loops without end: a soft lockup, the call never returns (fixed: no pages, no writes)',
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
