// Running a vision session over a batch of tiles: the input checks every tower makes (tile shape, known output
// names, attention maps only when built) and the chunked run, so a large batch never materialises every
// activation of every tile at once.

import type { Device, OrtSession } from '../../runtime/index.js';
import { tensor, type Tensor } from '../../tensor/tensor.js';
import { KvlensInputError, KvlensUsageError } from '../../util/errors.js';

/** Tiles must be float32 [tile, channels, size, size]; `where` names the input in the error. */
export function expectTiles(pixel: Tensor, channels: number, size: number, subject: string, where: string): void {
  const s = pixel.shape;
  if (pixel.dtype !== 'float32' || s.length !== 4 || s[1] !== channels || s[2] !== size || s[3] !== size) {
    throw new KvlensInputError(`${subject} must be float32 [tile, ${channels}, ${size}, ${size}], got ${pixel.dtype} [${s.join(', ')}]`, where);
  }
}

/** Every requested name must be one the session produces; `what` names the kind, e.g. "SigLIP hook". */
export function expectKnownOutputs(names: readonly string[], valid: readonly string[], what: string): void {
  for (const n of names) if (!valid.includes(n)) throw new KvlensUsageError(`unknown ${what} "${n}"; valid: ${valid.join(', ')}`);
}

/** The per-layer attention-map outputs `<prefix>.{L}.attn.probs`, refused when the session was built without them. */
export function attentionProbNames(prefix: string, layers: number, wanted: boolean | undefined, message: string): string[] {
  if (!wanted) return [];
  if (!layers) throw new KvlensUsageError(message);
  return Array.from({ length: layers }, (_, l) => `${prefix}.${l}.attn.probs`);
}

/**
 * Tiles per vision run when the caller does not say: 1 on the CPU, 16 on an accelerator. On the CPU one tile's
 * matrix products (hundreds of rows) already run at the MatMul ceiling, so batching tiles buys no speed and only
 * multiplies the run's buffers: with 2 tiles of SigLIP-so400m per run the tower's transient buffers (24 MiB MLP
 * activations) fragmented the heap to +745 MiB in the first run against +370 MiB one tile at a time, and the
 * per-run memory block (61 MiB) no longer fit under glibc's 32 MiB mmap threshold, so it was mapped afresh every
 * run. The steady-state tower time was the same (7.4-8.0 s for 2 tiles in four runs each). Accelerators gain from larger batches.
 */
export function defaultTileBatch(device: Device | undefined): number {
  return !device || device === 'cpu' ? 1 : 16;
}

/** Run a session over the leading (tile) axis in chunks and concatenate each fetched output along axis 0. */
export async function runTiled(session: OrtSession, inputName: string, input: Tensor, fetch: readonly string[], chunk: number): Promise<Map<string, Tensor>> {
  const n = input.shape[0];
  const per = input.data.length / Math.max(n, 1);
  const pieces = new Map<string, Tensor[]>(fetch.map((f) => [f, []]));
  for (let t0 = 0; t0 < n; t0 += chunk) {
    const t1 = Math.min(n, t0 + chunk);
    const data = (input.data as Float32Array).subarray(t0 * per, t1 * per);
    const out = await session.run({ [inputName]: tensor('float32', [t1 - t0, ...input.shape.slice(1)], data) }, fetch);
    for (const f of fetch) pieces.get(f)!.push(out[f]);
  }
  return new Map(fetch.map((f) => [f, concat0(pieces.get(f)!)]));
}

function concat0(ts: Tensor[]): Tensor {
  if (ts.length === 1) return ts[0];
  const total = ts.reduce((a, t) => a + t.data.length, 0);
  const out = new Float32Array(total);
  let o = 0;
  for (const t of ts) { out.set(t.data as Float32Array, o); o += t.data.length; }
  return tensor('float32', [ts.reduce((a, t) => a + t.shape[0], 0), ...ts[0].shape.slice(1)], out);
}
