// Text -> image attention for a few sampled prompts (issue 16): per LM layer, the attention probability from each text
// token after the image(s) to each image token of one view of the first image, averaged over query heads, read from
// the model's own attention-probability tap (lm.{L}.attn.probs, through the model interface only). Written as
// <run>/attention/<image-id>.json (AttentionFileSchema) for the viewer, and as a sample PNG for the report.
//
// The image prefix is prefilled once and the text after the image continues on its cache with the tap on, so the tap
// holds only the text queries' rows ([head, textTokens, pos]: ~25 MB per layer for a 7k-token LLaVA-OneVision prompt,
// instead of [head, pos, pos]); the rows equal the whole-prompt forward's (test/experiments/pictures.test.ts). Layers
// are captured in groups that fit ATTENTION_GROUP_BYTES; a prompt whose single layer would exceed
// ATTENTION_LAYER_LIMIT_BYTES is refused (the caller notes it in the run's manifest instead of failing the run).
import type { VisionLanguageModelApi } from '../models/types.js';
import type { ImageInput } from '../preprocess/processor.js';
import { writeImageFiles } from '../results/rundir.js';
import type { AttentionFile } from '../results/schema.js';
import { KvlensInputError } from '../util/errors.js';
import { addSamples, paintOver, panelsPng, photoThumb, ramp, sampleFileName } from './pictures.js';

export type AttentionModel = Pick<VisionLanguageModelApi, 'spec' | 'dims' | 'tokenizer' | 'prepare' | 'imageRequest' | 'forward' | 'continue' | 'imageViews' | 'tapInfo'>;

export const ATTENTION_GROUP_BYTES = 512 * 2 ** 20;
export const ATTENTION_LAYER_LIMIT_BYTES = 4 * 2 ** 30;
/** Text tokens kept per prompt (the last ones: the question and the assistant turn the answer starts from). */
export const ATTENTION_MAX_TOKENS = 24;

export interface AttentionRequest {
  readonly imageId: string;
  readonly images: readonly ImageInput[];
  /** The ready prompt (one placeholder per image), used verbatim. */
  readonly text: string;
  /** Sequence view of the first image to map onto (default 'base' where the family has it, else its first). */
  readonly view?: string;
  readonly maxTokens?: number;
}

/** Why this model cannot give attention maps, or undefined when it can. */
export function attentionUnsupported(model: Pick<AttentionModel, 'tapInfo'>): string | undefined {
  try {
    model.tapInfo('lm.0.attn.probs');
    return undefined;
  } catch (e) {
    return `text->image attention not written: this model has no lm.{L}.attn.probs tap (${(e as Error).message})`;
  }
}

