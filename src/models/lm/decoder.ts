// The shared decoder language model: one ORT session per decoder layer, run in sequence from JS.
//
//   const lm = await DecoderLM.load(dir, { config, device: 'cpu' });
//   const out = await lm.forward({ inputIds: [[1, 2, 3]], taps: ['lm.*.attn.k'], logitsAt: 'last' });
//   const more = await lm.forward({ inputIds: [[4, 5]], past: out.cache });   // out.cache is not modified
//   await lm.dispose();
//
// Tap names are those of src/taps/names.ts. `lm.{L}.attn.k` holds keys AFTER RoPE (as cached), and like every
// per-position tap covers only the positions of the current call (a continuation's taps exclude the prefix).

import type { BuiltGraph } from '../../graph/builder.js';
import { OrtSession, type SessionOptions } from '../../runtime/session.js';
import { measuredSync } from '../../runtime/stats.js';
import type { Device } from '../../runtime/device.js';
import { WeightSet } from '../../tensor/safetensors.js';
import { f32, tensor, type Tensor } from '../../tensor/tensor.js';
import { expandHooks, parseHook, type HookDims } from '../../taps/names.js';
import { TAP_TABLE } from '../../taps/table.js';
import { KvlensUsageError } from '../../util/errors.js';
import { freezeCache, type KvCache } from './cache.js';
import { embedWeightName, type DecoderConfig } from './config.js';
import { EmbeddingTable } from './embedding.js';
import { buildHeadGraph, buildLayerGraph, buildProbsGraph, HEAD_IO, LAYER_IO } from './graphs.js';
import { chunkBlocks, chunkBounds, concatAxis, mergeChunkTaps, queryChunk, slicePos, sliceRows } from './chunked.js';
import { blockInputs, causalMask, foldBlocks, noBlock, planBlocks, type BlockSpec } from './masks.js';
import { mropeTables, ropeTables } from './rope.js';

export type Rows = readonly (readonly number[])[];

export interface ForwardRequest {
  /** Token ids [batch][pos] (or an int tensor [batch, pos]). Exactly one of inputIds / inputsEmbeds. */
  readonly inputIds?: Rows | Tensor;
  /** Input embeddings [batch, pos, dModel] (e.g. text embeddings with image features scattered in). */
  readonly inputsEmbeds?: Tensor<'float32'>;
  /** Position ids [batch][pos]. Default: from attentionMask2d as HF generate() does, else continuing the cache. */
  readonly positionIds?: Rows | Tensor;
  /**
   * M-RoPE models only (config.mropeSection): position ids [3][batch][pos] (t, h, w), e.g. from Qwen2-VL's
   * get_rope_index. Default: the 1-D positions on all three axes (text tokens, decode steps).
   */
  readonly mropePositionIds?: readonly Rows[];
  /** 1 = real token, 0 = padding; [batch][past+pos] or [batch][pos] (the cache's padding is prepended). */
  readonly attentionMask2d?: Rows | Tensor;
  /** Additive mask [batch|1, 1, pos, past+pos] (0 keep, F32_MIN drop) used verbatim in every layer, as HF does. */
  readonly denseMask?: Tensor<'float32'>;
  /** Per-layer additive masks overriding the shared one in the listed layers (HF-parity runs). */
  readonly layerMasks?: ReadonlyMap<number, Tensor<'float32'>>;
  /** Interventions: block chosen query -> key attention in chosen layers (no dense per-layer masks needed). */
  readonly block?: readonly BlockSpec[];
  /** Hook names or patterns (lm.*.attn.k, lm.3-5.resid, logits ...). */
  readonly taps?: readonly string[];
  /** Positions of this call (0-based within it) to compute logits at. Default 'last'. */
  readonly logitsAt?: 'none' | 'last' | 'all' | readonly number[];
  /** Continue from this cache (left unmodified). */
  readonly past?: KvCache;
  /** Return the new cache (default true). Without it, layers after the last tapped one are skipped when possible. */
  readonly returnCache?: boolean;
  /**
   * Longest run of query positions per pass (default: the model's, 1024). Longer calls are prefilled in chunks that
   * continue each other's cache (same numbers, far smaller attention buffers); chunks are shortened further (not
   * below 128) so a layer's largest transient buffer, the [batch, qHead, chunk, keys] scores or the
   * [batch, chunk, intermediate] MLP activations, stays within TRANSIENT_BUDGET_BYTES (see chunked.ts). Not applied
   * with denseMask, layerMasks or attn.probs taps, which are whole-sequence by nature.
   */
  readonly prefillChunk?: number;
}

