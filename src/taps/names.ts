// The one vocabulary of hook (tap) names, shared by the engine, the store, the CLI and the viewer.
//
// Keys are always POST-RoPE (what the KV cache holds). Shapes, with the fixed dimension vocabulary
// batch, kvHead, qHead, pos, dHead, dModel, tile, token:
//
//   lm.embed              [batch, pos, dModel]         input embeddings, image features scattered in (HF hidden_states[0])
//   lm.{L}.resid          [batch, pos, dModel]         residual stream after decoder layer L (raw, before any norm)
//   lm.{L}.attn.q_proj    [batch, pos, qHead*dHead]    q projection (+bias), pre-RoPE
//   lm.{L}.attn.k_proj    [batch, pos, kvHead*dHead]   k projection (+bias), pre-RoPE
//   lm.{L}.attn.v_proj    [batch, pos, kvHead*dHead]   v projection (+bias)
//   lm.{L}.attn.k         [batch, kvHead, pos, dHead]  keys after RoPE, as cached
//   lm.{L}.attn.v         [batch, kvHead, pos, dHead]  values, as cached
//   lm.{L}.attn.probs     [batch, qHead, qPos, kPos]   attention probabilities after mask + softmax
//   lm.final_norm         [batch, pos, dModel]         final RMSNorm of the last layer's output (HF hidden_states[N])
//   logits                [batch, pos, vocab]
//   vision.embed          [tile, token, dVision]       patch + position embeddings
//   vision.{L}.out        [tile, token, dVision]       vision encoder layer L output (no post-norm)
//   vision.{L}.attn.probs [tile, head, token, token]   vision encoder layer L attention probabilities (on request)
//   vision.post_norm      [tile, token, dVision]       post-layernorm of the last layer
//   projector.out         [tile, token, dModel]        multimodal projector output per tile
//   image.packed          [imageToken, dModel]         packed image features in prompt order (anyres, newlines)
//   baseline.embed, baseline.{L}.out, baseline.{L}.attn.probs, baseline.post_norm
//                                                      the un-finetuned encoder baseline tower (SigLIP, CLIP; shapes as vision.*)
//   siglip.*                                           the same, under the name stores written before the baseline
//                                                      was generalised keep (read and extracted as before)
// What each hook IS (producer, layout, heads, stored views) is one table: src/taps/table.ts.

import { KvlensUsageError } from '../util/errors.js';

export type HookName =
  | { kind: 'lm.embed' }
  | { kind: 'lm.resid'; layer: number }
  | { kind: 'lm.attn.q_proj' | 'lm.attn.k_proj' | 'lm.attn.v_proj' | 'lm.attn.k' | 'lm.attn.v' | 'lm.attn.probs'; layer: number }
  | { kind: 'lm.final_norm' }
  | { kind: 'logits' }
  | { kind: 'vision.embed' | 'vision.post_norm' | 'siglip.embed' | 'siglip.post_norm' | 'baseline.embed' | 'baseline.post_norm' }
  | { kind: 'vision.out' | 'siglip.out' | 'baseline.out' | 'vision.attn.probs' | 'siglip.attn.probs' | 'baseline.attn.probs'; layer: number }
  | { kind: 'projector.out' }
  | { kind: 'image.packed' };

export interface HookDims {
  /** Number of language-model decoder layers. */
  readonly lmLayers: number;
  /** Number of vision encoder layers (0 if the model has no vision tower). */
  readonly visionLayers: number;
  /** Number of layers of the encoder-baseline tower, when one is attached (baseline.* and siglip.* hooks). */
  readonly baselineLayers?: number;
  /** Old name of baselineLayers (still honoured). */
  readonly siglipLayers?: number;
}

const LAYER_HOOKS: Record<string, HookName['kind']> = {
  resid: 'lm.resid',
  'attn.q_proj': 'lm.attn.q_proj',
  'attn.k_proj': 'lm.attn.k_proj',
  'attn.v_proj': 'lm.attn.v_proj',
  'attn.k': 'lm.attn.k',
  'attn.v': 'lm.attn.v',
  'attn.probs': 'lm.attn.probs',
};

export const HOOK_PATTERNS = [
  'lm.embed', 'lm.{L}.resid', 'lm.{L}.attn.q_proj', 'lm.{L}.attn.k_proj', 'lm.{L}.attn.v_proj', 'lm.{L}.attn.k', 'lm.{L}.attn.v',
  'lm.{L}.attn.probs', 'lm.final_norm', 'logits', 'vision.embed', 'vision.{L}.out', 'vision.{L}.attn.probs', 'vision.post_norm', 'projector.out', 'image.packed',
  'baseline.embed', 'baseline.{L}.out', 'baseline.{L}.attn.probs', 'baseline.post_norm',
  'siglip.embed', 'siglip.{L}.out', 'siglip.{L}.attn.probs', 'siglip.post_norm',
] as const;

