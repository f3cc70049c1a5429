// THE tap table: what every hook of the vocabulary (names.ts) is — which component produces it, its layout, what
// its last axis splits into, whether and on which store views it is kept. Code reads facts about a tap here, never
// from the name string. A family's only say is data (FamilySpec: vision taps per tile or per patch row, CLS tokens,
// the views its image has); `resolveTap` combines the two and fails at registration on anything the model or the
// store cannot do.
//
// Layouts (the dimension vocabulary of names.ts):
//   seq       [batch, pos, D]               per prompt position (D = heads x dHead for the projections)
//   seqHeads  [batch, kvHead, pos, dHead]   cached keys / values (keys post-RoPE)
//   probs     [batch, qHead, qPos, kPos]    language-model attention probabilities
//   logits    [batch, pos, vocab]
//   tiles     [tile, token, D]              a tile tower (SigLIP, CLIP; CLS first when the tower has one)
//   rows      [row, D]                      one row per image token / patch, images in prompt order
//   towerProbs [tile | 1, head, token, token]  vision / baseline attention probabilities

import { KvlensUsageError } from '../util/errors.js';
import { expandHooks, lookupHook, parseHook, tapAtLayer, validateHook, type HookDims, type HookName } from './names.js';

export type HookKind = HookName['kind'];
export type TapProducer = 'decoder' | 'image-path' | 'baseline';
export type TapComponent =
  | 'embedding' | 'decoder-layer' | 'attention' | 'final-norm' | 'lm-head'
  | 'vision-tower' | 'projector' | 'packer' | 'baseline-tower';
export type TapLayout = 'seq' | 'seqHeads' | 'probs' | 'logits' | 'tiles' | 'rows' | 'towerProbs';

/**
 * On which store views a tap is kept, decided from the store's views alone (so any store is readable without its
 * model): 'sequence' = every image-token view (not the tower/baseline ones); 'firstOf' = the first of these view
 * names the store has (the base tile for LLaVA families, Qwen's patch grid / merged grid otherwise); 'none' = not
 * storable.
 */
export type StoreRule = { readonly kind: 'sequence' } | { readonly kind: 'firstOf'; readonly views: readonly string[] } | { readonly kind: 'none'; readonly why: string };

export interface TapKindInfo {
  readonly kind: HookKind;
  readonly producer: TapProducer;
  readonly component: TapComponent;
  /** has a {L} layer index */
  readonly layered: boolean;
  /** layouts the tap may have (the family picks between tiles and rows for image-path taps) */
  readonly layouts: readonly TapLayout[];
  /** what the last axis of a `seq` tap splits into: query heads, KV heads, or nothing */
  readonly heads: 'query' | 'kv' | 'none';
  readonly store: StoreRule;
  /** one-line description (README / --help / errors) */
  readonly what: string;
}

/** Views that hold tower grids rather than prompt positions. */
export const TOWER_VIEWS = ['patches', 'baseline', 'siglip'] as const;
/** The view of the encoder baseline's grid; stores of the old siglip.* taps hold theirs under "siglip". */
export const BASELINE_VIEW = 'baseline';
export const SIGLIP_VIEW = 'siglip';

const seqStore: StoreRule = { kind: 'sequence' };
const notGrid = (why: string): StoreRule => ({ kind: 'none', why });
const lm = (kind: HookKind, component: TapComponent, what: string, extra: Partial<TapKindInfo> = {}): TapKindInfo => ({
  kind, producer: 'decoder', component, layered: kind !== 'lm.embed' && kind !== 'lm.final_norm' && kind !== 'logits', layouts: ['seq'], heads: 'none', store: seqStore, what, ...extra,
});
const tower = (kind: HookKind, producer: 'image-path' | 'baseline', component: TapComponent, what: string, store: StoreRule, layered: boolean, layouts: readonly TapLayout[]): TapKindInfo => ({
  kind, producer, component, layered, layouts, heads: 'none', store, what,
});
const visionStore: StoreRule = { kind: 'firstOf', views: ['base', 'patches'] };
const baselineStore: StoreRule = { kind: 'firstOf', views: [BASELINE_VIEW] };
const siglipStore: StoreRule = { kind: 'firstOf', views: [SIGLIP_VIEW] };
const probsNotGrid = notGrid('attention probabilities are not a per-token grid');

