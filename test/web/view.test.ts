/**
 * `tcelab view` in real Chromium (Debian's /usr/bin/chromium, headless, driven by playwright-core):
 * the page is checked through its DOM, and every view is saved as a screenshot under test-results/.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { CHROMIUM, chromiumMissing, ROOT, startView, type View } from './env.js';

const SHOTS = join(ROOT, 'test-results');
const RECORDING = join(ROOT, '../shared/oracle/recordings/p9-64k.jsonl');
const skip = chromiumMissing() ?? false;

let browser: Browser | undefined;
const views: View[] = [];

before(async () => {
  if (skip) return;
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});
after(async () => {
  await browser?.close();
  for (const v of views) await v.stop();
});

async function open(args: string[]): Promise<Page> {
  const v = await startView(args);
  views.push(v);
  const page = await browser!.newPage({ viewport: { width: 1400, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(v.url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 20_000 });
  assert.deepEqual(errors, []);
  return page;
}

async function tab(page: Page, name: string): Promise<void> {
  await page.click(`#tab-${name}`);
  await page.waitForSelector(`#view-${name}:not([hidden])`);
}

const stepLabel = (page: Page) => page.textContent('#step-label');

test('the tour: topology, both windows of a PE with their hex starts, stepping back and forward', { skip }, async () => {
  const page = await open(['view', 'examples/tour.yaml']);
  assert.match((await stepLabel(page)) ?? '', /^step 17 \/ 17/);
  // Topology: the six PHBs of the POWER9 chip, the SAS function in its PE, owned by the kernel.
  assert.equal(await page.locator('.chip .phb').count(), 6);
  const sas = page.locator('.pe', { has: page.locator('.function[data-name="0003:01:00.0"]') });
  assert.match((await sas.textContent()) ?? '', /kernel DMA/);
  await page.screenshot({ path: join(SHOTS, 'view-topology.png'), fullPage: true });

  await tab(page, 'windows');
  const pe = page.locator('.pe-windows', { hasText: '0003:01:00.0' });
  const starts = await pe.locator('.window').evaluateAll((els) => els.map((e) => e.getAttribute('data-start')));
  assert.deepEqual(starts, ['0x0', '0x800000000000000']);
  assert.match(
    (await pe.locator('.window[data-num="0"]').textContent()) ?? '',
    /^#0 0x0 · 2 GiB · IOMMU page 64 KiB · 2 levels · 32768 TCEs, \d+ allocated by the DMA API/,
  );
  assert.match((await pe.locator('.window[data-num="1"]').textContent()) ?? '', /0x800000000000000 .* bypass/);
  await page.screenshot({ path: join(SHOTS, 'view-windows.png'), fullPage: true });

  // Step back to the boot: the SAS window holds no TCE yet; forward two steps: its dma-map took one.
  for (let i = 17; i > 0; i--) await page.click('#btn-back');
  await page.waitForSelector('body[data-step="0"]');
  assert.match((await stepLabel(page)) ?? '', /^step 0 \/ 17 · boot/);
  const inUse = async () => Number(/32768 TCEs, (\d+) allocated/.exec((await pe.locator('.window[data-num="0"]').textContent()) ?? '')?.[1]);
  const atBoot = await inUse();
  await page.click('#btn-fwd');
  await page.waitForSelector('body[data-step="1"]');
  await page.click('#btn-fwd');
  await page.waitForSelector('body[data-step="2"]');
  assert.match((await stepLabel(page)) ?? '', /^step 2 \/ 17 · .*tour\.yaml:\d+ sas dma-map/);
  assert.equal(await inUse(), atBoot + 1);

  // Tables: the SAS window's table, one valid TCE, zoomed to its real address and R/W bits.
  await pe.locator('.window[data-num="0"] button.link').click();
  await page.waitForSelector('#tces tr.tce.valid');
  assert.match((await page.textContent('#table-summary')) ?? '', /1 valid/);
  const valid = await page.locator('#tces tr.tce.valid').first().locator('td').allTextContents();
  assert.equal(valid[1], '0x10000');
  assert.equal(valid[4], 'R');
  assert.equal(valid[5], 'W');
  await page.screenshot({ path: join(SHOTS, 'view-tables.png'), fullPage: true });

  await tab(page, 'timeline');
  assert.ok((await page.locator('#events .ev').count()) > 10);
  await page.uncheck('input[data-layer="hw"]');
  assert.equal(await page.locator('#events .ev.layer-hw').count(), 0);
  await page.screenshot({ path: join(SHOTS, 'view-timeline.png'), fullPage: true });
});

test('the 2017 stale table pointer: the violation is marked on the timeline and links to its cause', { skip }, async () => {
  const page = await open(['view', 'examples/stale-table-pointer.yaml', '--quirk', 'stale-table-pointer']);
  assert.equal(await page.locator('#strip .mark.violation').count(), 1);
  const marked = Number(await page.locator('#strip .mark.violation').getAttribute('data-step'));
  await tab(page, 'timeline');
  const v = page.locator('#events .ev.violation', { hasText: 'device-table-pointer-current' });
  assert.equal(await v.count(), 1);
  assert.match((await v.textContent()) ?? '', /0002:02:00\.0 points at iommu_table#\d+ \(freed\)/);
  const cause = Number(/caused by #(\d+)/.exec((await v.textContent()) ?? '')?.[1]);
  await v.locator('button.cause').click();
  // The cause is the last event before the check: in the marked step or an earlier one.
  const focus = page.locator(`#events .ev.focus[data-i="${cause}"]`);
  await focus.waitFor();
  assert.match((await focus.textContent()) ?? '', /^#\d+(kernel|hw|firmware|vfio|uapi)\./);
  assert.ok(Number(await page.getAttribute('body', 'data-step')) <= marked);
  await page.screenshot({ path: join(SHOTS, 'view-violation.png'), fullPage: true });
  await page.click(`#strip .mark[data-step="${marked}"]`);
  await page.waitForSelector(`body[data-step="${marked}"]`);
  await tab(page, 'topology');
  assert.match((await page.locator('.function[data-name="0002:02:00.0"]').textContent()) ?? '', /stale table pointer/);
});

test('a recording: the conformance diff, record by record, mismatches first', {
  skip: skip || (!existsSync(RECORDING) && `skipped: no recording at ${RECORDING} (CI checks out ../shared beside the repo)`),
}, async () => {
  const page = await open(['view', RECORDING]);
  await tab(page, 'diff');
  await page.waitForSelector('#diff-summary');
  assert.match((await page.textContent('#diff-summary')) ?? '', /^Conformance: 449 matched, 0 mismatched$/);
  assert.equal(await page.locator('tr.diff-row').count(), 449);
  assert.equal(await page.locator('tr.diff-row.mismatch').count(), 0);
  const first = await page.locator('tr.diff-row').first().locator('td').allTextContents();
  assert.match(first[1]!, /^ret /);
  assert.equal(first[1]!.replace(/^ret \S+/, ''), first[2]!.replace(/^ret \S+/, ''));
  await page.screenshot({ path: join(SHOTS, 'view-diff.png') });
});

test('IOMMUFD: the IOAS, the HWPT with both windows, the PE its domain owns, and back to the kernel', { skip }, async () => {
  const page = await open(['view', 'examples/iommufd/second-window.yaml']);
  // The last step: the device was detached and its cdev closed; the context keeps its IOAS and HWPT.
  assert.match((await stepLabel(page)) ?? '', /^step 17 \/ 17 · .*second-window\.yaml:\d+ vmm close/);
  const ctx = page.locator('.iommufd-ctx[data-ctx="1"]');
  const ioas = ctx.locator('tr.ioas');
  assert.equal(await ioas.count(), 1);
  const ioasText = (await ioas.textContent()) ?? '';
  assert.match(ioasText, /^IOAS #2/);
  assert.match(ioasText, /0x7fff0000–0x7fffffff \(64 KiB\) RWC pinned/);
  assert.match(ioasText, /0x800000000000000–0x80000000000ffff \(64 KiB\) RWC pinned/);
  assert.match(ioasText, /0x0–0x7fffffff \(2 GiB\)0x800000000000000–0x8000000ffffffff \(4 GiB\)$/);
  const hwpt = ctx.locator('tr.hwpt[data-id="3"]');
  assert.equal(await ctx.locator('tr.hwpt').count(), 1);
  assert.match((await hwpt.textContent()) ?? '', /HWPT_ALLOC.*PHB0 PE#1fd ppc64 · aperture 0x0–0x8000000ffffffff/);
  const domainStarts = await hwpt.locator('.hwpt-window').evaluateAll((els) => els.map((e) => e.getAttribute('data-start')));
  assert.deepEqual(domainStarts, ['0x0', '0x800000000000000']);
  assert.match((await hwpt.locator('td').last().textContent()) ?? '', /^none$/);
  const nic = page.locator('.pe', { has: page.locator('.function[data-name="0000:01:00.0"]') });
  assert.match((await nic.locator('.owner').textContent()) ?? '', /^kernel DMA$/);
  // The HWPT's 64-bit table belongs to no PE now; it still holds the IOAS's one 64K map.
  await hwpt.locator('.hwpt-window[data-start="0x800000000000000"] button.link').click();
  await page.waitForSelector('#table-summary');
  assert.match((await page.textContent('#table-summary')) ?? '', /^window at 0x800000000000000 · IOMMU page 64 KiB .* 1 valid · TVEs: none/);

  // Two steps back, before the detach: the PE is owned by the HWPT's domain, through both windows.
  await tab(page, 'topology');
  await page.click('#btn-back');
  await page.click('#btn-back');
  await page.waitForSelector('body[data-step="15"]');
  assert.match((await stepLabel(page)) ?? '', /^step 15 \/ 17 · .*second-window\.yaml:\d+ nic device-write/);
  assert.equal(await nic.getAttribute('class'), 'pe owner-iommufd');
  assert.match((await nic.locator('.owner').textContent()) ?? '', /^IOMMUFD domain of HWPT #3 \(iommufd #1, PHB0 PE#1fd ppc64\)$/);
  assert.match((await ctx.locator('tr.idev[data-name="0000:01:00.0"]').textContent()) ?? '', /HWPT #3$/);
  assert.match((await hwpt.locator('td').last().textContent()) ?? '', /^0000:01:00\.0$/);
  await page.screenshot({ path: join(SHOTS, 'view-iommufd.png'), fullPage: true });

  await tab(page, 'windows');
  const pe = page.locator('.pe-windows', { hasText: '0000:01:00.0' });
  assert.match((await pe.locator('.pe-head').textContent()) ?? '', /IOMMUFD domain of HWPT #3/);
  const windows = await pe.locator('.window').evaluateAll((els) => els.map((e) => `${e.getAttribute('data-kind')} ${e.getAttribute('data-start')}`));
  assert.deepEqual(windows, ['tce 0x0', 'tce 0x800000000000000']);
  for (const w of await pe.locator('.window').allTextContents()) assert.match(w, /IOMMU page 64 KiB .* domain of HWPT #3 \(iommufd #1\)/);
  await page.screenshot({ path: join(SHOTS, 'view-iommufd-windows.png'), fullPage: true });
});
