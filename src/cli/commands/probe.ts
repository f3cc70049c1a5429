// `kvlens probe <task> --store S --data ROOT`: run one probe over every selected layer/tap of a feature store against a
// dataset's ground truth and write the tidy results table (CSV + JSON, atomically). Text-query vectors are cached in
// <out>/text-queries.safetensors; propagation writes indexed PNGs under <out>/propagation/<tap>/<video>/.
import { CliUsageError, didYouMean, foldOption, intOption, numOption, parseCommand } from '../args.js';
import { join, resolve } from 'node:path';
import { PROBE_TASKS, runProbeFlow, type ProbeTask } from '../../experiments/flow.js';
import { writeSegPictures } from '../../experiments/flow-pictures.js';
import { ProbeTaskSchema } from '../../experiments/config.js';
import { summariseCurves } from '../../experiments/stores.js';
import { writeRowsCsv, writeRowsJson } from '../../probes/results.js';
import { PROBE_DEFAULTS } from '../../probes/fields.js';
import { BDD_ATTRIBUTE_VALUES } from '../../data/loaders/bdd10k-attributes.js';
import { layerPattern, tapAtLayer } from '../../taps/names.js';
import { isLanguageModelTap } from '../../taps/table.js';

const USAGE = `usage: kvlens probe <${PROBE_TASKS.join('|')}> --store DIR[,DIR...] --data ROOT [options]
tasks (dataset layout of --data):
  fewshot-seg    Pascal-5i   k-shot logistic-regression segmentation: mIoU, FB-IoU
  correspondence SPair-71k   nearest-neighbour keypoint transfer: PCK
  coseg          MSRC        k-means co-segmentation per group: Jaccard, precision
  semseg         ImageNet-S  class-name text query vs image tokens: mIoU (incl. background)
  refseg         RefCOCO     referring-expression text query vs image tokens: mIoU, oIoU
  propagation    DAVIS 2017  label propagation from the first frame: J&F (indexed PNGs in <out>/propagation/)
  bddseg         BDD10K      scenes selected by BDD's attributes, 19-class linear probe: mIoU, pixel accuracy
options:
  --dataset    layout of --data (default: the task's dataset above)
  --taps       comma-separated tap names/patterns over the store's taps (default lm.*.attn.v), e.g. lm.*.attn.v,lm.*.attn.k,image.packed
  --layers     layers for "*" in the patterns: all (default), 3, 3-5, 0,7,14, -4:
  --view       store view to read (default: base)
  --out        output folder (default results/): <task>.csv and <task>.json
  --model      name for the rows' model column (default: the store's model directory name)
  --seed N     episode sampling seed (default 0)
  --fold F     Pascal-5i: all (default: the four folds' val lists, each its own episodes, mean of the fold mIoUs),
               0..3 (one fold), or pooled (every fold's val+trn lists in one run: small synthetic sets only)
  --split S    dataset split (default: val for Pascal-5i, test for SPair)
  --subset S   loader subset (MSRC: comma-separated groups)
  --shots K    few-shot support images (default ${PROBE_DEFAULTS.fewshot.shots})
  --episodes N few-shot episodes per fold (default ${PROBE_DEFAULTS.fewshot.episodes}, HSNet), or per-entry (each (image, class) entry once)
  --alphas A   PCK thresholds, comma-separated (default ${PROBE_DEFAULTS.correspondence.alphas.join(',')})
  --threads N  worker threads (default: all cores)
  --pictures N fewshot-seg: per-layer probe masks + ground truth for N query images in <out>/masks/, and a sample
               PNG each (photo | prediction at the mIoU peak | truth) in <out>/samples/ (default 4; 0: none)
text queries (semseg, refseg): the text's vector at the same tap, final token, run without the image in place of it
  --model-dir D       model for the text queries (default: the store's; its config.json must hash the same)
  --variant N         ImageNet-S 50 | 300 | 919 (default 50)
  --class-names F     wnid -> name list, lines "<wnid> <name>[, ...]" (default: LOC_synset_mapping.txt under --data)
  --text-template T   class text, {} = the name (default "{}")
  --queries Q         present (classes in the image's mask; default) | all
  --similarity S      dot (default) | cosine
  --mask-rule R       minmax (default; with --threshold, 0.5) | topFraction (with --fraction, 0.25)
  --subset S          RefCOCO: refcoco (default) | refcoco+ | refcocog; default --split val
propagation:
  --context-frames N  preceding frames besides the first (default 7)
  --temperature T     affinity exp(cos/T) (default 0.1)
  --top-k K           (default 5)
  --radius R          neighbourhood radius in tokens, 0 = none (default 12)
  --no-pngs           do not write the predicted masks
bddseg (BDD10K; trained on --train-split, scored on --split, default val):
  --timeofday V       BDD time of day to keep, comma-separated (default night; ${BDD_ATTRIBUTE_VALUES.timeofday.join(' | ')})
  --scene V           BDD scene to keep, comma-separated (default highway; ${BDD_ATTRIBUTE_VALUES.scene.join(' | ')})
  --weather V         BDD weather to keep (default: any)
  --all-scenes        no attribute selection
  --attributes F,...  Scalabel label files with frame attributes (default: labels/det_20/det_{val,train}.json or the older
                      labels/bdd100k_labels_images_{val,train}.json under --data)
  --train-split S     split the probe is trained on (default train)`;

const int = (v: string | undefined, flag: string) => intOption(v, flag, USAGE);
const num = (v: string | undefined, flag: string) => numOption(v, flag, USAGE);

function list(v: string | undefined): string[] | undefined {
  return v === undefined ? undefined : v.split(',').map((x) => x.trim()).filter(Boolean);
}

