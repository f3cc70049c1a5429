// One onnxruntime session over a BuiltGraph whose weights stay in their safetensors files.
//
// How weights are found without copying: ORT refuses external data whose resolved path (symlinks followed)
// leaves the model's directory, and hub-cache snapshots are symlinks into ../../blobs. So the model is
// loaded from bytes and ORT's "external initializers folder" is set to the deepest directory that holds the
// REAL files (symlinks already resolved by WeightSet); each initializer's location is the real file's path
// relative to it. Nothing is written to disk, nothing is copied, read-only checkpoints work. With 4 KiB
// aligned offsets ORT memory-maps the data; otherwise it reads each tensor once.

import * as ort from 'onnxruntime-node';
import { dirname, relative, sep } from 'node:path';
import type { BuiltGraph } from '../graph/builder.js';
import { tensor, type DType, type Tensor } from '../tensor/tensor.js';
import { deviceError, executionProviders, type Device } from './device.js';
import { measured } from './stats.js';

export interface SessionOptions {
  readonly device?: Device;
  /** Intra-op threads (default: ORT's choice, i.e. all cores). */
  readonly threads?: number;
  /** ORT graph optimisation level (default 'all'; constant-folds the BF16->F32 weight casts at load). */
  readonly optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Keep ORT's CPU memory arena (default false). Every arena grows to its session's peak activations and never
   * shrinks; with one session per decoder layer that multiplies activation memory by the layer count.
   */
  readonly memoryArena?: boolean;
  /**
   * Let MLAS prepack constant weights (default true). Prepacking copies every Gemm/MatMul weight into a packed
   * buffer at load: fastest for many-row inputs, but while the session is created the weight is held twice (the
   * file's bytes plus the packed copy). With it off, 4 KiB-aligned external weights stay memory-mapped file pages
   * (one copy, shared with the page cache) and are packed on the fly per call, which costs little when a call
   * has few rows (e.g. the LM head at one position).
   */
  readonly prepack?: boolean;
}

/** Deepest common directory of absolute paths. */
export function commonDir(files: readonly string[]): string {
  if (files.length === 0) return process.cwd();
  let parts = dirname(files[0]).split(sep);
  for (const f of files.slice(1)) {
    const p = dirname(f).split(sep);
    let i = 0;
    while (i < parts.length && i < p.length && parts[i] === p[i]) i++;
    parts = parts.slice(0, i);
  }
  return parts.join(sep) || sep;
}

const ORT_TO_DTYPE: Record<string, DType> = {
  float32: 'float32', float16: 'float16', int64: 'int64', int32: 'int32', uint8: 'uint8', int8: 'int8', bool: 'bool', float64: 'float64',
};

/** kvlens Tensor -> ORT tensor (no copy of the JS data on our side). */
export function toOrt(t: Tensor): ort.Tensor {
  if (t.dtype === 'bfloat16') throw new Error('toOrt: bfloat16 inputs are not supported; convert to float32');
  return new ort.Tensor(t.dtype as ort.Tensor.Type, t.data as never, [...t.shape]);
}

/** ORT tensor -> kvlens Tensor (the binding already returns JS-owned typed arrays). */
export function fromOrt(t: ort.Tensor): Tensor {
  const dtype = ORT_TO_DTYPE[t.type];
  if (!dtype) throw new Error(`fromOrt: unsupported ORT output type ${t.type}`);
  return tensor(dtype, t.dims, t.data as never);
}

export class OrtSession {
  private disposed = false;

  private constructor(readonly name: string, private readonly session: ort.InferenceSession, readonly device: Device) {}

  static async create(graph: BuiltGraph, opts: SessionOptions = {}): Promise<OrtSession> {
    const device = opts.device ?? 'cpu';
    const files = [...new Set(graph.externals.map((e) => e.file))];
    const folder = commonDir(files);
    const bytes = graph.encode((file) => relative(folder, file));
    const so: ort.InferenceSession.SessionOptions & { extra?: Record<string, unknown> } = {
      executionProviders: executionProviders(device),
      graphOptimizationLevel: opts.optimization ?? 'all',
      enableCpuMemArena: opts.memoryArena ?? false,
      ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
      extra: {
        session: {
          model_external_initializers_file_folder_path: folder,
          ...(opts.prepack === false ? { disable_prepacking: '1' } : {}),
        },
      },
    };
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes, so);
    } catch (e) {
      if (device !== 'cpu' && /provider|adapter|shared library|backend|WebGPU|CUDA/i.test(String((e as Error).message))) throw deviceError(device, e);
      throw new Error(`creating ORT session "${graph.name}" failed: ${(e as Error).message}`);
    }
    return new OrtSession(graph.name, session, device);
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Run with kvlens tensors in, and fetch only the named outputs (all when omitted). */
  async run(feeds: Record<string, Tensor>, fetch?: readonly string[]): Promise<Record<string, Tensor>> {
    if (this.disposed) throw new Error(`session "${this.name}" was disposed`);
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = toOrt(v);
    const res = await measured(`session:${this.name}`, () => (fetch ? this.session.run(ortFeeds, [...fetch]) : this.session.run(ortFeeds)));
    const out: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(res)) {
      out[k] = fromOrt(v);
      v.dispose();
    }
    return out;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.session.release();
  }
}