export const TAP_TABLE: Readonly<Record<HookKind, TapKindInfo>> = {
  'lm.embed': lm('lm.embed', 'embedding', 'input embeddings with the image features scattered in'),
  'lm.resid': lm('lm.resid', 'decoder-layer', 'residual stream after decoder layer L'),
  'lm.attn.q_proj': lm('lm.attn.q_proj', 'attention', 'q projection (+bias), pre-RoPE', { heads: 'query' }),
  'lm.attn.k_proj': lm('lm.attn.k_proj', 'attention', 'k projection (+bias), pre-RoPE', { heads: 'kv' }),
  'lm.attn.v_proj': lm('lm.attn.v_proj', 'attention', 'v projection (+bias)', { heads: 'kv' }),
  'lm.attn.k': lm('lm.attn.k', 'attention', 'keys after RoPE, as cached', { layouts: ['seqHeads'] }),
  'lm.attn.v': lm('lm.attn.v', 'attention', 'values, as cached', { layouts: ['seqHeads'] }),
  'lm.attn.probs': lm('lm.attn.probs', 'attention', 'attention probabilities after mask + softmax', { layouts: ['probs'], store: probsNotGrid }),
  'lm.final_norm': lm('lm.final_norm', 'final-norm', 'final norm of the last layer'),
  logits: lm('logits', 'lm-head', 'next-token logits', { layouts: ['logits'], store: notGrid('logits are not a per-token grid') }),
  'vision.embed': tower('vision.embed', 'image-path', 'vision-tower', 'patch + position embeddings of the vision tower', visionStore, false, ['tiles', 'rows']),
  'vision.out': tower('vision.out', 'image-path', 'vision-tower', 'vision encoder layer L output', visionStore, true, ['tiles', 'rows']),
  'vision.attn.probs': tower('vision.attn.probs', 'image-path', 'vision-tower', 'vision encoder layer L attention probabilities', probsNotGrid, true, ['towerProbs']),
  'vision.post_norm': tower('vision.post_norm', 'image-path', 'vision-tower', 'post-norm of the last vision layer (Qwen: the merger\'s ln_q)', visionStore, false, ['tiles', 'rows']),
  'projector.out': tower('projector.out', 'image-path', 'projector', 'multimodal projector output (per tile, or Qwen\'s merged tokens)', { kind: 'firstOf', views: ['base', 'highres'] }, false, ['tiles', 'rows']),
  'image.packed': tower('image.packed', 'image-path', 'packer', 'image features in prompt order, as scattered into the prompt', seqStore, false, ['rows']),
  'baseline.embed': tower('baseline.embed', 'baseline', 'baseline-tower', 'encoder-baseline patch + position embeddings', baselineStore, false, ['tiles']),
  'baseline.out': tower('baseline.out', 'baseline', 'baseline-tower', 'encoder-baseline layer L output', baselineStore, true, ['tiles']),
  'baseline.attn.probs': tower('baseline.attn.probs', 'baseline', 'baseline-tower', 'encoder-baseline layer L attention probabilities', probsNotGrid, true, ['towerProbs']),
  'baseline.post_norm': tower('baseline.post_norm', 'baseline', 'baseline-tower', 'encoder-baseline post-layernorm', baselineStore, false, ['tiles']),
  'siglip.embed': tower('siglip.embed', 'baseline', 'baseline-tower', 'SigLIP baseline embeddings (old name of baseline.embed)', siglipStore, false, ['tiles']),
  'siglip.out': tower('siglip.out', 'baseline', 'baseline-tower', 'SigLIP baseline layer L output (old name of baseline.{L}.out)', siglipStore, true, ['tiles']),
  'siglip.attn.probs': tower('siglip.attn.probs', 'baseline', 'baseline-tower', 'SigLIP baseline attention probabilities', probsNotGrid, true, ['towerProbs']),
  'siglip.post_norm': tower('siglip.post_norm', 'baseline', 'baseline-tower', 'SigLIP baseline post-layernorm (old name of baseline.post_norm)', siglipStore, false, ['tiles']),
};

/** The table row of a concrete hook name (unknown names fail, listing the vocabulary). */
export function tapKind(name: string): TapKindInfo {
  return TAP_TABLE[parseHook(name).kind];
}

export function tapProducer(name: string): TapProducer {
  return tapKind(name).producer;
}

/** The table row of a concrete name or a family (lm.{L}.attn.v); undefined outside the vocabulary (never throws). */
export function lookupTapKind(nameOrFamily: string): TapKindInfo | undefined {
  const h = lookupHook(tapAtLayer(nameOrFamily, 0));
  return h ? TAP_TABLE[h.kind] : undefined;
}

/** A tap of the un-finetuned encoder baseline (baseline.*, or siglip.* of older stores); name or family. */
export function isBaselineTap(nameOrFamily: string): boolean {
  return lookupTapKind(nameOrFamily)?.producer === 'baseline';
}

/**
 * A baseline tap at a layer the projector could read (baseline.embed, baseline.{L}.out: what encoder-rows.ts derives
 * from vision_feature_layer), not the post-norm extra row.
 */
export function isBaselineLayerTap(nameOrFamily: string): boolean {
  const k = lookupTapKind(nameOrFamily);
  return k?.producer === 'baseline' && k.layouts[0] === 'tiles' && k.kind !== 'baseline.post_norm' && k.kind !== 'siglip.post_norm';
}

