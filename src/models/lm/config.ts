// The shared decoder-LM description. Architectures (Qwen2, later Llama, Qwen2-VL's LM) differ only in these
// data fields, filled by each adapter's config parser; the graph code in this folder reads nothing else.

export type MlpAct = 'silu' | 'gelu' | 'gelu_pytorch_tanh';

/** Where the LM's tensors live in the checkpoint. `model` is the prefix of embed_tokens/layers/norm. */
export interface DecoderWeightNames {
  /** e.g. "model." (Qwen2ForCausalLM) or "language_model.model." (LLaVA-OneVision). */
  readonly model: string;
  /** e.g. "lm_head.weight" or "language_model.lm_head.weight"; ignored when the head is tied. */
  readonly lmHead: string;
}

/** HF names under an outer prefix: "" -> model./lm_head.weight; "language_model." -> language_model.model./... */
export function weightNamesUnder(outer: string): DecoderWeightNames {
  return { model: `${outer}model.`, lmHead: `${outer}lm_head.weight` };
}

export interface DecoderConfig {
  /** Architecture name for messages ("qwen2", ...). */
  readonly arch: string;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  /**
   * M-RoPE (Qwen2-VL / Qwen2.5-VL): the dHead/2 frequencies are split into [temporal, height, width] sections,
   * each rotated by its own axis of 3-D position ids. Absent for plain 1-D RoPE.
   */
  readonly mropeSection?: readonly number[];
  readonly hiddenAct: MlpAct;
  /** q/k/v projections carry biases (Qwen2: true; Llama: attention_bias). */
  readonly qkvBias: boolean;
  /** o_proj carries a bias (Llama with attention_bias; Qwen2: false). */
  readonly oBias: boolean;
  /** gate/up/down carry biases (Llama mlp_bias). */
  readonly mlpBias: boolean;
  /** LM head shares the embedding matrix (no lm_head tensor needed). */
  readonly tieWordEmbeddings: boolean;
  readonly eosTokenIds: readonly number[];
  readonly weights: DecoderWeightNames;
}

/** Per-layer tensor names, derived from the config's prefix. */
export function layerWeightNames(cfg: DecoderConfig, layer: number) {
  const p = `${cfg.weights.model}layers.${layer}.`;
  return {
    inputNorm: `${p}input_layernorm.weight`,
    postAttnNorm: `${p}post_attention_layernorm.weight`,
    q: `${p}self_attn.q_proj`, k: `${p}self_attn.k_proj`, v: `${p}self_attn.v_proj`, o: `${p}self_attn.o_proj`,
    gate: `${p}mlp.gate_proj`, up: `${p}mlp.up_proj`, down: `${p}mlp.down_proj`,
  };
}

export function embedWeightName(cfg: DecoderConfig): string {
  return `${cfg.weights.model}embed_tokens.weight`;
}

export function finalNormWeightName(cfg: DecoderConfig): string {
  return `${cfg.weights.model}norm.weight`;
}