export interface ForwardResult {
  /** Requested taps by concrete name. */
  readonly taps: Map<string, Tensor<'float32'>>;
  /** [batch, logitsAt.length, vocab] */
  readonly logits?: Tensor<'float32'>;
  readonly logitsAt: readonly number[];
  readonly cache?: KvCache;
}

export interface LoadOptions extends SessionOptions {
  readonly config: DecoderConfig;
  readonly device?: Device;
  /** Default ForwardRequest.prefillChunk (1024). */
  readonly prefillChunk?: number;
}

export const DEFAULT_PREFILL_CHUNK = 1024;
/** Span label (src/runtime/stats.ts) of the decoder's tap copies: K/V slices past the cache, chunk concatenation. */
export const TAP_COPIES = 'lm.tap-copies';

interface TapPlan {
  readonly names: string[];
  readonly perLayer: Map<number, Set<string>>; // layer -> suffixes (resid, attn.k, ...)
  readonly embed: boolean;
  readonly finalNorm: boolean;
  readonly logits: boolean;
}

export class DecoderLM {
  /** Weightless attn.probs session shared by all layers (built on first use). */
  private probs: OrtSession | null = null;
  private headSession: OrtSession | null = null;
  private disposed = false;

  private constructor(
    readonly config: DecoderConfig,
    readonly weights: WeightSet,
    private readonly layers: OrtSession[],
    private readonly embedding: EmbeddingTable,
    private readonly sessionOptions: SessionOptions,
    private readonly prefillChunk: number,
  ) {}

  /** Open a checkpoint directory (single file, sharded, read-only or hub-cache snapshot) and build the layer sessions. */
  static async load(dir: string, opts: LoadOptions): Promise<DecoderLM> {
    const ws = WeightSet.open(dir);
    return DecoderLM.fromWeights(ws, opts);
  }

  static async fromWeights(ws: WeightSet, opts: LoadOptions): Promise<DecoderLM> {
    const cfg = opts.config;
    const embedding = new EmbeddingTable(ws.expect(embedWeightName(cfg), [cfg.vocabSize, cfg.hiddenSize]));
    const so: SessionOptions = { device: opts.device, threads: opts.threads, optimization: opts.optimization };
    const layers: OrtSession[] = [];
    try {
      for (let l = 0; l < cfg.numLayers; l++) layers.push(await OrtSession.create(buildLayerGraph(cfg, ws, l), so));
    } catch (e) {
      for (const s of layers) await s.dispose();
      throw e;
    }
    const chunk = opts.prefillChunk ?? DEFAULT_PREFILL_CHUNK;
    if (!(chunk >= 1)) throw new KvlensUsageError(`prefillChunk must be at least 1, got ${chunk}`);
    return new DecoderLM(cfg, ws, layers, embedding, so, chunk);
  }

  /** Dimensions for validateHook / expandHooks. */
  get hookDims(): HookDims {
    return { lmLayers: this.config.numLayers, visionLayers: 0 };
  }

  /** Embeddings of token ids [batch][pos] -> [batch, pos, dModel]. */
  embed(ids: Rows): Tensor<'float32'> {
    return this.embedding.lookup(ids);
  }

