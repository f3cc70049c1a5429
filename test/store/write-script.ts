// Child process for the crash-safety test: writes images 0..N-1 into a store with a delay per image, as the extractor
// would. KVLENS_TEST_DIE_AT="<event>:<k>" makes it SIGKILL itself at the k-th occurrence of a writer event (an exact
// crash point); the parent test also kills it with SIGKILL at arbitrary moments.
//
//   node write-script.js <storeDir> <N> <delayMs> <float16|float32>

import { StoreWriter } from '../../src/store/writer.js';
import { identity, imageId, record, tensors } from './synthetic.js';

const [dir, nText, delayText, dtype] = process.argv.slice(2);
const n = Number(nText);
const delay = Number(delayText);
const [dieEvent, dieCount] = (process.env.KVLENS_TEST_DIE_AT ?? '').split(':');
let seen = 0;

const writer = StoreWriter.open(dir, {
  identity: identity({ dtype: dtype as 'float16' | 'float32' }),
  maxShardBytes: 5_000,
  kvlensVersion: '0.0.0-test',
  onEvent: (e) => {
    process.stdout.write(`${e.type}\n`);
    if (e.type === dieEvent && ++seen === Number(dieCount)) process.kill(process.pid, 'SIGKILL');
  },
});
for (let i = 0; i < n; i++) {
  const id = imageId(i);
  if (writer.has(id)) continue;
  await new Promise((r) => setTimeout(r, delay));
  writer.add(id, record(i), tensors(i));
}
writer.close();
process.stdout.write('done\n');
