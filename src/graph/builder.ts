// A small typed ONNX graph builder. Values are names; ops append nodes; weights are EXTERNAL references into
// safetensors files (nothing copied), optionally followed by a Cast to float32 for BF16/F16 checkpoints.
//
// Usage (a Linear layer reading an HF [out, in] weight straight from a safetensors file):
//
//   import { GraphBuilder } from '../graph/builder.js';
//   import { WeightSet } from '../tensor/safetensors.js';
//   const ws = WeightSet.open(checkpointDir);
//   const g = new GraphBuilder('proj');
//   const x = g.input('x', 'float32', ['batch', 'pos', 64]);                 // [batch, pos, 64]
//   const w = g.weight(ws.entry('mlp.fc1.weight'));                          // [out, in], cast to f32 if bf16/f16
//   const b = g.weight(ws.entry('mlp.fc1.bias'));                            // [out]
//   const y = g.linear(x, w, b);                                             // [batch, pos, out]
//   g.output(g.gelu(y, 'tanh'), 'y');
//   const session = await OrtSession.create(g.build(), { device: 'cpu' });   // src/runtime/session.ts
//   const { y: out } = await session.run({ x: f32([1, 3, 64], data) }, ['y']);
//   session.dispose();
//
// Shapes in comments follow the dimension vocabulary of src/taps/names.ts.

import { numel, type DType, type Tensor } from '../tensor/tensor.js';
import type { TensorEntry } from '../tensor/safetensors.js';
import { AttrType, DATA_LOCATION_EXTERNAL, F, Message, OnnxDataType, type OnnxDataTypeCode } from './proto.js';

export type Dim = number | string;

/** A value in the graph (its name). Helpers return these; pass them on as inputs. */
export interface Value {
  readonly name: string;
}

const ONNX_DTYPE: Partial<Record<DType, OnnxDataTypeCode>> = {
  float32: OnnxDataType.FLOAT, float16: OnnxDataType.FLOAT16, bfloat16: OnnxDataType.BFLOAT16, int64: OnnxDataType.INT64,
  int32: OnnxDataType.INT32, uint8: OnnxDataType.UINT8, int8: OnnxDataType.INT8, bool: OnnxDataType.BOOL, float64: OnnxDataType.DOUBLE,
};

export function onnxDataType(dtype: DType): OnnxDataTypeCode {
  const t = ONNX_DTYPE[dtype];
  if (t === undefined) throw new Error(`graph: dtype ${dtype} has no ONNX equivalent`);
  return t;
}

/** Attribute values; build them with the A helpers so ints and floats cannot be confused. */
export type Attr =
  | { kind: 'int'; v: number }
  | { kind: 'float'; v: number }
  | { kind: 'string'; v: string }
  | { kind: 'ints'; v: readonly number[] }
  | { kind: 'floats'; v: readonly number[] }
  | { kind: 'tensor'; v: Tensor };

export const A = {
  i: (v: number): Attr => ({ kind: 'int', v }),
  f: (v: number): Attr => ({ kind: 'float', v }),
  s: (v: string): Attr => ({ kind: 'string', v }),
  is: (v: readonly number[]): Attr => ({ kind: 'ints', v }),
  fs: (v: readonly number[]): Attr => ({ kind: 'floats', v }),
  t: (v: Tensor): Attr => ({ kind: 'tensor', v }),
};

/** An external initializer: bytes [offset, offset+length) of an absolute file path. */
export interface ExternalRef {
  readonly name: string;
  readonly file: string;
  readonly offset: number;
  readonly length: number;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/** A built model: the graph plus the files its external initializers point into (absolute, symlinks resolved). */
export interface BuiltGraph {
  readonly name: string;
  readonly externals: readonly ExternalRef[];
  /** Encode the ModelProto; `locate` maps each absolute weight file to the `location` string ORT will resolve. */
  encode(locate: (file: string) => string): Uint8Array;
}

interface NodeRec {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, Attr>;
  domain: string;
}

interface IoRec {
  name: string;
  dtype: DType;
  dims?: readonly Dim[];
}

export type GeluApprox = 'none' | 'tanh';

/** float32 min: HF's additive "blocked" value (finfo(float32).min). */
export const F32_MIN = -3.4028234663852886e38;

export class GraphBuilder {
  private readonly nodes: NodeRec[] = [];
  private readonly inputs: IoRec[] = [];
  private readonly outputs: IoRec[] = [];
  private readonly constants = new Map<string, Tensor>();
  private readonly externals: ExternalRef[] = [];
  private readonly used = new Set<string>();
  private readonly weightValues = new Map<string, Value>();
  private readonly weightShapes = new Map<string, readonly number[]>();
  private counter = 0;