  async forward(req: ForwardRequest): Promise<ForwardResult> {
    this.assertOpen();
    const cfg = this.config;
    const plan = this.planTaps(req.taps ?? []);
    const embeds = this.inputEmbeddings(req);
    const [B, S] = embeds.shape;
    const past = req.past;
    const P = past?.length ?? 0;
    const T = P + S;
    if (past && past.batch !== B) throw new KvlensUsageError(`past cache has batch ${past.batch}, the input has batch ${B}`);
    const padding = this.fullPadding(req.attentionMask2d, past, B, S);
    const cap = req.prefillChunk ?? this.prefillChunk;
    if (!(cap >= 1)) throw new KvlensUsageError(`prefillChunk must be at least 1, got ${cap}`);
    // Infinity: one pass (forwardChunked's own per-chunk calls).
    const chunk = Number.isFinite(cap) ? queryChunk(cap, { batch: B, qHeads: cfg.numHeads, keys: T, intermediate: cfg.intermediateSize }) : cap;
    const chunkable = !req.denseMask && !req.layerMasks?.size && ![...plan.perLayer.values()].some((s) => s.has('attn.probs'));
    if (S > chunk && chunkable) return this.forwardChunked(req, plan, embeds, padding, chunk);
    const positions = this.positions(req.positionIds, padding, past, B, S);
    const pos3 = this.mropePositions(req.mropePositionIds, positions, B, S);
    const { cos, sin } = pos3 ? mropeTables(pos3, cfg.headDim, cfg.ropeTheta, cfg.mropeSection!) : ropeTables(positions, cfg.headDim, cfg.ropeTheta);
    const base = req.denseMask ? checkMask(req.denseMask, B, S, T, 'denseMask') : causalMask(S, P, padding ? { batch: B, data: padding.flat() } : undefined);
    const blocks = planBlocks(req.block ?? [], cfg.numLayers, S, P);
    for (const [l, m] of req.layerMasks ?? []) {
      if (l < 0 || l >= cfg.numLayers) throw new KvlensUsageError(`layerMasks: layer ${l} is out of range 0..${cfg.numLayers - 1}`);
      checkMask(m, B, S, T, `layerMasks[${l}]`);
    }
    const logitsAt = resolveLogitsAt(req.logitsAt ?? 'last', S, plan.logits);
    const wantCache = req.returnCache ?? true;
    const needHead = logitsAt.length > 0 || plan.finalNorm;
    const lastLayer = wantCache || needHead ? cfg.numLayers - 1 : Math.max(-1, ...plan.perLayer.keys());

    const taps = new Map<string, Tensor<'float32'>>();
    if (plan.embed) taps.set('lm.embed', embeds);
    const keys: Tensor<'float32'>[] = [];
    const values: Tensor<'float32'>[] = [];
    const emptyPast = f32([B, cfg.numKvHeads, 0, cfg.headDim]);
    const none = noBlock(S, T);
    let hidden = embeds; // [batch, pos, dModel]
    for (let l = 0; l <= lastLayer; l++) {
      const want = plan.perLayer.get(l) ?? new Set<string>();
      const specs = blocks.get(l) ?? [];
      let mask = req.layerMasks?.get(l) ?? base;
      let block = none;
      if (specs.length === 1) block = blockInputs(specs[0], S, P);
      else if (specs.length > 1) mask = foldBlocks(mask, specs, P);
      const feeds: Record<string, Tensor> = {
        [LAYER_IO.hidden]: hidden, [LAYER_IO.cos]: cos, [LAYER_IO.sin]: sin, [LAYER_IO.mask]: mask,
        [LAYER_IO.blockQ]: block.q, [LAYER_IO.blockK]: block.k,
        [LAYER_IO.pastK]: past ? past.keys[l] : emptyPast, [LAYER_IO.pastV]: past ? past.values[l] : emptyPast,
      };
      const fetch: string[] = [LAYER_IO.out];
      const needKv = wantCache || want.has('attn.k') || want.has('attn.v');
      if (needKv) fetch.push(LAYER_IO.presentK, LAYER_IO.presentV);
      for (const [tap, io] of [['attn.q_proj', LAYER_IO.qProj], ['attn.k_proj', LAYER_IO.kProj], ['attn.v_proj', LAYER_IO.vProj]] as const) {
        if (want.has(tap)) fetch.push(io);
      }
      const probs = want.has('attn.probs');
      if (probs) fetch.push(LAYER_IO.qProj, LAYER_IO.presentK);
      const r = (await this.layers[l].run(feeds, [...new Set(fetch)])) as Record<string, Tensor<'float32'>>;
      if (probs) {
        const p = await (await this.probsSession()).run({
          [LAYER_IO.qProj]: r[LAYER_IO.qProj], [LAYER_IO.presentK]: r[LAYER_IO.presentK], [LAYER_IO.cos]: cos, [LAYER_IO.sin]: sin,
          [LAYER_IO.mask]: mask, [LAYER_IO.blockQ]: block.q, [LAYER_IO.blockK]: block.k,
        }, [LAYER_IO.probs]);
        r[LAYER_IO.probs] = p[LAYER_IO.probs] as Tensor<'float32'>;
      }
      hidden = r[LAYER_IO.out];
      if (needKv) {
        keys.push(r[LAYER_IO.presentK]);
        values.push(r[LAYER_IO.presentV]);
      }
      if (want.has('resid')) taps.set(`lm.${l}.resid`, hidden);
      if (want.has('attn.k')) taps.set(`lm.${l}.attn.k`, measuredSync(TAP_COPIES, () => sliceAxis2(r[LAYER_IO.presentK], P)));
      if (want.has('attn.v')) taps.set(`lm.${l}.attn.v`, measuredSync(TAP_COPIES, () => sliceAxis2(r[LAYER_IO.presentV], P)));
      if (want.has('attn.q_proj')) taps.set(`lm.${l}.attn.q_proj`, r[LAYER_IO.qProj]);
      if (want.has('attn.k_proj')) taps.set(`lm.${l}.attn.k_proj`, r[LAYER_IO.kProj]);
      if (want.has('attn.v_proj')) taps.set(`lm.${l}.attn.v_proj`, r[LAYER_IO.vProj]);
      if (probs) taps.set(`lm.${l}.attn.probs`, r[LAYER_IO.probs]);
    }

    let logits: Tensor<'float32'> | undefined;
    if (needHead) {
      const head = await this.head();
      const at = tensor('int64', [logitsAt.length], BigInt64Array.from(logitsAt.map((i) => BigInt(i))));
      const fetch = [...(logitsAt.length ? [HEAD_IO.logits] : []), ...(plan.finalNorm ? [HEAD_IO.norm] : [])];
      const r = (await head.run({ [HEAD_IO.hidden]: hidden, [HEAD_IO.at]: at }, fetch)) as Record<string, Tensor<'float32'>>;
      if (plan.finalNorm) taps.set('lm.final_norm', r[HEAD_IO.norm]);
      if (logitsAt.length) {
        logits = r[HEAD_IO.logits];
        if (plan.logits) taps.set('logits', logits);
      }
    }

    const cache = wantCache
      ? freezeCache({
        length: T, batch: B, keys, values,
        ...(padding ? { padding } : {}),
        // M-RoPE: the next token continues after the largest id on any axis (HF: cache length + rope_deltas).
        nextPositions: positions.map((row, b) => {
          const all = pos3 ? pos3.flatMap((axis) => axis[b]) : row;
          return all.length ? Math.max(...all) + 1 : past?.nextPositions[b] ?? 0;
        }),
      })
      : undefined;
    // Keep only requested taps in the caller's order.
    const ordered = new Map<string, Tensor<'float32'>>();
    for (const n of plan.names) { const t = taps.get(n); if (t) ordered.set(n, t); }
    return { taps: ordered, logits, logitsAt, ...(cache ? { cache } : {}) };
  }

