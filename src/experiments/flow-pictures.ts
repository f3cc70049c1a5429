// Probe masks for the viewer and the report (issue 16): for a few images of a few-shot segmentation task, the query
// foreground probability per token at EVERY probed layer, exactly as the probe predicts it (the same episodes: same
// fold list, seed, shots and supports; src/probes/fewshot-seg.ts predictQueryTokens), with the ground truth per token
// (the probe's own token labels: 1 foreground, 0 background; ignore-region tokens 0). Written as
// <run>/masks/<image-id>.json (MaskFileSchema) and one sample PNG per image (photo | prediction at the curve's peak
// layer | ground truth) listed in samples/index.json.
//
// The episodes are the first fold the probe ran (fold 0 of 'all'); the first `images` episodes with distinct queries.
import type { DatasetName } from '../data/index.js';
import { VOC_CLASSES } from '../data/loaders/pascal5i.js';
import { episodeTokenLabels, FewShotConfigSchema, predictQueryTokens, sampleEpisodes, type FewShotSample } from '../probes/fewshot-seg.js';
import { TOKEN_IGNORE } from '../probes/grid.js';
import { writeImageFiles } from '../results/rundir.js';
import type { MaskFile } from '../results/schema.js';
import { FeatureStore } from '../store/index.js';
import { parseProbeFlowConfig } from './flow-config.js';
import { usableSegItems } from './flow.js';
import { addSamples, paintOver, panelsPng, photoThumb } from './pictures.js';
import { loadSegTruth } from './samples.js';
import type { ProbeTaskConfig } from './config.js';

export interface SegPicturesInput {
  readonly runDir: string;
  /** One store, or the shard stores of one run. */
  readonly store: string | string[];
  readonly task: ProbeTaskConfig;
  /** Tap family probed, e.g. lm.{L}.attn.v (layers from the store). */
  readonly family: string;
  readonly view?: string;
  readonly seed: number;
  /** Only these layers (the probe's selection); default every stored layer of the family. */
  readonly layers?: readonly number[];
  /** How many images (0: none). */
  readonly images: number;
  /** The layer drawn in the sample PNG (the curve's peak); default the middle stored layer. */
  readonly sampleLayer?: number;
  /** Task key of the run (fewshot-seg, fewshot-seg-2, ...). */
  readonly key: string;
}

export interface SegPicturesResult {
  readonly files: MaskFile[];
  readonly notes: string[];
}

const className = (classValue: number) => VOC_CLASSES[classValue - 1] ?? `class ${classValue}`;

