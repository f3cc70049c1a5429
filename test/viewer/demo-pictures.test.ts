// The demo's OWN run in Chromium (issue 16): the flow step of `kvlens demo` writes probe masks, text -> image attention
// and sample pictures; the viewer draws the mask and attention overlays on the photo and the report shows the sample
// pictures — checked by their pixels (screenshots), not by DOM presence. Skipped with a message without Chromium.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runSuite } from '../../src/experiments/suite.js';
import { startViewer } from '../../src/viewer/server.js';
import { CHROMIUM, openViewerPage, shot, type Shot } from './chromium-page.js';


/** Share of sampled pixels where two screenshots differ by more than `tol` in some channel. */
function differing(a: Shot, b: Shot, tol = 30): number {
  let n = 0, d = 0;
  for (let y = 2; y < a.height; y += 4) {
    for (let x = 2; x < a.width; x += 4) {
      n++;
      const p = a.px(x, y), q = b.px(x, y);
      if (p.some((v, i) => Math.abs(v - q[i]) > tol)) d++;
    }
  }
  return d / n;
}

/** Count of sampled pixels matching a predicate. */
function count(s: Shot, f: (p: [number, number, number]) => boolean, x0 = 0, x1 = s.width): number {
  let n = 0;
  for (let y = 1; y < s.height; y += 2) for (let x = x0 + 1; x < x1; x += 2) if (f(s.px(x, y))) n++;
  return n;
}

test('the demo\'s own run in Chromium: mask and attention overlays on the photo; the report\'s sample pictures', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} not found — skipped`, timeout: 300_000 }, async () => {
  const base = mkdtempSync(join(tmpdir(), 'kvlens-demo-pictures-'));
  const suite = await runSuite({ out: join(base, 'demo'), seed: 2, threads: 1, experiments: ['flow'], sizes: { pascal5i: 10, spair: 3 } });
  const viewer = await startViewer(suite.runDir, { port: 0 });
  const { browser, page, errors, settle, grab: grabId } = await openViewerPage(viewer.url, join(base, 'profile'), { width: 1400, height: 900 });
  try {
    const grab = () => grabId('viewA');
    const caption = async () => (await page.locator('#captionA').textContent()) ?? '';

    // The run wrote masks: the probe mask is the default overlay, on the first pictured image.
    assert.equal(await page.locator('#overlay').inputValue(), 'mask');
    await settle(() => page.locator('#opacity').fill('100'));
    await settle(() => page.locator('#layer').fill('3'));
    assert.match(await caption(), /probe mask \(fewshot-seg: .*\) vs ground truth, layer \d+, \d+×\d+ grid/);
    const mask = await grab();
    await settle(() => page.selectOption('#overlay', 'none'));
    const photo = await grab();
    // the photo itself is there (synthetic scenes: textured background, coloured shapes), not a blank canvas
    assert.ok(count(photo, (p) => p.some((v) => v > 40)) > 100, 'photo pixels');
    // the mask overlay changes the picture: red predicted foreground and/or the green ground-truth outline
    const maskPixels = count(mask, ([r, g, b]) => (r > 150 && g < 110 && b < 110) || (g > 180 && r < 120 && b < 120));
    assert.ok(maskPixels > 20, `red/green mask pixels: ${maskPixels}`);
    assert.ok(differing(mask, photo) > 0.005, `mask overlay differs from the photo at ${differing(mask, photo)}`);

    // Attention from the extraction prompt's last token to the image, on the photo.
    await settle(() => page.selectOption('#overlay', 'attention'));
    assert.match(await caption(), /attention from ".*" to the image, layer \d+/);
    assert.doesNotMatch(await caption(), /not available/);
    const att = await grab();
    assert.ok(differing(att, photo) > 0.3, `attention overlay covers the photo: ${differing(att, photo)}`);
    assert.deepEqual(errors, []);

    // The report: every sample picture is drawn (a mask sample: photo | red prediction | green truth).
    await page.goto(pathToFileURL(suite.report.html).href);
    const figures = page.locator('#samples figure');
    assert.equal(await figures.count(), 8, '4 mask + 4 attention pictures');
    const maskFig = shot(await page.locator('#samples figure[data-sample^="mask-"] img').first().screenshot());
    const third = Math.floor(maskFig.width / 3);
    assert.ok(count(maskFig, (p) => p.some((v) => v > 40), 0, third) > 100, 'the photo panel is not blank');
    const red = count(maskFig, ([r, g, b]) => r > 120 && r > g + 40 && r > b + 40, third, 2 * third);
    const green = count(maskFig, ([r, g, b]) => g > 120 && g > r + 40 && g > b + 20, 2 * third, maskFig.width);
    assert.ok(red + green > 10, `prediction (red ${red}) / ground truth (green ${green}) pixels`);
    const attFig = shot(await page.locator('#samples figure[data-sample^="attention-"] img').first().screenshot());
    assert.ok(count(attFig, ([r, g, b]) => Math.abs(r - g) + Math.abs(g - b) > 60, Math.floor(attFig.width / 3)) > 100, 'attention colours drawn');
  } finally {
    await browser.close();
    await viewer.close();
    rmSync(base, { recursive: true, force: true });
  }
});