  /** A long call as consecutive chunks, each continuing the previous chunk's cache (see chunked.ts). */
  private async forwardChunked(req: ForwardRequest, plan: TapPlan, embeds: Tensor<'float32'>, padding: number[][] | undefined, chunk: number): Promise<ForwardResult> {
    const S = embeds.shape[1];
    const P0 = req.past?.length ?? 0;
    const logitsAt = resolveLogitsAt(req.logitsAt ?? 'last', S, plan.logits);
    const ids = req.positionIds ? toRows(req.positionIds, 'positionIds') : undefined;
    const chunkTaps = plan.names.filter((n) => n !== 'logits' && n !== 'lm.embed');
    let past = req.past;
    const tapParts: Map<string, Tensor<'float32'>>[] = [];
    const logitParts: Tensor<'float32'>[] = [];
    const order: number[] = []; // logitsAt index of each computed logits row, in chunk order
    for (const [c0, c1] of chunkBounds(S, chunk)) {
      const mine = logitsAt.flatMap((p, k) => (p >= c0 && p < c1 ? [k] : [])); // indices into logitsAt
      order.push(...mine);
      const at = mine.map((k) => logitsAt[k] - c0);
      const r = await this.forward({
        inputsEmbeds: slicePos(embeds, c0, c1),
        past,
        ...(padding ? { attentionMask2d: padding.map((row) => row.slice(0, P0 + c1)) } : {}),
        ...(ids ? { positionIds: sliceRows(ids, c0, c1) } : {}),
        ...(req.mropePositionIds ? { mropePositionIds: req.mropePositionIds.map((axis) => sliceRows(axis, c0, c1)) } : {}),
        block: chunkBlocks(req.block, P0 + c0, P0 + c1),
        taps: chunkTaps,
        logitsAt: at.length ? at : 'none',
        returnCache: true,
        prefillChunk: Infinity,
      });
      past = r.cache;
      tapParts.push(r.taps);
      if (r.logits) logitParts.push(r.logits);
    }
    const taps = measuredSync(TAP_COPIES, () => mergeChunkTaps(chunkTaps, tapParts));
    if (plan.embed) taps.set('lm.embed', embeds);
    const logits = logitParts.length ? reorderRows(concatAxis(logitParts, 1), order) : undefined; // [batch, logitsAt.length, vocab]
    if (plan.logits && logits) taps.set('logits', logits);
    const ordered = new Map<string, Tensor<'float32'>>();
    for (const n of plan.names) { const t = taps.get(n); if (t) ordered.set(n, t); }
    return { taps: ordered, logits, logitsAt, ...(req.returnCache ?? true ? { cache: past! } : {}) };
  }

