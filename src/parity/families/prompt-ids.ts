// input_ids / attention_mask of a run computed by kvlens from its prompt text (notes.prompts[run]) and raw images
// (notes.run_images[run]) through the family's processor (loadProcessor), compared exactly with the fixture's.
// When the run records no usable prompt, or the checkpoint has no tokenizer (hand-built ids), the rows are marked
// as read from the fixture with the reason, and the caller feeds the fixture's ids.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadProcessor, type KvlensProcessor } from '../../preprocess/load.js';
import { tensor } from '../../tensor/tensor.js';
import { KvlensInputError } from '../../util/errors.js';
import { EXACT } from '../compare.js';
import type { RowSink } from './common.js';

const HAS_TOKENIZER = ['tokenizer.json', 'vocab.json'];

/** The prompt-computed id rows when kvlens could compute them (compared in the sink), else undefined (rows marked). */
export async function promptIds(sink: RowSink): Promise<number[][] | undefined> {
  const { fx, run, modelDir, cache } = sink.ctx;
  const targets = ['input_ids', 'attention_mask'].filter((n) => sink.has(n));
  const mark = (why: string) => { for (const n of targets) sink.mark(n, 'from-fixture', `read from the fixture: ${why}`); };
  const prompt = fx.prompt(run.name);
  if (prompt === undefined) { mark('the run records no prompt text (notes.prompts)'); return undefined; }
  if (!HAS_TOKENIZER.some((f) => existsSync(join(modelDir, f)))) { mark('the checkpoint has no tokenizer (the fixture ids are hand-built)'); return undefined; }
  let out;
  try {
    const proc = await cache.get<KvlensProcessor>(`processor:${modelDir}`, () => loadProcessor(modelDir), async () => {});
    const images = (fx.runImages(run.name) ?? []).map((p) => join(fx.root, p));
    out = await proc.prepare({ images, text: prompt });
  } catch (e) {
    if (!(e instanceof KvlensInputError)) throw e;
    mark(`kvlens cannot prepare the prompt (${e.message})`);
    return undefined;
  }
  const ids = [Array.from(out.inputIds.data, Number)];
  if (sink.has('input_ids')) sink.compare('input_ids', out.inputIds, EXACT, undefined, 'notes.prompts through the kvlens tokenizer and image-token expansion');
  if (sink.has('attention_mask')) sink.compare('attention_mask', tensor('int64', out.inputIds.shape, new BigInt64Array(ids[0].length).fill(1n)), EXACT);
  return ids;
}
