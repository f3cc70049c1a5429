// End-to-end: drive the viewer page in Debian's Chromium (playwright-core, no downloaded browser). Skipped with a
// message when /usr/bin/chromium is absent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startViewer } from '../../src/viewer/server.js';
import { writeSyntheticRun } from '../results/synthetic-run.js';
import { COLS, ROWS, writeFixtureStore } from './store-fixture.js';

const CHROMIUM = '/usr/bin/chromium';

// The callbacks given to page.evaluate/waitForFunction run in the browser; this project compiles without the DOM lib,
// so the little of it they touch is declared here.
interface PageElement { toDataURL(): string; textContent: string | null }
declare const document: { body: { dataset: Record<string, string | undefined> }; getElementById(id: string): PageElement | null };

test('viewer in Chromium: layer slider and token click change the pictures', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (apt-get install chromium) — viewer e2e skipped`, timeout: 120_000 }, async () => {
  const { chromium } = await import('playwright-core');
  const base = await mkdtemp(join(tmpdir(), 'kvlens-e2e-'));
  const profile = join(base, 'profile');
  const runDir = join(base, 'run');
  await writeSyntheticRun(runDir, { layers: 4, gridRows: ROWS, gridCols: COLS, imageIds: ['img/0000.jpg'] });
  writeFixtureStore(join(base, 'store'), 3);
  await symlink(join(base, 'store'), join(runDir, 'store'));
  const viewer = await startViewer(runDir, { port: 0 });
  // A persistent context is how playwright takes a fresh --user-data-dir (passing it in args is refused).
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, timeout: 60_000, viewport: { width: 1400, height: 700 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = browser.pages()[0] ?? (await browser.newPage());
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(viewer.url);
    await page.waitForFunction(() => Number(document.body.dataset.ready ?? 0) >= 1);
    const pixels = (id: string) => page.evaluate((cid) => document.getElementById(cid)!.toDataURL(), id);
    const a0 = await pixels('viewA');
    const overlay0 = await pixels('overlayA');

    // Move the layer slider to the last layer: the PCA picture and the mask overlay change.
    const ready = Number(await page.evaluate(() => document.body.dataset.ready));
    await page.locator('#layer').fill('3');
    await page.waitForFunction((n) => Number(document.body.dataset.ready) > n, ready);
    assert.equal(await page.locator('#layerOut').textContent(), '3');
    assert.notEqual(await pixels('viewA'), a0, 'PCA picture changed with the layer');
    assert.notEqual(await pixels('overlayA'), overlay0, 'mask overlay changed with the layer');

    // Click token (2, 2) of image A: image B shows the cosine map with the best match ringed.
    const b0 = await pixels('viewB');
    const box = (await page.locator('#viewA').boundingBox())!;
    const cell = box.width / COLS;
    const ready2 = Number(await page.evaluate(() => document.body.dataset.ready));
    await page.mouse.click(box.x + 2.5 * cell, box.y + 2.5 * cell);
    await page.waitForFunction((n) => Number(document.body.dataset.ready) > n, ready2);
    assert.notEqual(await pixels('viewB'), b0, 'match view changed after the click');
    // A is image 0 and B image 1 (= image 0 shifted one column), so token (2, 2) of A matches (2, 1) of B.
    assert.match((await page.locator('#matchNote').textContent()) ?? '', /best match \(2, 1\)/);

    // Key-variance overlay draws too.
    await page.selectOption('#overlay', 'keyvar');
    await page.waitForFunction(() => /below τ/.test(document.getElementById('overlayNote')?.textContent ?? ''));
    const shot = join(tmpdir(), 'kvlens-viewer-e2e.png');
    await page.screenshot({ path: shot });
    console.log(`viewer screenshot: ${shot}`);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await viewer.close();
    await rm(base, { recursive: true, force: true });
  }
});