  /**
   * Greedy decoding: prefill `req` (or continue from req.past), then feed back the argmax token `maxNewTokens - 1`
   * more times. Stops early when every row has produced an EOS id (config's, unless `eos` is given).
   */
  async generate(req: ForwardRequest & { maxNewTokens: number; eos?: readonly number[] }): Promise<{ tokens: number[][]; cache: KvCache }> {
    const eos = new Set(req.eos ?? this.config.eosTokenIds);
    let out = await this.forward({ ...req, logitsAt: 'last', returnCache: true, taps: [] });
    const B = out.logits!.shape[0];
    const tokens: number[][] = Array.from({ length: B }, () => []);
    const done = new Array<boolean>(B).fill(false);
    for (let step = 0; step < req.maxNewTokens; step++) {
      const next = argmaxRows(out.logits!);
      next.forEach((t, b) => { if (!done[b]) tokens[b].push(t); if (eos.has(t)) done[b] = true; });
      if (done.every(Boolean) || step === req.maxNewTokens - 1) break;
      out = await this.forward({ inputIds: next.map((t) => [t]), past: out.cache, logitsAt: 'last', returnCache: true });
    }
    return { tokens, cache: out.cache! };
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const s of [...this.layers, ...(this.probs ? [this.probs] : []), ...(this.headSession ? [this.headSession] : [])]) await s.dispose();
    this.probs = null;
    this.headSession = null;
  }

  // ---- internals ----

  private assertOpen(): void {
    if (this.disposed) throw new KvlensUsageError('this language model was disposed');
  }

  private async createSession(g: BuiltGraph): Promise<OrtSession> {
    return OrtSession.create(g, this.sessionOptions);
  }

  private async probsSession(): Promise<OrtSession> {
    if (!this.probs) this.probs = await this.createSession(buildProbsGraph(this.config));
    return this.probs;
  }

  private async head(): Promise<OrtSession> {
    // No prepacking: the head (vocab x dModel, 545 MB at Qwen2-0.5B) usually sees one row, where packing per call
    // costs nothing, and a prepacked copy would hold the whole matrix twice while the session is created.
    if (!this.headSession) this.headSession = await OrtSession.create(buildHeadGraph(this.config, this.weights), { ...this.sessionOptions, prepack: false });
    return this.headSession;
  }

  private planTaps(patterns: readonly string[]): TapPlan {
    const names = expandHooks(patterns, this.hookDims);
    const perLayer = new Map<number, Set<string>>();
    let embed = false, finalNorm = false, logits = false;
    for (const n of names) {
      const h = parseHook(n);
      const info = TAP_TABLE[h.kind];
      if (info.producer !== 'decoder') throw new KvlensUsageError(`tap "${n}" is not produced by the language model (its producer: ${info.producer})`);
      if ('layer' in h) perLayer.set(h.layer, (perLayer.get(h.layer) ?? new Set()).add(h.kind.slice('lm.'.length)));
      else if (h.kind === 'lm.embed') embed = true;
      else if (h.kind === 'lm.final_norm') finalNorm = true;
      else logits = true;
    }
    return { names, perLayer, embed, finalNorm, logits };
  }

  private inputEmbeddings(req: ForwardRequest): Tensor<'float32'> {
    const D = this.config.hiddenSize;
    if ((req.inputIds === undefined) === (req.inputsEmbeds === undefined)) {
      throw new KvlensUsageError('forward: give exactly one of inputIds and inputsEmbeds');
    }
    if (req.inputsEmbeds) {
      const e = req.inputsEmbeds;
      if (e.dtype !== 'float32' || e.shape.length !== 3 || e.shape[2] !== D) {
        throw new KvlensUsageError(`inputsEmbeds must be float32 [batch, pos, ${D}], got ${e.dtype} [${e.shape.join(', ')}]`);
      }
      return e;
    }
    const ids = toRows(req.inputIds!, 'inputIds');
    if (ids.length === 0 || ids[0].length === 0) throw new KvlensUsageError('inputIds is empty');
    return this.embedding.lookup(ids);
  }

  /** The padding mask over past+pos, or undefined when nothing is padded anywhere. */
  private fullPadding(mask: Rows | Tensor | undefined, past: KvCache | undefined, B: number, S: number): number[][] | undefined {
    const P = past?.length ?? 0;
    if (!mask && !past?.padding) return undefined;
    const rows = mask ? toRows(mask, 'attentionMask2d') : Array.from({ length: B }, () => new Array<number>(S).fill(1));
    if (rows.length !== B) throw new KvlensUsageError(`attentionMask2d has ${rows.length} rows, the input has batch ${B}`);
    return rows.map((r, b) => {
      if (r.length === P + S) return [...r];
      if (r.length === S) return [...(past?.padding?.[b] ?? new Array<number>(P).fill(1)), ...r];
      throw new KvlensUsageError(`attentionMask2d row ${b} has length ${r.length}; expected ${S} (this call) or ${P + S} (cache + this call)`);
    });
  }

  /** 3-D positions for an M-RoPE model (undefined for 1-D RoPE); rejects them for a 1-D model. */
  private mropePositions(given: readonly Rows[] | undefined, positions: number[][], B: number, S: number): number[][][] | undefined {
    const section = this.config.mropeSection;
    if (!section) {
      if (given) throw new KvlensUsageError(`mropePositionIds given, but ${this.config.arch} uses 1-D RoPE (no mrope_section)`);
      return undefined;
    }
    return given ? checkMropeRows(given, section.length, B, S) : section.map(() => positions.map((r) => [...r]));
  }

  private positions(given: Rows | Tensor | undefined, padding: number[][] | undefined, past: KvCache | undefined, B: number, S: number): number[][] {
    if (given) {
      const rows = toRows(given, 'positionIds');
      if (rows.length !== B || rows.some((r) => r.length !== S)) throw new KvlensUsageError(`positionIds must be [${B}, ${S}]`);
      return rows.map((r) => [...r]);
    }
    if (padding) {
      // HF generate(): position = cumsum(mask) - 1, padded slots get 1; keep the last S.
      return padding.map((row) => {
        let c = 0;
        const all = row.map((m) => { c += m; return m === 0 ? 1 : c - 1; });
        return all.slice(all.length - S);
      });
    }
    return Array.from({ length: B }, (_, b) => Array.from({ length: S }, (_, i) => (past?.nextPositions[b] ?? 0) + i));
  }
}

