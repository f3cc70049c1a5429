// End-to-end: drive the viewer page in Debian's Chromium (playwright-core, no downloaded browser) and check the
// pictures by their pixels: the photo is under every overlay (a screenshot at 60% opacity is the blend of the photo-only
// and overlay-only screenshots), thumbnails load, a click on A marks the best match on B. Skipped with a message when
// /usr/bin/chromium is absent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startViewer } from '../../src/viewer/server.js';
import { writeSyntheticRun } from '../results/synthetic-run.js';
import { COLS, ROWS, writeFixtureStore } from './store-fixture.js';
import { CHROMIUM, openViewerPage } from './chromium-page.js';

// The callbacks given to page.evaluate/waitForFunction run in the browser; this project compiles without the DOM lib,
// so the little of it they touch is declared here.
interface PageElement { textContent: string | null; dataset: Record<string, string | undefined>; naturalWidth?: number; width?: number; height?: number }
declare const document: {
  body: { dataset: Record<string, string | undefined> };
  getElementById(id: string): PageElement | null;
  querySelectorAll(sel: string): ArrayLike<PageElement>;
};

const near = (a: number[], b: number[], tol: number) => a.every((v, i) => Math.abs(v - b[i]) <= tol);

test('viewer in Chromium: the photo under every overlay, thumbnails, a click on A marks the best match on B', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (apt-get install chromium) — viewer e2e skipped`, timeout: 180_000 }, async () => {
  const base = await mkdtemp(join(tmpdir(), 'kvlens-e2e-'));
  const profile = join(base, 'profile');
  const runDir = join(base, 'run');
  await writeSyntheticRun(runDir, { layers: 4, gridRows: ROWS, gridCols: COLS, imageIds: ['img/0000.jpg'] });
  writeFixtureStore(join(base, 'store'), 3, undefined, join(base, 'photos'));
  await symlink(join(base, 'store'), join(runDir, 'store'));
  const viewer = await startViewer(runDir, { port: 0 });
  const { browser, page, errors, settle, grab } = await openViewerPage(viewer.url, profile, { width: 1400, height: 800 });
  try {
    const text = async (id: string) => (await page.locator(`#${id}`).textContent()) ?? '';

    // The run wrote masks, so the probe mask is the default overlay; the caption names the task and layer.
    assert.equal(await page.locator('#overlay').inputValue(), 'mask');
    assert.match(await text('captionA'), /probe mask .* vs ground truth, layer 0/);
    assert.match((await page.locator('#scaleA .what').textContent()) ?? '', /predicted foreground probability; green outline: ground truth/);

    // Photo only: the 480x360 photo fills a 384x288 canvas (aspect kept): blue-green background, orange disc.
    await settle(() => page.selectOption('#overlay', 'none'));
    const photo = await grab('viewA');
    assert.equal(photo.width, 384);
    assert.equal(photo.height, 288);
    const disc = photo.px(Math.round(384 * 0.35), 144);
    const sky = photo.px(370, 10);
    assert.ok(near(disc, [250, 140, 30], 25), `disc pixel ${disc}`);
    assert.ok(sky[2] > 100 && sky[0] < 90, `background pixel ${sky}`);

    // PCA overlay at 100% hides the photo; at 60% every pixel is the blend 0.4 photo + 0.6 overlay: the photo is under it.
    await settle(() => page.selectOption('#overlay', 'pca'));
    assert.match(await text('captionA'), /PCA → RGB of lm\.0\.attn\.v \(values\), layer 0, base view 6×6/);
    await settle(() => page.locator('#opacity').fill('100'));
    const overlay = await grab('viewA');
    await settle(() => page.locator('#opacity').fill('60'));
    const blend = await grab('viewA');
    let checked = 0;
    let photoDiffers = 0;
    for (let y = 8; y < 288; y += 16) {
      for (let x = 8; x < 384; x += 16) {
        const [p, o, b] = [photo.px(x, y), overlay.px(x, y), blend.px(x, y)];
        if (Math.hypot(x - 384 * 0.35, y - 144) < 30) continue; // the point marker sits at the centre token
        const expected = p.map((v, i) => 0.4 * v + 0.6 * o[i]);
        assert.ok(near(b, expected, 8), `(${x},${y}): blend ${b}, photo ${p}, overlay ${o}`);
        if (!near(b, o, 12)) photoDiffers++;
        checked++;
      }
    }
    assert.ok(photoDiffers > checked / 2, `the photo shows through the overlay at ${photoDiffers}/${checked} points`);

    // The layer slider changes the overlay.
    await settle(() => page.locator('#layer').fill('3'));
    assert.equal(await page.locator('#layerOut').textContent(), '3');
    assert.notDeepEqual((await grab('viewA')).px(200, 200), blend.px(200, 200));
    assert.match(await text('captionA'), /lm\.3\.attn\.v \(values\), layer 3/);

    // Keys are named as keys.
    await settle(async () => { await page.selectOption('#tap', 'attn.k'); });
    assert.match(await text('captionA'), /lm\.3\.attn\.k \(keys \(post-RoPE\)\)/);
    await settle(async () => { await page.selectOption('#tap', 'attn.v'); });

    // Thumbnails: one per listed image, decoded by the browser.
    await page.waitForFunction(() => Array.from(document.querySelectorAll('#images img')).every((i) => (i.naturalWidth ?? 0) > 0));
    assert.equal(await page.locator('#images img').count(), 3);

    // Click token (2, 2) of image A: B (image 1 = image 0 shifted one column) shows photo + cosine map, best match (2, 1) marked.
    const box = (await page.locator('#viewA').boundingBox())!;
    await settle(() => page.mouse.click(box.x + 2.5 * (box.width / COLS), box.y + 2.5 * (box.height / ROWS)));
    assert.match(await text('matchNote'), /token \(2, 2\) of A → best match \(2, 1\) in B/);
    assert.match((await page.locator('#scaleB .what').textContent()) ?? '', /cosine similarity/);
    const b = await grab('viewB');
    assert.equal(b.height, 288);
    // the orange best-match marker is drawn around the centre of cell (2, 1)
    const cx = Math.round(1.5 * (384 / COLS));
    const cy = Math.round(2.5 * (288 / ROWS));
    let orange = 0;
    for (let dy = -30; dy <= 30; dy++) for (let dx = -30; dx <= 30; dx++) if (near(b.px(cx + dx, cy + dy), [255, 90, 54], 40)) orange++;
    assert.ok(orange > 40, `best-match marker pixels: ${orange}`);

    // Similarity overlay on A, key variance and attention all draw with a colour scale.
    await settle(() => page.selectOption('#overlay', 'similarity'));
    assert.match((await page.locator('#scaleA .what').textContent()) ?? '', /cosine similarity to the marked token/);
    await settle(() => page.selectOption('#overlay', 'keyvar'));
    assert.match((await page.locator('#scaleA .what').textContent()) ?? '', /below τ/);
    await settle(() => page.selectOption('#overlay', 'attention'));
    assert.match((await page.locator('#scaleA .what').textContent()) ?? '', /attention probability/);
    assert.match(await text('captionA'), /attention from ".*" to the image, layer 3/);
    const att = await grab('viewA');
    assert.notDeepEqual(att.px(100, 100), photo.px(100, 100));

    // The grid selector lists the store's views.
    assert.deepEqual(await page.locator('#view option').allTextContents(), ['base view']);

    const out = join(tmpdir(), 'kvlens-viewer-e2e.png');
    await page.screenshot({ path: out });
    console.log(`viewer screenshot: ${out}`);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await viewer.close();
    await rm(base, { recursive: true, force: true });
  }
});