/** Head-averaged text -> image attention of every LM layer for one prompt. */
export async function textImageAttention(model: AttentionModel, req: AttentionRequest): Promise<AttentionFile & { view: string }> {
  const prepared = await model.prepare({ images: req.images, text: req.text });
  const seqViews = model.spec.views.filter((v) => v.positions === 'sequence').map((v) => v.name);
  const all = model.imageViews(prepared, 0);
  const view = req.view && all[req.view] && seqViews.includes(req.view) ? req.view : seqViews.find((v) => v === 'base' && all[v]) ?? seqViews.find((v) => all[v]);
  if (!view) throw new KvlensInputError('the first image has no sequence view to map attention onto', req.imageId);
  const grid = all[view];
  const seq = prepared.inputIds.shape[prepared.inputIds.shape.length - 1];
  const textStart = Math.max(...prepared.tokenMap.runs.map((r) => r.end));
  const first = Math.max(textStart, seq - (req.maxTokens ?? ATTENTION_MAX_TOKENS));
  const queries = Array.from({ length: seq - first }, (_, k) => first + k);
  if (queries.length === 0) throw new KvlensInputError('the prompt has no text after its image(s)', req.imageId);
  const ids = Array.from(prepared.inputIds.data, Number);
  const tokens = queries.map((q) => model.tokenizer.decode([ids[q]]));
  // Query heads for the memory estimate: d_model / head_dim in every supported family.
  const heads = Math.max(model.dims.kvHeads, Math.round(model.dims.dModel / model.dims.headDim));
  const suffix = ids.slice(textStart);
  const perLayer = heads * suffix.length * seq * 4;
  if (perLayer > ATTENTION_LAYER_LIMIT_BYTES) {
    throw new KvlensInputError(`one layer's attention probabilities would take ${(perLayer / 2 ** 30).toFixed(1)} GiB for this ${seq}-token prompt (limit ${ATTENTION_LAYER_LIMIT_BYTES / 2 ** 30} GiB)`, req.imageId);
  }
  const group = Math.max(1, Math.floor(ATTENTION_GROUP_BYTES / perLayer));
  const layers: Record<string, number[][]> = {};
  const n = grid.rows * grid.cols;
  // The image prefix once (its cache is immutable), then the text after it with the tap, per group of layers.
  const prefix = await model.forward({ ...model.imageRequest(prepared), inputIds: [ids.slice(0, textStart)], logitsAt: 'none' });
  for (let l0 = 0; l0 < model.dims.lmLayers; l0 += group) {
    const ls = Array.from({ length: Math.min(group, model.dims.lmLayers - l0) }, (_, k) => l0 + k);
    const { taps } = await model.continue(prefix.cache, [suffix], { taps: ls.map((l) => `lm.${l}.attn.probs`), logitsAt: 'none' });
    for (const l of ls) {
      const t = taps.get(`lm.${l}.attn.probs`);
      if (!t) throw new KvlensInputError(`the model returned no lm.${l}.attn.probs`, req.imageId);
      const [, h, qLen, kLen] = t.shape; // [1, qHead, suffix positions, all positions]
      layers[String(l)] = queries.map((abs) => {
        const q = abs - textStart;
        const row = new Array<number>(n).fill(0);
        for (let p = 0; p < n; p++) {
          const k = grid.positions[p];
          let s = 0;
          for (let hh = 0; hh < h; hh++) s += Number(t.data[(hh * qLen + q) * kLen + k]);
          // Float rounding of the mean can leave a probability a hair outside [0, 1].
          row[p] = Math.min(1, Math.max(0, s / h));
        }
        return row;
      });
    }
  }
  return { imageId: req.imageId, grid: { rows: grid.rows, cols: grid.cols }, tokens, layers, view };
}

/** Compute, write attention/<id>.json and a sample PNG (last text token, middle and last layer) for each request. */
export async function writeAttentionPictures(
  model: AttentionModel, runDir: string, requests: readonly AttentionRequest[], what: string,
): Promise<{ written: string[]; notes: string[] }> {
  const notes: string[] = [];
  if (requests.length === 0) return { written: [], notes };
  const unsupported = attentionUnsupported(model);
  if (unsupported) return { written: [], notes: [`${what}: ${unsupported}.`] };
  const written: string[] = [];
  const pictures = [];
  for (const req of requests) {
    let a: AttentionFile & { view: string };
    try {
      a = await textImageAttention(model, req);
    } catch (e) {
      notes.push(`${what}: no attention for ${req.imageId}: ${(e as Error).message}.`);
      continue;
    }
    const { view, ...file } = a;
    await writeImageFiles.attention(runDir, file);
    written.push(req.imageId);
    const photo = await photoThumb(req.images[0]);
    const last = file.tokens.length - 1;
    const shown = [...new Set([Math.floor((model.dims.lmLayers - 1) / 2), model.dims.lmLayers - 1])];
    const panels = [photo, ...shown.map((l) => {
      const row = file.layers[String(l)][last];
      const hi = Math.max(...row) || 1;
      return paintOver(photo, { rows: file.grid.rows, cols: file.grid.cols, color: (p) => [...ramp(row[p] / hi), 0.65] });
    })];
    pictures.push({
      png: await panelsPng(panels),
      entry: {
        file: sampleFileName('attention', req.imageId), kind: 'other' as const, task: what,
        title: `${what}: text → image attention, ${req.imageId}`,
        caption: `left: the photo; then the attention of the last prompt token ${JSON.stringify(file.tokens[last])} to the first image's ${view} grid (${file.grid.rows}×${file.grid.cols}), averaged over heads, at layer${shown.length > 1 ? 's' : ''} ${shown.join(' and ')} (colour scaled to each map's maximum). Every layer and token: kvlens view.`,
      },
    });
  }
  await addSamples(runDir, pictures);
  return { written, notes };
}