function checkMropeRows(given: readonly Rows[], axes: number, B: number, S: number): number[][][] {
  if (given.length !== axes || given.some((a) => a.length !== B || a.some((r) => r.length !== S))) {
    throw new KvlensUsageError(`mropePositionIds must be [${axes}, ${B}, ${S}]`);
  }
  return given.map((a) => a.map((r) => [...r]));
}

function toRows(x: Rows | Tensor, what: string): number[][] {
  if (!('shape' in x)) return x.map((r) => [...r]);
  if (x.shape.length !== 2) throw new KvlensUsageError(`${what} must be 2-D [batch, pos], got [${x.shape.join(', ')}]`);
  const [B, S] = x.shape;
  const d = x.data as ArrayLike<number | bigint>;
  return Array.from({ length: B }, (_, b) => Array.from({ length: S }, (_, s) => Number(d[b * S + s])));
}

function checkMask(m: Tensor<'float32'>, B: number, S: number, T: number, what: string): Tensor<'float32'> {
  const ok = m.dtype === 'float32' && m.shape.length === 4 && (m.shape[0] === B || m.shape[0] === 1) && m.shape[1] === 1 && m.shape[2] === S && m.shape[3] === T;
  if (!ok) throw new KvlensUsageError(`${what} must be float32 [${B} or 1, 1, ${S}, ${T}], got ${m.dtype} [${m.shape.join(', ')}]`);
  return m;
}

