// A downstream project using kvlens as a package (test/api/consumer.test.ts installs it as node_modules/kvlens,
// typechecks this file against the built declarations and runs it): one extraction into a feature store, then the
// stored values read back and compared with the model's own forward through the public model interface.
//
//   node dist/index.js <model dir> <image dir> <store out>   -> one JSON line on stdout
import {
  extractFeatures, FeatureStore, loadVisionModel,
  type ExtractSummary, type Grid, type ModelForwardResult, type VisionLanguageModelApi, type ViewTokens,
} from 'kvlens';

const [modelDir, imageDir, storeOut] = process.argv.slice(2);
if (!modelDir || !imageDir || !storeOut) throw new Error('usage: index.js <model dir> <image dir> <store out>');

const TAP = 'lm.1.attn.v';
const summary: ExtractSummary = await extractFeatures({ model: modelDir, images: imageDir, out: storeOut, taps: ['values'], layers: '0,1', dtype: 'float32' });

const store = FeatureStore.open(storeOut);
const id = store.images()[0];
const image = store.image(id);
const view = Object.keys(image.views)[0];
const stored: Grid = store.read(id, TAP, { view });
store.close();

const model: VisionLanguageModelApi = await loadVisionModel(modelDir);
let maxDiff = 0;
try {
  const prepared = await model.prepare({ images: [image.source], question: '', prefix: '' });
  const out: ModelForwardResult = await model.forward({ ...model.imageRequest(prepared), taps: [TAP], logitsAt: 'none' });
  const t = out.taps.get(TAP)!; // [1, kvHead, pos, dHead]
  const [, heads, len, dHead] = t.shape;
  const data = t.data as Float32Array;
  const grid: ViewTokens = model.imageViews(prepared)[view]; // cell -> prompt position
  Array.from(grid.positions).forEach((pos, cell) => {
    for (let h = 0; h < heads; h++) {
      for (let d = 0; d < dHead; d++) {
        maxDiff = Math.max(maxDiff, Math.abs(stored.data[cell * heads * dHead + h * dHead + d] - data[(h * len + pos) * dHead + d]));
      }
    }
  });
} finally {
  await model.dispose();
}
console.log(JSON.stringify({ family: model.family, added: summary.added, taps: summary.taps, view, grid: [stored.rows, stored.cols, stored.dim], maxDiff }));