type Tower = 'lm' | 'vision' | 'siglip' | 'baseline';

/** Layers of the tower a layered hook prefix names. */
function towerLayers(tower: Tower, dims: HookDims): number {
  switch (tower) {
    case 'lm': return dims.lmLayers;
    case 'vision': return dims.visionLayers;
    default: return dims.baselineLayers ?? dims.siglipLayers ?? 0;
  }
}

const TOWER_WORDS: Record<Tower, string> = { lm: 'language-model', vision: 'vision', siglip: 'encoder-baseline', baseline: 'encoder-baseline' };

function unknown(name: string): never {
  throw new KvlensUsageError(`unknown hook name "${name}". Valid names: ${HOOK_PATTERNS.join(', ')} ({L} = layer index; "*" for every layer)`);
}

/** Parse a concrete hook name (no wildcards). Throws on unknown names; layer ranges are checked by validateHook. */
export function parseHook(name: string): HookName {
  return lookupHook(name) ?? unknown(name);
}

/** parseHook without the throw: undefined for a name outside the vocabulary (result rows may carry any string). */
export function lookupHook(name: string): HookName | undefined {
  const simple: Record<string, HookName> = {
    'lm.embed': { kind: 'lm.embed' },
    'lm.final_norm': { kind: 'lm.final_norm' },
    logits: { kind: 'logits' },
    'vision.embed': { kind: 'vision.embed' },
    'vision.post_norm': { kind: 'vision.post_norm' },
    'siglip.embed': { kind: 'siglip.embed' },
    'siglip.post_norm': { kind: 'siglip.post_norm' },
    'baseline.embed': { kind: 'baseline.embed' },
    'baseline.post_norm': { kind: 'baseline.post_norm' },
    'projector.out': { kind: 'projector.out' },
    'image.packed': { kind: 'image.packed' },
  };
  if (Object.hasOwn(simple, name)) return simple[name];
  let m = /^lm\.(\d+)\.(resid|attn\.(?:q_proj|k_proj|v_proj|k|v|probs))$/.exec(name);
  if (m) return { kind: LAYER_HOOKS[m[2]], layer: Number(m[1]) } as HookName;
  m = /^(vision|siglip|baseline)\.(\d+)\.(out|attn\.probs)$/.exec(name);
  if (m) return { kind: `${m[1]}.${m[3]}` as 'vision.out', layer: Number(m[2]) };
  return undefined;
}

export function formatHook(h: HookName): string {
  switch (h.kind) {
    case 'lm.resid': return `lm.${h.layer}.resid`;
    case 'lm.attn.q_proj': case 'lm.attn.k_proj': case 'lm.attn.v_proj': case 'lm.attn.k': case 'lm.attn.v': case 'lm.attn.probs':
      return `lm.${h.layer}.${h.kind.slice(3)}`;
    case 'vision.out': case 'siglip.out': case 'baseline.out':
      return `${h.kind.slice(0, h.kind.indexOf('.'))}.${h.layer}.out`;
    case 'vision.attn.probs': case 'siglip.attn.probs': case 'baseline.attn.probs':
      return `${h.kind.slice(0, h.kind.indexOf('.'))}.${h.layer}.attn.probs`;
    default: return h.kind;
  }
}

// Tap families: a layered hook with its layer as {L} (lm.{L}.attn.v, vision.{L}.out, baseline.{L}.out). Every helper
// below answers from HOOK_PATTERNS, so a tower added to the vocabulary is known everywhere at once.
const SLOT = /^([a-z_]+)\.([^.]+)\.(.+)$/;
const familyOf = (m: RegExpExecArray): string | undefined => {
  const f = `${m[1]}.{L}.${m[3]}`;
  return (HOOK_PATTERNS as readonly string[]).includes(f) ? f : undefined;
};

/**
 * The tap family of a name: its layer replaced by {L} (lm.14.attn.v -> lm.{L}.attn.v, baseline.25.out ->
 * baseline.{L}.out). Names without a layer, families, and names outside the vocabulary are returned unchanged.
 */
export function tapFamily(name: string): string {
  const m = SLOT.exec(name);
  return m && /^\d+$/.test(m[2]) ? familyOf(m) ?? name : name;
}