  constructor(readonly name: string, readonly opset = 23) {}

  /** A fresh unique value name. */
  fresh(hint = 'v'): string {
    let n: string;
    do n = `${hint}_${this.counter++}`; while (this.used.has(n));
    this.used.add(n);
    return n;
  }

  private claim(name: string): string {
    if (this.used.has(name)) throw new Error(`graph ${this.name}: value name "${name}" is already used`);
    this.used.add(name);
    return name;
  }

  input(name: string, dtype: DType, dims: readonly Dim[]): Value {
    this.inputs.push({ name: this.claim(name), dtype, dims });
    return { name };
  }

  /** Mark a value as a graph output (renamed through Identity when `name` differs). */
  output(v: Value, name = v.name, dtype: DType = 'float32', dims?: readonly Dim[]): Value {
    let src = v.name;
    if (name !== v.name) {
      this.nodes.push({ op: 'Identity', inputs: [src], outputs: [this.claim(name)], attrs: {}, domain: '' });
      src = name;
    }
    this.outputs.push({ name: src, dtype, dims });
    return { name: src };
  }

  /** A small constant stored inline (raw_data). */
  constant(t: Tensor, hint = 'const'): Value {
    const name = this.fresh(hint);
    this.constants.set(name, t);
    this.weightShapes.set(name, t.shape);
    return { name };
  }

  scalar(v: number, hint = 'c'): Value {
    return this.constant({ dtype: 'float32', shape: [], data: Float32Array.of(v) }, hint);
  }

  ints(vs: readonly number[], hint = 'shape'): Value {
    return this.constant({ dtype: 'int64', shape: [vs.length], data: BigInt64Array.from(vs.map((x) => BigInt(x))) }, hint);
  }

  /**
   * A weight read through ONNX external data straight from its safetensors file. BF16/F16 weights get a Cast
   * to float32 (ORT constant-folds it at load, so compute stays float32 and the half copy is dropped).
   */
  weight(entry: TensorEntry, opts: { castToF32?: boolean } = {}): Value {
    const cast = opts.castToF32 ?? (entry.dtype === 'bfloat16' || entry.dtype === 'float16');
    const key = `${entry.file}\0${entry.fileOffset}\0${cast}`;
    const seen = this.weightValues.get(key);
    if (seen) return seen; // the same bytes used twice (tied weights) are one initializer
    const base = sanitize(entry.name);
    const name = this.used.has(base) ? this.fresh(base) : this.claim(base);
    this.externals.push({ name, file: entry.file, offset: entry.fileOffset, length: entry.byteLength, dtype: entry.dtype, shape: entry.shape });
    const v = cast ? this.cast({ name }, 'float32') : { name };
    this.weightValues.set(key, v);
    this.weightShapes.set(v.name, entry.shape);
    return v;
  }

  /** Append one node; returns its outputs. */
  node(op: string, inputs: ReadonlyArray<Value | null>, attrs: Record<string, Attr> = {}, nOutputs = 1, domain = ''): Value[] {
    const outs = Array.from({ length: nOutputs }, () => this.fresh(op.toLowerCase()));
    this.nodes.push({ op, inputs: inputs.map((v) => (v ? v.name : '')), outputs: outs, attrs, domain });
    return outs.map((name) => ({ name }));
  }

  op(op: string, inputs: ReadonlyArray<Value | null>, attrs: Record<string, Attr> = {}): Value {
    return this.node(op, inputs, attrs, 1)[0];
  }

