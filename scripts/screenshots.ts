// README screenshots from the demo: `npm run screenshots [-- --demo DIR] [--out docs/screenshots]`.
// Runs `kvlens demo` into DIR when DIR/run has no manifest yet, renders the report, opens the viewer and the report in
// Debian's Chromium (playwright-core; CHROMIUM=path overrides /usr/bin/chromium) and writes
//   <out>/viewer.png           the viewer on the demo's run: photo A with its overlay, photo B with the best match marked
//   <out>/report-overview.png  the report's overview figure (every task's curve against layer, normalised to its peak)
//   <out>/report-sample.png    the report's first probe-mask sample picture (photo | prediction | ground truth)
// The capture functions are exported for the tests, which check the pictures' pixels.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildReport } from '../src/report/build.js';
import { startViewer } from '../src/viewer/server.js';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

interface Ready { body: { dataset: Record<string, string | undefined> } }
declare const document: Ready;

async function withBrowser<T>(fn: (page: import('playwright-core').Page) => Promise<T>): Promise<T> {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true, timeout: 60_000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1180, height: 640 }, deviceScaleFactor: 1 });
    return await fn(page);
  } finally {
    await browser.close();
  }
}

/** The viewer on a run directory (or store), with `overlay` on A and a point marked; a PNG of the page. */
export async function captureViewer(target: string, outPng: string, opts: { overlay?: string; view?: string } = {}): Promise<void> {
  const viewer = await startViewer(resolve(target), { port: 0 });
  try {
    await withBrowser(async (page) => {
      await page.goto(viewer.url);
      const ready = () => page.evaluate(() => Number(document.body.dataset.ready ?? 0));
      await page.waitForFunction(() => Number(document.body.dataset.ready ?? 0) >= 1, undefined, { timeout: 60_000 });
      const settle = async (act: () => Promise<unknown>) => {
        const n = await ready();
        await act();
        await page.waitForFunction((k) => Number(document.body.dataset.ready) > k, n, { timeout: 60_000 });
      };
      if (opts.view && (await page.locator(`#view option[value="${opts.view}"]`).count())) await settle(() => page.selectOption('#view', opts.view!));
      if (opts.overlay && (await page.locator(`#overlay option[value="${opts.overlay}"]:not([disabled])`).count())) {
        if ((await page.locator('#overlay').inputValue()) !== opts.overlay) await settle(() => page.selectOption('#overlay', opts.overlay!));
      }
      // A middle layer: the flow's interesting part.
      const max = Number(await page.locator('#layer').getAttribute('max'));
      if (max > 0) await settle(() => page.locator('#layer').fill(String(Math.round(max / 2))));
      // Mark a point a third of the way into photo A: B shows the similarity map and the best match.
      const box = (await page.locator('#viewA').boundingBox())!;
      await settle(() => page.mouse.click(box.x + box.width * 0.4, box.y + box.height * 0.45));
      mkdirSync(resolve(outPng, '..'), { recursive: true });
      await page.screenshot({ path: outPng });
    });
  } finally {
    await viewer.close();
  }
}

/** The report's overview figure (figure[data-plot="overview-all-tasks"]), as the browser shows it. */
export async function captureReportOverview(reportHtml: string, outPng: string): Promise<void> {
  await captureReportFigure(reportHtml, 'figure[data-plot="overview-all-tasks"]', outPng);
}

/** One element of the report (the first match of `selector`), as the browser shows it. */
export async function captureReportFigure(reportHtml: string, selector: string, outPng: string): Promise<void> {
  await withBrowser(async (page) => {
    await page.goto(pathToFileURL(resolve(reportHtml)).href);
    mkdirSync(resolve(outPng, '..'), { recursive: true });
    await page.locator(selector).first().screenshot({ path: outPng });
  });
}

async function main(argv: string[]): Promise<number> {
  const arg = (name: string, dflt: string) => {
    const i = argv.indexOf(name);
    return i >= 0 && argv[i + 1] ? argv[i + 1] : dflt;
  };
  const demo = resolve(arg('--demo', 'demo-run'));
  const out = resolve(arg('--out', 'docs/screenshots'));
  if (!existsSync(CHROMIUM)) {
    console.error(`screenshots: ${CHROMIUM} not found (apt-get install chromium, or set CHROMIUM=...)`);
    return 2;
  }
  const runDir = join(demo, 'run');
  if (!existsSync(join(runDir, 'manifest.json'))) {
    console.error(`screenshots: no demo run in ${demo}; running kvlens demo --out ${demo}`);
    const r = spawnSync(process.execPath, [resolve('bin/kvlens.js'), 'demo', '--out', demo], { stdio: 'inherit' });
    if (r.status !== 0) return r.status ?? 1;
  }
  const report = join(runDir, 'report', 'report.html');
  await buildReport(runDir, { out: report });
  await captureViewer(runDir, join(out, 'viewer.png'), { overlay: 'mask', view: 'highres' });
  await captureReportOverview(report, join(out, 'report-overview.png'));
  await captureReportFigure(report, '#samples figure[data-sample^="mask-"]', join(out, 'report-sample.png'));
  console.log(`wrote ${join(out, 'viewer.png')}, ${join(out, 'report-overview.png')} and ${join(out, 'report-sample.png')}`);
  return 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then((c) => { process.exitCode = c; }, (e: unknown) => {
    console.error(`screenshots: ${(e as Error).message}`);
    process.exitCode = 1;
  });
}
