// Token embeddings read row by row straight from the safetensors file (pread per token): no ORT session and
// no resident copy of the vocab x dModel matrix (545 MB at Qwen2-0.5B size) just to look up a few rows.

import { closeSync, openSync, readSync } from 'node:fs';
import type { TensorEntry } from '../../tensor/safetensors.js';
import { bf16ToF32, f16ToF32, f32, type Tensor } from '../../tensor/tensor.js';
import { KvlensInputError, KvlensUsageError } from '../../util/errors.js';

export class EmbeddingTable {
  readonly vocab: number;
  readonly dim: number;
  private readonly rowBytes: number;

  constructor(private readonly entry: TensorEntry) {
    if (entry.shape.length !== 2) throw new KvlensInputError(`embedding "${entry.name}" must be 2-D [vocab, dModel], got [${entry.shape.join(', ')}]`, entry.file);
    if (!['float32', 'bfloat16', 'float16'].includes(entry.dtype)) throw new KvlensInputError(`embedding "${entry.name}" has dtype ${entry.dtype}; expected F32, BF16 or F16`, entry.file);
    [this.vocab, this.dim] = entry.shape;
    this.rowBytes = entry.byteLength / this.vocab;
  }

  /** ids [batch][pos] -> embeddings [batch, pos, dModel] (float32). */
  lookup(ids: readonly (readonly number[])[]): Tensor<'float32'> {
    const B = ids.length;
    const S = ids[0]?.length ?? 0;
    const out = new Float32Array(B * S * this.dim);
    const raw = new Uint8Array(this.rowBytes);
    const fd = openSync(this.entry.file, 'r');
    try {
      for (let b = 0; b < B; b++) {
        if (ids[b].length !== S) throw new KvlensUsageError(`input ids: row ${b} has ${ids[b].length} tokens, row 0 has ${S}`);
        for (let s = 0; s < S; s++) {
          const id = ids[b][s];
          if (!Number.isInteger(id) || id < 0 || id >= this.vocab) throw new KvlensUsageError(`input ids: token id ${id} at [${b}, ${s}] is outside the vocabulary 0..${this.vocab - 1}`);
          const n = readSync(fd, raw, 0, this.rowBytes, this.entry.fileOffset + id * this.rowBytes);
          if (n !== this.rowBytes) throw new KvlensInputError(`short read of embedding row ${id}`, this.entry.file);
          out.set(this.decode(raw), (b * S + s) * this.dim);
        }
      }
    } finally {
      closeSync(fd);
    }
    return f32([B, S, this.dim], out);
  }

  private decode(raw: Uint8Array): Float32Array {
    const copy = raw.slice(); // aligned copy
    switch (this.entry.dtype) {
      case 'float32': return new Float32Array(copy.buffer);
      case 'bfloat16': return bf16ToF32(new Uint16Array(copy.buffer));
      default: return f16ToF32(new Uint16Array(copy.buffer));
    }
  }
}