export default async function probe(args: string[]): Promise<number> {
  const parsed = parseCommand({
    name: 'probe', usage: USAGE, positionals: { min: 1, max: 1, what: 'task' },
    options: {
      store: { type: 'string' }, data: { type: 'string' }, dataset: { type: 'string' }, taps: { type: 'string' }, layers: { type: 'string' },
      view: { type: 'string' }, out: { type: 'string' }, model: { type: 'string' }, seed: { type: 'string' }, fold: { type: 'string' },
      split: { type: 'string' }, subset: { type: 'string' }, shots: { type: 'string' }, episodes: { type: 'string' }, alphas: { type: 'string' }, threads: { type: 'string' }, pictures: { type: 'string' },
      'model-dir': { type: 'string' }, variant: { type: 'string' }, 'class-names': { type: 'string' }, 'text-template': { type: 'string' }, queries: { type: 'string' },
      similarity: { type: 'string' }, 'mask-rule': { type: 'string' }, threshold: { type: 'string' }, fraction: { type: 'string' },
      timeofday: { type: 'string' }, scene: { type: 'string' }, weather: { type: 'string' }, 'all-scenes': { type: 'boolean' }, attributes: { type: 'string' }, 'train-split': { type: 'string' },
      'context-frames': { type: 'string' }, temperature: { type: 'string' }, 'top-k': { type: 'string' }, radius: { type: 'string' }, 'no-pngs': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  }, args);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const task = positionals[0];
  if (!(PROBE_TASKS as readonly string[]).includes(task)) throw new CliUsageError(`unknown task "${task}"${didYouMean(task, PROBE_TASKS)}; expected one of ${PROBE_TASKS.join(', ')}`, USAGE);
  if (!values.store || !values.data) throw new CliUsageError('--store and --data are required', USAGE);
  const t0 = Date.now();
  const out = resolve(values.out ?? 'results');
  const res = await runProbeFlow({
    task: task as ProbeTask,
    store: values.store.split(','),
    data: values.data,
    dataset: values.dataset as never,
    taps: values.taps ? values.taps.split(',').filter(Boolean) : undefined,
    layers: values.layers,
    view: values.view,
    model: values.model,
    seed: int(values.seed, '--seed'),
    fold: values.fold === 'pooled' ? 'pooled' : foldOption(values.fold, USAGE),
    split: values.split,
    subset: values.subset,
    shots: int(values.shots, '--shots'),
    episodes: values.episodes === 'per-entry' ? 'per-entry' : int(values.episodes, '--episodes'),
    select: values['all-scenes'] ? {} : (values.timeofday || values.scene || values.weather)
      ? { timeofday: list(values.timeofday), scene: list(values.scene), weather: list(values.weather) } as never
      : undefined,
    attributeFiles: list(values.attributes),
    trainSplit: values['train-split'],
    alphas: values.alphas ? values.alphas.split(',').map(Number) : undefined,
    threads: int(values.threads, '--threads'),
    modelDir: values['model-dir'],
    variant: int(values.variant, '--variant') as never,
    classNames: values['class-names'],
    textTemplate: values['text-template'],
    queries: values.queries as never,
    similarity: values.similarity as never,
    maskRule: values['mask-rule'] as never,
    threshold: num(values.threshold, '--threshold'),
    fraction: num(values.fraction, '--fraction'),
    queryCache: task === 'semseg' || task === 'refseg' ? join(out, 'text-queries.safetensors') : undefined,
    contextFrames: int(values['context-frames'], '--context-frames'),
    temperature: num(values.temperature, '--temperature'),
    topK: int(values['top-k'], '--top-k'),
    radius: int(values.radius, '--radius'),
    predictionsDir: task === 'propagation' && !values['no-pngs'] ? join(out, 'propagation') : undefined,
  });
  writeRowsCsv(join(out, `${task}.csv`), res.rows);
  writeRowsJson(join(out, `${task}.json`), res.rows, res.protocol);
  const pictures = int(values.pictures, '--pictures') ?? 4;
  if (pictures < 0) throw new CliUsageError('--pictures must be 0 or more', USAGE);
  if (task === 'fewshot-seg' && pictures > 0) {
    // Masks of the first LM tap family probed (lm.*.attn.v by default), at every probed layer of it.
    const family = (values.taps ? values.taps.split(',') : ['lm.*.attn.v']).map((p) => layerPattern(p)?.family).find((f) => f !== undefined && isLanguageModelTap(f));
    if (family) {
      const peak = summariseCurves(res.rows).find((c) => c.metric === 'mIoU' && c.family === family)?.peakLayer;
      const pics = await writeSegPictures({
        runDir: out, store: values.store.split(','), family, layers: res.taps.filter((x) => x.layer !== null && x.tap === tapAtLayer(family, x.layer)).map((x) => x.layer!), view: values.view, seed: int(values.seed, '--seed') ?? 0, images: pictures, sampleLayer: peak, key: task,
        task: ProbeTaskSchema.parse({ task, data: values.data, dataset: values.dataset, fold: values.fold === 'pooled' ? 'pooled' : foldOption(values.fold, USAGE), split: values.split, shots: int(values.shots, '--shots'), episodes: values.episodes === 'per-entry' ? 'per-entry' : int(values.episodes, '--episodes') }),
      });
      for (const n of pics.notes) console.error(`probe: ${n}`);
    }
  }
  if (res.missing.length) console.error(`probe: ${res.missing.length} dataset image(s) are not in the store and were skipped (e.g. ${res.missing[0]})`);
  console.log(`wrote ${res.rows.length} rows (${res.taps.length} taps) to ${join(out, `${task}.csv`)} and .json in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return 0;
}