function resolveLogitsAt(at: ForwardRequest['logitsAt'], S: number, tapped: boolean): number[] {
  if (at === 'none') {
    if (tapped) throw new KvlensUsageError('the "logits" tap needs logitsAt other than "none"');
    return [];
  }
  if (at === 'last' || at === undefined) return [S - 1];
  if (at === 'all') return Array.from({ length: S }, (_, i) => i);
  for (const i of at) if (!Number.isInteger(i) || i < 0 || i >= S) throw new KvlensUsageError(`logitsAt: position ${i} is outside 0..${S - 1}`);
  return [...at];
}

/** x [batch, head, total, dHead] -> positions from `start` on. */
export function sliceAxis2(x: Tensor<'float32'>, start: number): Tensor<'float32'> {
  if (start === 0) return x;
  const [B, H, T, d] = x.shape;
  const n = T - start;
  const out = new Float32Array(B * H * n * d);
  for (let bh = 0; bh < B * H; bh++) out.set(x.data.subarray((bh * T + start) * d, (bh + 1) * T * d), bh * n * d);
  return f32([B, H, n, d], out);
}

/** x [batch, k, n] with row j holding request index order[j] -> rows in request order. */
function reorderRows(x: Tensor<'float32'>, order: readonly number[]): Tensor<'float32'> {
  const [B, K, N] = x.shape;
  if (order.every((k, j) => k === j)) return x;
  const out = new Float32Array(x.data.length);
  for (let b = 0; b < B; b++) order.forEach((k, j) => out.set(x.data.subarray((b * K + j) * N, (b * K + j + 1) * N), (b * K + k) * N));
  return f32([B, K, N], out);
}

/** Argmax over the last logits row of each batch entry: logits [batch, k, vocab]. */
export function argmaxRows(logits: Tensor<'float32'>): number[] {
  const [B, K, V] = logits.shape;
  return Array.from({ length: B }, (_, b) => {
    const off = (b * K + K - 1) * V;
    let best = 0;
    for (let v = 1; v < V; v++) if (logits.data[off + v] > logits.data[off + best]) best = v;
    return best;
  });
}
