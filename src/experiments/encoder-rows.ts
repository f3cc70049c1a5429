// The un-finetuned encoder baseline rows of the flow (paper Table 1): the baseline tower (SigLIP for LLaVA-OneVision,
// CLIP ViT-L/14-336 for LLaVA-NeXT) is read at the layer the MLM's projector reads — the model's vision_feature_layer
// (an index into hidden_states: 0 = embeddings, i = output of layer i) with its select strategy — so the comparison is
// like for like; 'post_norm' (the tower's last layer after its post-layernorm) is an extra row on request.
//
// LLaVA-OneVision's HF port keeps 26 SigLIP layers with vision_feature_layer -1: hidden_states[26] = the output of
// layer 25 (0-based), the penultimate layer of the original 27-layer so400m tower -> baseline.25.out. LLaVA-NeXT uses
// CLIP's 24 layers with -2: hidden_states[23] -> baseline.22.out. The select strategy 'default' drops CLIP's CLS token,
// which the store's token grid never holds; 'full' (CLS kept by the projector) is recorded but cannot be a grid row.
import { join } from 'node:path';
import { readJsonFile } from '../util/json.js';
import { KvlensInputError } from '../util/errors.js';

export const ENCODER_ROWS = ['projector-input', 'post_norm'] as const;
export type EncoderRow = (typeof ENCODER_ROWS)[number];

export interface EncoderRows {
  readonly dir: string;
  /** Baseline taps to extract and probe, e.g. ['baseline.25.out', 'baseline.post_norm']. */
  readonly taps: string[];
  /** What each row is, for the protocol and the manifest notes. */
  readonly note: string;
}

/** The projector-input layer(s) of a model from its config.json, as baseline taps; null when it has none (Qwen). */
export async function projectorInputTaps(modelDir: string): Promise<{ taps: string[]; note: string } | null> {
  const file = join(modelDir, 'config.json');
  const cfg = (await readJsonFile(file)) as Record<string, unknown>;
  const vfl = cfg.vision_feature_layer as number | number[] | undefined;
  if (vfl === undefined) return null;
  const vision = (cfg.vision_config ?? {}) as Record<string, unknown>;
  const layers = vision.num_hidden_layers;
  if (typeof layers !== 'number') throw new KvlensInputError('field "vision_config.num_hidden_layers" must be a number (the tower depth vision_feature_layer indexes)', file);
  // hidden_states has layers + 1 entries (0 = embeddings); a negative index counts from the end, as in Python.
  const picked = (Array.isArray(vfl) ? vfl : [vfl]).map((l) => {
    const h = l < 0 ? layers + 1 + l : l;
    if (!Number.isInteger(l) || h < 0 || h > layers) throw new KvlensInputError(`field "vision_feature_layer": ${l} is out of range for a ${layers}-layer tower (hidden_states has ${layers + 1} entries)`, file);
    return h;
  });
  const strategy = typeof cfg.vision_feature_select_strategy === 'string' ? cfg.vision_feature_select_strategy : 'default';
  const taps = picked.map((h) => (h === 0 ? 'baseline.embed' : `baseline.${h - 1}.out`));
  return {
    taps,
    note: `projector input: vision_feature_layer ${JSON.stringify(vfl)} of the model's ${layers}-layer tower = hidden_states[${picked.join(', ')}] -> ${taps.join(', ')} of the un-finetuned tower; select strategy "${strategy}"${strategy === 'full' ? ' (the CLS token the projector also reads has no grid cell: grid tokens only)' : ' (grid tokens, no CLS)'}`,
  };
}

/** The encoder rows a flow extracts and probes (none without a baseline directory). */
export async function encoderRows(modelDir: string, baselineDir: string | undefined, rows: readonly EncoderRow[]): Promise<EncoderRows | undefined> {
  if (!baselineDir) return undefined;
  const taps: string[] = [];
  const notes: string[] = [];
  if (rows.includes('projector-input')) {
    const p = await projectorInputTaps(modelDir);
    if (!p) throw new KvlensInputError('the model has no vision_feature_layer (its vision tower is trained with the MLM, e.g. Qwen2.5-VL): there is no projector-input layer to compare an un-finetuned encoder at; leave encoderBaseline out', join(modelDir, 'config.json'));
    taps.push(...p.taps);
    notes.push(p.note);
  }
  if (rows.includes('post_norm')) {
    taps.push('baseline.post_norm');
    notes.push('baseline.post_norm: the last layer after the post-layernorm (an extra row)');
  }
  return { dir: baselineDir, taps, note: notes.join('; ') };
}
