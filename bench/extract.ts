// Extraction memory benchmark: peak RSS of `extractFeatures` must not grow with the number of images (the store
// streams each image to disk; only one image's activations are alive). A random-weight LLaVA-OneVision-0.5B-shaped
// checkpoint (SigLIP so400m 26 layers + Qwen2-0.5B, f32) is generated into a temp dir, and square tile-sized images
// (one high-res tile + the base tile each: 729 + 27x28 image tokens) are extracted with every layer's values and keys
// (f16 store), each run in its own child process so its peak RSS (getrusage maxrss) is that run's alone.
//
// 384 px images and tiles, as the real model (its SigLIP conv floors 384 / 14 to 27 x 27 patches).
//
//   npx tsx bench/extract.ts [--images 10,100] [--keep]       (minutes per image count on a 2-core CPU)

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { extractFeatures } from '../src/extract/extract.js';
import { LLAVA_ONEVISION_0_5B, writeLlavaOnevisionCheckpoint, type LlavaOnevisionSpec } from '../src/models/synthetic/llava-onevision.js';
import { mulberry32 } from '../src/util/random.js';

export interface ExtractBenchRow {
  readonly images: number;
  readonly peakRssMiB: number;
  readonly seconds: number;
  readonly secondsPerImage: number;
  readonly storeMiB: number;
}

const TILE = 384;
export const BENCH_SPEC: LlavaOnevisionSpec = LLAVA_ONEVISION_0_5B;

/** Tile-sized square PNGs with noise (content does not matter for memory; the size fixes the token count). */
async function writeBenchImages(dir: string, n: number): Promise<void> {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < n; i++) {
    const rnd = mulberry32(7 + i);
    const data = Buffer.alloc(TILE * TILE * 3);
    for (let p = 0; p < data.length; p++) data[p] = ((p % (3 * TILE)) / 6 + rnd() * 40) & 255;
    writeFileSync(join(dir, `img-${String(i).padStart(4, '0')}.png`), await sharp(data, { raw: { width: TILE, height: TILE, channels: 3 } }).png().toBuffer());
  }
}

/** Child: run one extraction and print {peakRssMiB, seconds, storeMiB} as JSON on the last line. */
async function child(model: string, images: string, out: string): Promise<void> {
  const t0 = Date.now();
  await extractFeatures({ model, images, out, taps: ['values', 'keys'], dtype: 'float16' });
  const { FeatureStore } = await import('../src/store/reader.js');
  const st = FeatureStore.open(out);
  const bytes = st.manifests[0].shards.reduce((a, s) => a + s.bytes, 0);
  st.close();
  // maxRSS is in KiB on Linux.
  console.log(JSON.stringify({ peakRssMiB: process.resourceUsage().maxRSS / 1024, seconds: (Date.now() - t0) / 1000, storeMiB: bytes / 2 ** 20 }));
}

/** Run extraction of `counts[i]` images in a fresh child process each; returns one row per count. */
export async function benchExtract(counts: readonly number[] = [10, 100], opts: { keep?: boolean; log?: (s: string) => void } = {}): Promise<ExtractBenchRow[]> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const root = mkdtempSync(join(tmpdir(), 'kvlens-bench-extract-'));
  try {
    log(`writing the 0.5B-shaped checkpoint to ${root} ...`);
    const model = writeLlavaOnevisionCheckpoint(join(root, 'model'), BENCH_SPEC);
    const images = join(root, 'images');
    await writeBenchImages(images, Math.max(...counts));
    const rows: ExtractBenchRow[] = [];
    const self = fileURLToPath(import.meta.url);
    for (const n of counts) {
      const list = join(root, `list-${n}.txt`);
      writeFileSync(list, Array.from({ length: n }, (_, i) => `images/img-${String(i).padStart(4, '0')}.png`).join('\n') + '\n');
      const out = join(root, `store-${n}`);
      log(`extracting ${n} images ...`);
      const args = [...(self.endsWith('.ts') ? ['--import', 'tsx'] : []), self, '--child', model, list, out];
      const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 64 * 2 ** 20, stdio: ['ignore', 'pipe', 'inherit'] });
      if (r.status !== 0) throw new Error(`extraction of ${n} images failed (status ${r.status}, signal ${r.signal})`);
      const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as { peakRssMiB: number; seconds: number; storeMiB: number };
      rows.push({ images: n, peakRssMiB: res.peakRssMiB, seconds: res.seconds, secondsPerImage: res.seconds / n, storeMiB: res.storeMiB });
      rmSync(out, { recursive: true, force: true });
    }
    return rows;
  } finally {
    if (!opts.keep) rmSync(root, { recursive: true, force: true });
  }
}

export function formatExtractBench(rows: readonly ExtractBenchRow[]): string {
  const lines = rows.map((r) => `${String(r.images).padStart(6)} images  peak RSS ${r.peakRssMiB.toFixed(0).padStart(6)} MiB  ` +
    `${r.seconds.toFixed(0).padStart(6)} s (${r.secondsPerImage.toFixed(1)} s/image)  store ${r.storeMiB.toFixed(0)} MiB`);
  if (rows.length >= 2) {
    const a = rows[0];
    const b = rows[rows.length - 1];
    lines.push(`peak RSS growth ${a.images} -> ${b.images} images: ${(b.peakRssMiB - a.peakRssMiB).toFixed(0)} MiB (${(100 * (b.peakRssMiB / a.peakRssMiB - 1)).toFixed(1)}%)`);
  }
  return lines.join('\n');
}

const isMain = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    await child(argv[1], argv[2], argv[3]);
  } else {
    const i = argv.indexOf('--images');
    const counts = i >= 0 ? argv[i + 1].split(',').map(Number) : [10, 100];
    if (counts.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('--images: comma-separated positive integers, e.g. 10,100');
    console.log(formatExtractBench(await benchExtract(counts, { keep: argv.includes('--keep') })));
  }
}
