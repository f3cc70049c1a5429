// Synthetic BDD10K in the current release layout plus BDD's own attribute files (labels/det_20/det_{train,val}.json,
// Scalabel frames with weather / scene / timeofday), so the night + highway selection runs on the real loading code.
// Scenes: 'highway' = sky, vegetation, a wide road and cars; 'city street' = sky, buildings, a narrower road, cars and
// persons. Night images are the same scenes at a third of the brightness. The last image of each split has no frame
// in the attribute files (BDD10K images need not be 100K frames): it is never selected.
import { join } from 'node:path';
import { writeFileAtomic } from '../io.js';
import { encodeGrayPng } from '../png.js';
import { Canvas, randomShape, shapeMask, type Shape } from './draw.js';
import { mulberry32 } from './prng.js';
import type { SynthOptions } from './segmentation.js';

type Rgb = [number, number, number];

export interface SynthBddImage { id: string; split: 'train' | 'val'; timeofday: string; scene: string; weather: string; inAttributeFile: boolean }

/** n images (default 24), half train, half val; time of day alternates night/daytime, scene highway/city street by pairs. */
export async function synthBdd10k(root: string, o: SynthOptions = {}) {
  const rng = mulberry32(o.seed ?? 0);
  const n = o.n ?? 24;
  const truth: SynthBddImage[] = [];
  const frames: Record<'train' | 'val', object[]> = { train: [], val: [] };
  const half = Math.ceil(n / 2);
  for (let i = 0; i < n; i++) {
    const split = i < half ? 'train' : 'val';
    const k = split === 'train' ? i : i - half;
    const timeofday = k % 2 === 0 ? 'night' : 'daytime';
    const scene = Math.floor(k / 2) % 2 === 0 ? 'highway' : 'city street';
    const weather = ['clear', 'overcast', 'rainy'][i % 3];
    const id = `${(0x7d000000 + i * 0x1357).toString(16)}-${(0xa0000000 + i * 0x2468).toString(16)}`;
    const dim = timeofday === 'night' ? 0.35 : 1;
    const c = (rgb: Rgb): Rgb => rgb.map((v) => Math.round(v * dim)) as Rgb;
    const w = 128, h = 72; // 16:9 like 1280x720
    const canvas = new Canvas(w, h, rng, c([90, 90, 90]));
    const horizon = scene === 'highway' ? 26 : 30;
    canvas.band(0, horizon, c([70, 130, 180]), 10); // sky
    if (scene === 'highway') canvas.band(horizon, horizon + 6, c([107, 142, 35]), 8); // vegetation
    else canvas.band(horizon, horizon + 12, c([70, 70, 70]), 2); // building
    canvas.band(scene === 'highway' ? horizon + 6 : horizon + 12, h, c([128, 64, 128]), 0); // road
    for (let q = 0; q < rng.int(1, 3); q++) {
      const person = scene === 'city street' && q % 2 === 1;
      const s: Shape = { ...randomShape(rng, w, h, 'square'), cy: rng.int(46, 60), r: rng.int(6, 10) };
      canvas.paint(shapeMask(s, w, h), c(person ? [220, 20, 60] : [0, 0, 142]), person ? 11 : 13);
    }
    canvas.band(h - 2, h, [0, 0, 0], 255); // the ego-vehicle hood: unknown
    await writeFileAtomic(join(root, 'images', '10k', split, `${id}.jpg`), await canvas.jpeg());
    await writeFileAtomic(join(root, 'labels', 'sem_seg', 'masks', split, `${id}.png`), encodeGrayPng(canvas.labels));
    const inAttributeFile = i !== half - 1 && i !== n - 1;
    if (inAttributeFile) frames[split].push({ name: `${id}.jpg`, attributes: { weather, scene, timeofday }, timestamp: 10000, labels: [] });
    truth.push({ id, split, timeofday, scene, weather, inAttributeFile });
  }
  for (const split of ['train', 'val'] as const) {
    await writeFileAtomic(join(root, 'labels', 'det_20', `det_${split}.json`), `[\n${frames[split].map((f) => JSON.stringify(f)).join(',\n')}\n]\n`);
  }
  return { truth };
}