/** A language-model tap (lm.*: embeddings, decoder layers, attention, final norm; not logits); name or family. */
export function isLanguageModelTap(nameOrFamily: string): boolean {
  const k = lookupTapKind(nameOrFamily);
  return k?.producer === 'decoder' && k.component !== 'lm-head';
}

export function isStorableKind(info: TapKindInfo): boolean {
  return info.store.kind !== 'none';
}

/** The views of a store (by name) that tap `name` is kept on. */
export function storedViews(name: string, storeViews: readonly string[]): string[] {
  const rule = tapKind(name).store;
  if (rule.kind === 'none') return [];
  if (rule.kind === 'sequence') return storeViews.filter((v) => !(TOWER_VIEWS as readonly string[]).includes(v));
  const first = rule.views.find((v) => storeViews.includes(v));
  return first ? [first] : [];
}

/** What a family decides about its image-path taps (a slice of FamilySpec). */
export interface ImageTapShape {
  /** vision.* taps: per tile with `clsTokens` leading tokens, or one row per patch */
  readonly visionTapLayout: { readonly kind: 'tiles'; readonly clsTokens: number } | { readonly kind: 'rows' };
  readonly projectorLayout: 'tiles' | 'rows';
  /** the store view vision.* / projector.out are kept on */
  readonly towerView: string;
  readonly projectorView: string;
}

/** A tap as one model produces it. */
export interface ResolvedTap {
  readonly name: string;
  readonly hook: HookName;
  readonly info: TapKindInfo;
  readonly layout: TapLayout;
  /** what the last axis splits into (1 when it does not split) */
  readonly heads: number;
  /** tiles layout: tokens before the patch grid in every tile (CLIP's CLS) */
  readonly clsTokens: number;
  /** the one store view a tower tap is kept on (undefined for sequence taps: all image views) */
  readonly towerView?: string;
}

export interface TapModelFacts {
  readonly dims: HookDims & { readonly kvHeads: number };
  /** query heads of the language model */
  readonly qHeads: number;
  readonly image?: ImageTapShape;
  /** tokens before the patch grid in the baseline tower's tiles (CLIP: 1) */
  readonly baselineClsTokens?: number;
  /** image-path hooks the model builds (vision.*.attn.probs only when loaded with them) */
  readonly imageHooks?: readonly string[];
}

/** Resolve a concrete name for a model; fails (naming the tap) when the model does not produce it. */
export function resolveTap(name: string, m: TapModelFacts): ResolvedTap {
  const hook = validateHook(name, m.dims);
  const info = TAP_TABLE[hook.kind];
  let layout = info.layouts[0];
  let clsTokens = 0;
  let towerView: string | undefined;
  if (info.producer === 'image-path') {
    if (!m.image) throw new KvlensUsageError(`tap "${name}": this model has no image path`);
    if (m.imageHooks && hook.kind !== 'image.packed' && !m.imageHooks.includes(name)) {
      throw new KvlensUsageError(`tap "${name}" is not produced by this model's image path (available: ${[...m.imageHooks, 'image.packed'].join(', ')})`);
    }
    if (info.component === 'vision-tower' && layout !== 'towerProbs') {
      layout = m.image.visionTapLayout.kind;
      clsTokens = m.image.visionTapLayout.kind === 'tiles' ? m.image.visionTapLayout.clsTokens : 0;
      towerView = m.image.towerView;
    } else if (info.component === 'projector') {
      layout = m.image.projectorLayout;
      towerView = m.image.projectorView;
    }
  } else if (info.producer === 'baseline') {
    clsTokens = m.baselineClsTokens ?? 0;
    towerView = info.store.kind === 'firstOf' ? info.store.views[0] : undefined;
  }
  const heads = info.heads === 'query' ? m.qHeads : info.heads === 'kv' ? m.dims.kvHeads : 1;
  return { name, hook, info, layout, heads, clsTokens, ...(towerView ? { towerView } : {}) };
}

/** Expand patterns and resolve every tap; `storable` refuses what a feature store cannot hold. */
export function resolveTaps(patterns: readonly string[], m: TapModelFacts, opts: { storable?: boolean } = {}): ResolvedTap[] {
  return expandHooks(patterns, m.dims).map((n) => {
    const r = resolveTap(n, m);
    if (opts.storable && r.info.store.kind === 'none') throw new KvlensUsageError(`tap "${n}" cannot be stored: ${r.info.store.why}`);
    return r;
  });
}

/** The layout a captured tensor of tap `name` has, from the table (image-path taps: tiles when rank 3, rows when rank 2). */
export function resolveStoredLayout(name: string, rank: number): TapLayout {
  const info = tapKind(name);
  if (info.layouts.length === 1) return info.layouts[0];
  const pick = info.layouts.find((l) => (l === 'tiles' ? rank === 3 : l === 'rows' ? rank === 2 : false));
  if (!pick) throw new KvlensUsageError(`tap "${name}": a rank-${rank} tensor is none of its layouts (${info.layouts.join(', ')})`);
  return pick;
}