  // ---- elementwise and linear algebra ----
  add(a: Value, b: Value): Value { return this.op('Add', [a, b]); }
  sub(a: Value, b: Value): Value { return this.op('Sub', [a, b]); }
  mul(a: Value, b: Value): Value { return this.op('Mul', [a, b]); }
  div(a: Value, b: Value): Value { return this.op('Div', [a, b]); }
  neg(a: Value): Value { return this.op('Neg', [a]); }
  sigmoid(a: Value): Value { return this.op('Sigmoid', [a]); }
  /** SiLU = x * sigmoid(x), as torch.nn.functional.silu. */
  silu(a: Value): Value { return this.mul(a, this.sigmoid(a)); }
  /** Gelu (opset 20): 'none' = exact erf form (torch gelu), 'tanh' = gelu_pytorch_tanh. */
  gelu(a: Value, approximate: GeluApprox = 'none'): Value { return this.op('Gelu', [a], { approximate: A.s(approximate) }); }
  matmul(a: Value, b: Value): Value { return this.op('MatMul', [a, b]); }
  cast(a: Value, to: DType): Value { return this.op('Cast', [a], { to: A.i(onnxDataType(to)) }); }
  softmax(a: Value, axis = -1): Value { return this.op('Softmax', [a], { axis: A.i(axis) }); }

  /**
   * y = x @ W^T (+ b) for an HF Linear weight W [out, in]; any leading dims. Uses Gemm(transB=1) on the
   * flattened rows: a MatMul against Transpose(W) would make ORT hold (or, for large W, recompute on every run)
   * a transposed copy of the weight, while Gemm prepacks W as stored.
   */
  linear(x: Value, w: Value, b?: Value): Value {
    const lead = this.slice(this.op('Shape', [x]), [0], [-1], [0]); // leading dims of x
    const rows = this.reshape(x, [-1, this.inDim(w)]);
    const y = this.gemm(rows, w, b, { transB: true }); // [rows, out]
    return this.op('Reshape', [y, this.concat([lead, this.ints([-1])], 0)]);
  }

  /** The `in` size of a Linear weight created by weight() (through its optional Cast). */
  private inDim(w: Value): number {
    const shape = this.weightShapes.get(w.name);
    if (!shape || shape.length !== 2) throw new Error(`graph ${this.name}: linear() needs a 2-D weight from weight() or constant(), got ${w.name}`);
    return shape[1];
  }

  /** Gemm for 2-D inputs: alpha * A @ op(B) + beta * C. */
  gemm(a: Value, b: Value, c?: Value, opts: { transB?: boolean; alpha?: number; beta?: number } = {}): Value {
    return this.op('Gemm', c ? [a, b, c] : [a, b], {
      transB: A.i(opts.transB ? 1 : 0), alpha: A.f(opts.alpha ?? 1), beta: A.f(opts.beta ?? 1),
    });
  }

  // ---- shape ops ----
  reshape(a: Value, shape: readonly number[]): Value { return this.op('Reshape', [a, this.ints(shape)]); }
  transpose(a: Value, perm: readonly number[]): Value { return this.op('Transpose', [a], { perm: A.is(perm) }); }
  concat(vs: readonly Value[], axis: number): Value { return this.op('Concat', vs, { axis: A.i(axis) }); }
  gather(data: Value, indices: Value, axis = 0): Value { return this.op('Gather', [data, indices], { axis: A.i(axis) }); }
  unsqueeze(a: Value, axes: readonly number[]): Value { return this.op('Unsqueeze', [a, this.ints(axes)]); }
  slice(a: Value, starts: readonly number[], ends: readonly number[], axes: readonly number[]): Value {
    return this.op('Slice', [a, this.ints(starts), this.ints(ends), this.ints(axes)]);
  }
  split(a: Value, sizes: readonly number[], axis: number): Value[] {
    return this.node('Split', [a, this.ints(sizes)], { axis: A.i(axis) }, sizes.length);
  }
  where(cond: Value, a: Value, b: Value): Value { return this.op('Where', [cond, a, b]); }

  // ---- normalisations ----

  /**
   * RMSNorm as HF computes it (Qwen2/Llama): x * rsqrt(mean(x^2) + eps) * weight, in float32.
   * Explicit ops so the arithmetic order matches torch (ORT's fused kernels differ in the last bits).
   */
  rmsNorm(x: Value, weight: Value, eps: number): Value {
    const variance = this.op('ReduceMean', [this.mul(x, x), this.ints([-1])], { keepdims: A.i(1) });
    const inv = this.op('Reciprocal', [this.op('Sqrt', [this.add(variance, this.scalar(eps, 'eps'))])]);
    return this.mul(weight, this.mul(x, inv));
  }

  /** LayerNorm over the last axis (ONNX LayerNormalization, opset 17+), as torch.nn.LayerNorm. */
  layerNorm(x: Value, weight: Value, bias: Value, eps: number): Value {
    return this.op('LayerNormalization', [x, weight, bias], { axis: A.i(-1), epsilon: A.f(eps) });
  }