/** Masks (every layer) + sample PNGs for the first `images` distinct query images of the probe's episodes. */
export async function writeSegPictures(inp: SegPicturesInput): Promise<SegPicturesResult> {
  if (inp.images <= 0) return { files: [], notes: [] };
  const t = inp.task;
  const flowCfg = parseProbeFlowConfig({ task: 'fewshot-seg', store: inp.store, data: t.data, dataset: t.dataset, fold: t.fold, split: t.split, shots: t.shots, episodes: t.episodes, seed: inp.seed });
  const fold = flowCfg.fold === 'all' ? 0 : flowCfg.fold;
  const store = FeatureStore.open(inp.store);
  try {
    const truth = await loadSegTruth(store, t.data, { fold, split: flowCfg.split, dataset: flowCfg.dataset as DatasetName | undefined });
    const usable = usableSegItems(truth.items, flowCfg.shots);
    if (usable.length === 0) return { files: [], notes: [`${inp.key}: no probe masks (no class has ${flowCfg.shots + 1} images in fold ${fold}).`] };
    const items = usable.map((u) => ({ imageId: u.storeId, classId: u.classValue }));
    const episodeCount = flowCfg.episodes === 'per-entry' ? items.length : flowCfg.episodes;
    const cfg = FewShotConfigSchema.parse({ shots: flowCfg.shots, episodes: episodeCount, seed: flowCfg.seed });
    const labelsOf = new Map(usable.map((u) => [u.storeId, u.labels]));
    const chosen = [];
    const seen = new Set<string>();
    for (const ep of sampleEpisodes(items, cfg.episodes, cfg.shots, cfg.seed)) {
      if (seen.has(ep.query)) continue;
      seen.add(ep.query);
      chosen.push(ep);
      if (chosen.length >= inp.images) break;
    }
    const [pre, post] = inp.family.split('{L}');
    const layers = store.taps.filter((x) => x.startsWith(pre) && x.endsWith(post) && /^\d+$/.test(x.slice(pre.length, x.length - post.length)))
      .map((x) => Number(x.slice(pre.length, x.length - post.length))).filter((l) => !inp.layers || inp.layers.includes(l)).sort((a, b) => a - b);
    if (layers.length === 0) return { files: [], notes: [`${inp.key}: no probe masks (the store has no ${inp.family} tap).`] };
    const drawn = inp.sampleLayer !== undefined && layers.includes(inp.sampleLayer) ? inp.sampleLayer : layers[Math.floor(layers.length / 2)];
    const files: MaskFile[] = [];
    const pictures = [];
    const notes: string[] = [];
    for (const ep of chosen) {
      const sample = (id: string, tap: string): FewShotSample => ({ features: store.read(id, tap, inp.view ? { view: inp.view } : {}), labels: labelsOf.get(id)! });
      const perLayer: Record<string, number[]> = {};
      let grid = { rows: 0, cols: 0 };
      let truthTokens: number[] = [];
      for (const l of layers) {
        const tap = `${pre}${l}${post}`;
        const query = sample(ep.query, tap);
        const probs = predictQueryTokens(ep.supports.map((id) => sample(id, tap)), query.features, ep.classId, cfg);
        perLayer[String(l)] = Array.from(probs, (p) => Math.min(1, Math.max(0, p)));
        if (!truthTokens.length) {
          grid = { rows: query.features.rows, cols: query.features.cols };
          truthTokens = Array.from(episodeTokenLabels(query, ep.classId, cfg), (v) => (v === TOKEN_IGNORE ? 0 : v));
        }
      }
      const file: MaskFile = {
        imageId: ep.query,
        task: `${inp.key}: ${className(ep.classId)}, ${cfg.shots}-shot (episode ${ep.index}, fold ${fold}), ${inp.family} on the ${inp.view ?? 'base'} view`,
        grid, truth: truthTokens, layers: perLayer,
      };
      await writeImageFiles.mask(inp.runDir, file);
      files.push(file);
      const source = store.image(ep.query).source;
      if (!source) {
        notes.push(`${inp.key}: no sample picture for ${ep.query} (the store records no source path).`);
        continue;
      }
      try {
        const photo = await photoThumb(source);
        const pred = perLayer[String(drawn)];
        pictures.push({
          png: await panelsPng([
            photo,
            paintOver(photo, { ...grid, color: (p) => [230, 40, 40, 0.75 * pred[p]] }),
            paintOver(photo, { ...grid, color: (p) => (truthTokens[p] ? [40, 200, 60, 0.6] : undefined) }),
          ]),
          entry: {
            file: `mask-${inp.key}-${files.length}.png`, kind: 'mask' as const, task: inp.key,
            title: `${inp.key}: ${className(ep.classId)} in ${ep.query}, layer ${drawn}`,
            caption: `left: the photo; middle: predicted foreground probability per token (red, ${grid.rows}×${grid.cols} ${inp.view ?? 'base'} grid) at layer ${drawn}${drawn === inp.sampleLayer ? ' (the mIoU peak)' : ''}, ${cfg.shots}-shot from ${ep.supports.join(', ')}; right: ground truth per token (green). Every layer: kvlens view.`,
          },
        });
      } catch (e) {
        notes.push(`${inp.key}: no sample picture for ${ep.query} (${(e as Error).message}).`);
      }
    }
    await addSamples(inp.runDir, pictures);
    notes.unshift(`${inp.key}: probe masks (${inp.family}, ${layers.length} layer(s)) and ground truth for ${files.length} image(s) in masks/, sample pictures at layer ${drawn} in samples/.`);
    return { files, notes };
  } finally {
    store.close();
  }
}