/** The layer of a concrete hook name; null for a layer-less hook (projector.out, baseline.post_norm) or an unknown name. */
export function tapLayer(name: string): number | null {
  const h = lookupHook(name);
  return h && 'layer' in h ? h.layer : null;
}

/** The concrete name of a family at a layer: tapAtLayer('baseline.{L}.out', 25) = 'baseline.25.out'. */
export function tapAtLayer(family: string, layer: number | string): string {
  return family.replace('{L}', String(layer));
}

/**
 * A pattern whose layer slot holds a selection rather than one layer ("lm.*.attn.v", "baseline.3-5.out",
 * "vision.{0,2}.out"): its family and the selection. undefined for concrete names and names with no layer slot.
 */
export function layerPattern(pattern: string): { family: string; selection: string } | undefined {
  const m = SLOT.exec(pattern);
  if (!m || /^\d+$/.test(m[2])) return undefined;
  const family = familyOf(m);
  return family ? { family, selection: m[2] } : undefined;
}

/** Parse and check a hook against a model's dimensions: unknown names and out-of-range layers fail here. */
export function validateHook(name: string, dims: HookDims): HookName {
  const h = parseHook(name);
  const tower = h.kind.slice(0, h.kind.indexOf('.')) as Tower | 'logits' | 'projector' | 'image';
  if ('layer' in h) {
    const t = tower as Tower;
    const n = towerLayers(t, dims);
    if (n === 0) throw new KvlensUsageError(`hook "${name}": this model has no ${TOWER_WORDS[t]} layers${t === 'siglip' || t === 'baseline' ? ' (attach a baseline tower: --encoder-baseline <dir>)' : ''}`);
    if (h.layer < 0 || h.layer >= n) {
      throw new KvlensUsageError(`hook "${name}": layer ${h.layer} is out of range, the ${TOWER_WORDS[t]} has layers 0..${n - 1}`);
    }
  } else if ((tower === 'vision' || tower === 'projector' || tower === 'image') && dims.visionLayers === 0) {
    throw new KvlensUsageError(`hook "${name}": this model has no vision tower`);
  } else if ((tower === 'siglip' || tower === 'baseline') && !towerLayers(tower, dims)) {
    throw new KvlensUsageError(`hook "${name}": no encoder-baseline tower is attached (--encoder-baseline <dir>)`);
  }
  return h;
}

/**
 * Expand user patterns to concrete validated names: "lm.*.attn.v" -> every layer, "lm.3-5.attn.k" -> layers 3..5,
 * "lm.{0,7,14}.resid" -> those layers. Order is preserved, duplicates removed.
 */
export function expandHooks(patterns: readonly string[], dims: HookDims): string[] {
  const out: string[] = [];
  for (const p of patterns) {
    const lp = layerPattern(p);
    let names: string[];
    if (lp) {
      const n = towerLayers(lp.family.slice(0, lp.family.indexOf('.')) as Tower, dims);
      names = selectLayers(lp.selection, n, p).map((l) => tapAtLayer(lp.family, l));
    } else {
      names = [p];
    }
    for (const n of names) {
      validateHook(n, dims);
      if (!out.includes(n)) out.push(n);
    }
  }
  return out;
}

/** Parse a layer selection: "*" / "all", "3", "3-5", "{0,7,14}", "0,7,14", "-10:" (last 10). */
export function selectLayers(spec: string, n: number, context = spec): number[] {
  const s = spec.replace(/^\{|\}$/g, '');
  if (s === '*' || s === 'all') return Array.from({ length: n }, (_, i) => i);
  const last = /^-(\d+):$/.exec(s);
  if (last) {
    const k = Number(last[1]);
    if (k < 1 || k > n) throw new KvlensUsageError(`"${context}": cannot take the last ${k} of ${n} layers`);
    return Array.from({ length: k }, (_, i) => n - k + i);
  }
  const out: number[] = [];
  for (const part of s.split(',')) {
    const r = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!r) throw new KvlensUsageError(`"${context}": bad layer selection "${part}" (use *, 3, 3-5, 0,7,14 or -10:)`);
    const a = Number(r[1]);
    const b = r[2] === undefined ? a : Number(r[2]);
    if (b < a) throw new KvlensUsageError(`"${context}": empty layer range ${part}`);
    for (let l = a; l <= b; l++) {
      if (l >= n) throw new KvlensUsageError(`"${context}": layer ${l} is out of range 0..${n - 1}`);
      out.push(l);
    }
  }
  return out;
}