  // ---- attention ----

  /**
   * Fused scaled-dot-product attention (ONNX Attention, opset 23), 4-D form with GQA:
   * q [batch, qHead, qPos, dHead], k/v [batch, kvHead, kPos, dHead], additive mask [batch|1, 1, qPos, kPos].
   * Returns [batch, qHead, qPos, dHead]. Bit-identical to explicitAttention on ORT CPU (runtime-findings §1).
   */
  attention(q: Value, k: Value, v: Value, mask: Value | null, scale: number): Value {
    return this.op('Attention', [q, k, v, mask], { scale: A.f(scale) });
  }

  /**
   * Unmasked self-attention without a materialised score matrix: com.microsoft MultiHeadAttention, whose CPU kernel
   * takes MLAS's blocked (flash) path when there is no mask, past or present. Same 4-D interface as `attention`
   * (q/k/v [batch, head, pos, dHead], heads equal), returning [batch, head, qPos, dHead]; the heads are merged into
   * [batch, pos, head*dHead] for the op and split back. A vision tower's [tile, head, token, token] scores are the
   * largest transient buffer of a forward (68 MB per layer for two SigLIP-384 tiles): each one is freshly mapped memory.
   */
  fusedSelfAttention(q: Value, k: Value, v: Value, scale: number, heads: number): Value {
    const merge = (x: Value) => this.reshape(this.transpose(x, [0, 2, 1, 3]), [0, 0, -1]); // [batch, pos, head*dHead]
    const out = this.node('MultiHeadAttention', [merge(q), merge(k), merge(v)], { num_heads: A.i(heads), scale: A.f(scale) }, 1, 'com.microsoft')[0];
    return this.transpose(this.reshape(out, [0, 0, heads, -1]), [0, 2, 1, 3]);
  }

  /**
   * The same attention from MatMul/Softmax, returning the probabilities too (for the attn.probs tap).
   * GQA: each kv head serves qHeads/kvHeads consecutive query heads (HF repeat_kv).
   * Returns { out [batch, qHead, qPos, dHead], probs [batch, qHead, qPos, kPos] }.
   */
  explicitAttention(q: Value, k: Value, v: Value, mask: Value | null, scale: number, heads: { q: number; kv: number; dHead: number }): { out: Value; probs: Value } {
    const probs = this.attentionProbs(q, k, mask, scale, heads);
    return { out: this.matmul(probs, this.repeatKv(v, heads)), probs };
  }

  /** softmax(q k^T * scale + mask): [batch, qHead, qPos, kPos], GQA as in explicitAttention. */
  attentionProbs(q: Value, k: Value, mask: Value | null, scale: number, heads: { q: number; kv: number; dHead: number }): Value {
    let scores = this.mul(this.matmul(q, this.transpose(this.repeatKv(k, heads), [0, 1, 3, 2])), this.scalar(scale, 'scale')); // [b, q, S, T]
    if (mask) scores = this.add(scores, mask);
    return this.softmax(scores, -1);
  }

  /** [batch, kvHead, T, dHead] -> [batch, qHead, T, dHead]: each kv head serves qHeads/kvHeads consecutive query heads. */
  private repeatKv(t: Value, heads: { q: number; kv: number; dHead: number }): Value {
    const rep = heads.q / heads.kv;
    if (!Number.isInteger(rep)) throw new Error(`graph: ${heads.q} query heads are not a multiple of ${heads.kv} kv heads`);
    if (rep === 1) return t;
    // [b, kv, T, d] -> [b, kv, 1, T, d] -> [b, kv, rep, T, d] -> [b, q, T, d]
    const u = this.unsqueeze(t, [2]);
    const shape = this.op('Shape', [u]);
    const target = this.op('Mul', [shape, this.ints([1, 1, rep, 1, 1])]);
    const e = this.op('Expand', [u, target]);
    return this.reshape(e, [0, heads.q, -1, heads.dHead]);
  }

  // ---- encoding ----

