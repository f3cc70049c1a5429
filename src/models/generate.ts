// Greedy decoding shared by every model family: prefill once, then feed each row's argmax token on the cache
// until every row produced a stop id or maxNewTokens were generated.

import { KvlensUsageError } from '../util/errors.js';
import { argmaxRows } from './lm/index.js';
import type { GenerateOptions, GenerateResult, KvlensModel, ModelForwardRequest } from './types.js';

export async function greedyGenerate(
  model: Pick<KvlensModel, 'forward' | 'continue' | 'eosTokenIds'>, req: ModelForwardRequest, opts: GenerateOptions,
): Promise<GenerateResult> {
  const max = opts.maxNewTokens;
  if (!Number.isInteger(max) || max < 1) throw new KvlensUsageError(`generate: maxNewTokens must be a positive integer, got ${max}`);
  const eos = new Set(opts.eos ?? model.eosTokenIds);
  // argmaxRows reads each row's LAST logits row, so the prefill must end with the last position.
  const logitsAt = req.logitsAt === 'all' ? 'all' : 'last';
  const prefill = await model.forward({ ...req, logitsAt });
  let cache = prefill.cache;
  let next = argmaxRows(prefill.logits!);
  const tokens: number[][] = next.map(() => []);
  const done = next.map(() => false);
  for (let step = 0; ; step++) {
    next.forEach((t, b) => {
      if (done[b]) return;
      tokens[b].push(t);
      if (eos.has(t)) done[b] = true;
    });
    if (step + 1 >= max || done.every(Boolean)) break;
    // Finished rows keep being fed a token (batch rows share one call); their outputs are ignored.
    // Interventions keep applying to generated tokens: open-ended specs (queriesFrom) cover them; explicit
    // query lists name prefill positions only and drop out here.
    const block = req.block?.filter((b) => b.queriesFrom !== undefined).map((b) => ({ layers: b.layers, queriesFrom: b.queriesFrom, keys: b.keys }));
    const step1 = await model.continue(cache, next.map((t) => [t]), { logitsAt: 'last', ...(block?.length ? { block } : {}) });
    cache = step1.cache;
    next = argmaxRows(step1.logits!);
  }
  return { tokens, prefill, cache };
}
