// One way the viewer tests open the viewer in Debian's Chromium (playwright-core, no downloaded browser) and read
// screenshots back as pixels. A persistent context is how playwright takes a fresh --user-data-dir (passing it in args
// is refused).
import type { BrowserContext, Page } from 'playwright-core';
import { decode } from 'fast-png';

export const CHROMIUM = '/usr/bin/chromium';

// The callbacks given to page.evaluate/waitForFunction run in the browser; this project compiles without the DOM lib,
// so the little of it they touch is declared here.
declare const document: { body: { dataset: Record<string, string | undefined> } };

export interface Shot { width: number; height: number; px: (x: number, y: number) => [number, number, number] }

/** A PNG screenshot as an RGB pixel reader. */
export function shot(png: Buffer): Shot {
  const img = decode(png);
  const ch = img.channels;
  return { width: img.width, height: img.height, px: (x, y) => { const o = (y * img.width + x) * ch; return [img.data[o], img.data[o + 1], img.data[o + 2]] as [number, number, number]; } };
}

export interface ViewerPage {
  browser: BrowserContext;
  page: Page;
  /** Page errors and console errors seen so far. */
  errors: string[];
  /** Runs an action and waits until the viewer has redrawn after it (body[data-ready] counts the draws). */
  settle: (act: () => Promise<unknown>) => Promise<void>;
  /** Screenshot of the element with this id. */
  grab: (id: string) => Promise<Shot>;
}

/** Opens `url` (a running viewer) in headless Chromium with a fresh profile and waits for its first draw. */
export async function openViewerPage(url: string, profileDir: string, viewport: { width: number; height: number }): Promise<ViewerPage> {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM, headless: true, timeout: 60_000, viewport, deviceScaleFactor: 1,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = browser.pages()[0] ?? (await browser.newPage());
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    await page.goto(url);
    await page.waitForFunction(() => Number(document.body.dataset.ready ?? 0) >= 1);
    const ready = () => page.evaluate(() => Number(document.body.dataset.ready));
    const settle = async (act: () => Promise<unknown>) => {
      const n = await ready();
      await act();
      await page.waitForFunction((k) => Number(document.body.dataset.ready) > k, n);
    };
    const grab = async (id: string) => shot(await page.locator(`#${id}`).screenshot());
    return { browser, page, errors, settle, grab };
  } catch (e) {
    await browser.close();
    throw e;
  }
}