  build(): BuiltGraph {
    const snapshot = {
      nodes: [...this.nodes], inputs: [...this.inputs], outputs: [...this.outputs],
      constants: new Map(this.constants), externals: [...this.externals],
    };
    const { name, opset } = this;
    return {
      name,
      externals: snapshot.externals,
      encode: (locate) => encodeModel(name, opset, snapshot, locate),
    };
  }
}

function sanitize(name: string): string {
  return name.replace(/[^A-Za-z0-9_.:/-]/g, '_');
}

function encodeModel(
  name: string,
  opset: number,
  g: { nodes: NodeRec[]; inputs: IoRec[]; outputs: IoRec[]; constants: Map<string, Tensor>; externals: ExternalRef[] },
  locate: (file: string) => string,
): Uint8Array {
  const graph = new Message();
  for (const n of g.nodes) graph.message(F.graph.node, encodeNode(n));
  graph.string(F.graph.name, name);
  for (const [cname, t] of g.constants) graph.message(F.graph.initializer, encodeTensor(cname, t));
  for (const e of g.externals) graph.message(F.graph.initializer, encodeExternal(e, locate(e.file)));
  for (const i of g.inputs) graph.message(F.graph.input, encodeValueInfo(i));
  for (const o of g.outputs) graph.message(F.graph.output, encodeValueInfo(o));
  const model = new Message()
    .int(F.model.irVersion, 10)
    .string(F.model.producerName, 'kvlens')
    .string(F.model.producerVersion, '0.1')
    .message(F.model.graph, graph)
    .message(F.model.opsetImport, new Message().string(F.opset.domain, '').int(F.opset.version, opset));
  // Contrib ops (com.microsoft, version 1) need their own opset import.
  for (const domain of new Set(g.nodes.map((n) => n.domain).filter((d) => d !== ''))) {
    model.message(F.model.opsetImport, new Message().string(F.opset.domain, domain).int(F.opset.version, 1));
  }
  return model.encode();
}

function encodeNode(n: NodeRec): Message {
  const m = new Message().strings(F.node.input, n.inputs).strings(F.node.output, n.outputs).string(F.node.name, n.outputs[0]).string(F.node.opType, n.op);
  for (const [k, a] of Object.entries(n.attrs)) m.message(F.node.attribute, encodeAttr(k, a));
  if (n.domain) m.string(F.node.domain, n.domain);
  return m;
}

function encodeAttr(name: string, a: Attr): Message {
  const m = new Message().string(F.attr.name, name);
  switch (a.kind) {
    case 'int': return m.int(F.attr.i, a.v).int(F.attr.type, AttrType.INT);
    case 'float': return m.float(F.attr.f, a.v).int(F.attr.type, AttrType.FLOAT);
    case 'string': return m.string(F.attr.s, a.v).int(F.attr.type, AttrType.STRING);
    case 'ints': return m.ints(F.attr.ints, a.v).int(F.attr.type, AttrType.INTS);
    case 'floats': return m.floats(F.attr.floats, a.v).int(F.attr.type, AttrType.FLOATS);
    case 'tensor': return m.message(F.attr.t, encodeTensor('', a.v)).int(F.attr.type, AttrType.TENSOR);
  }
}

function encodeTensor(name: string, t: Tensor): Message {
  const d = t.data;
  const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  if (numel(t.shape) !== d.length) throw new Error(`graph: constant ${name} has ${d.length} elements for shape [${t.shape.join(', ')}]`);
  return new Message().ints(F.tensor.dims, t.shape).int(F.tensor.dataType, onnxDataType(t.dtype)).string(F.tensor.name, name).raw(F.tensor.rawData, bytes);
}

function encodeExternal(e: ExternalRef, location: string): Message {
  const entry = (k: string, v: string) => new Message().string(F.stringEntry.key, k).string(F.stringEntry.value, v);
  return new Message()
    .ints(F.tensor.dims, e.shape)
    .int(F.tensor.dataType, onnxDataType(e.dtype))
    .string(F.tensor.name, e.name)
    .message(F.tensor.externalData, entry('location', location))
    .message(F.tensor.externalData, entry('offset', String(e.offset)))
    .message(F.tensor.externalData, entry('length', String(e.length)))
    .int(F.tensor.dataLocation, DATA_LOCATION_EXTERNAL);
}

function encodeValueInfo(io: IoRec): Message {
  const tt = new Message().int(F.tensorType.elemType, onnxDataType(io.dtype));
  if (io.dims) {
    const shape = new Message();
    for (const d of io.dims) shape.message(F.shape.dim, typeof d === 'number' ? new Message().int(F.dim.value, d) : new Message().string(F.dim.param, d));
    tt.message(F.tensorType.shape, shape);
  }
  return new Message().string(F.valueInfo.name, io.name).message(F.valueInfo.type, new Message().message(F.typeProto.tensorType, tt));
}
