// The paper's numbers ("Visual Representations inside the Language Model", arXiv 2510.04819) beside what a run measured,
// for each result the presets reproduce (examples/paper, docs/paper-presets.md). One table of reference values with
// their provenance ([ABS] the paper's abstract; [SEED] the seed summary, unconfirmed in the paper text: see
// /work/shared/docs/paper-protocols.md), and one function per result that reads the run's own files for kvlens's
// counterpart. Each row says when the run's model or data differ from the paper's (a tiny model, a synthetic set, fewer
// questions), so a number is never compared silently with one measured on something else.
import type { RunResults } from '../results/rundir.js';
import type { ProbeRow, UnderutilTable } from '../results/schema.js';
import { esc, note, section } from './html.js';
import { tapFamily } from '../taps/names.js';
import { isBaselineLayerTap, isBaselineTap } from '../taps/table.js';

export type Provenance = 'ABS' | 'SEED';

export interface PaperNumber {
  readonly id: string;
  /** Which result (figure / table) it belongs to. */
  readonly result: string;
  readonly quantity: string;
  /** The paper's value as written. */
  readonly paper: string;
  readonly provenance: Provenance;
  /** The paper's model for this number. */
  readonly model: string;
  /** The paper's data, with the size where known. */
  readonly data: string;
}

export const PAPER_NUMBERS: readonly PaperNumber[] = [
  { id: 'fig2-seg-peak', result: 'Figure 2', quantity: 'segmentation peak layer (Pascal-5i mIoU, value tokens)', paper: 'layers 14–15', provenance: 'SEED', model: 'LLaVA-OneVision 7B', data: 'Pascal-5i, 4 folds x 1,000 episodes' },
  { id: 'fig2-corr-peak', result: 'Figure 2', quantity: 'correspondence peak layer (SPair-71k PCK@0.1, value tokens)', paper: 'layers 7–10', provenance: 'SEED', model: 'LLaVA-OneVision 7B', data: 'SPair-71k test, 12,234 pairs' },
  { id: 'table1-encoder-wins', result: 'Table 1', quantity: 'tasks where the un-finetuned encoder beats the best LM layer', paper: '3 of 6', provenance: 'SEED', model: 'LLaVA-OneVision 7B vs SigLIP so400m', data: 'the six probing tasks' },
  { id: 'table3-pope', result: 'Table 3', quantity: 'POPE before -> after blocking input-agnostic keys (last 10 layers)', paper: '78.1 -> 81.2', provenance: 'SEED', model: 'LLaVA-OneVision 7B', data: 'POPE (metric and split not stated), 1,000 COCO images for the variance' },
  { id: 'table3-mme', result: 'Table 3', quantity: 'MME perception before -> after blocking', paper: 'improves (values not given)', provenance: 'SEED', model: 'LLaVA-OneVision 7B', data: 'MME' },
  { id: 'table4-bdd', result: 'Table 4', quantity: 'BDD-10K night + highway segmentation, no prefix -> domain prefix', paper: '63.4 -> 68.2', provenance: 'SEED', model: 'LLaVA-OneVision 7B', data: 'BDD-10K night + highway scenes' },
  { id: 'table4-refcoco', result: 'Table 4', quantity: 'RefCOCO mIoU gain of a correct class-name prefix', paper: '+0.5 to +1.0', provenance: 'SEED', model: 'LLaVA-OneVision 7B', data: 'RefCOCO' },
  { id: 'blink-art-style', result: 'BLINK', quantity: 'Art Style questions with values right and the MLM wrong', paper: '33.3% (39 of 117)', provenance: 'ABS', model: 'not named (LLaVA-OneVision 7B most likely)', data: 'BLINK val Art Style, 117 questions' },
];

export interface PaperComparison {
  readonly ref: PaperNumber;
  /** kvlens's number from this run, formatted ('' when the run has no counterpart). */
  readonly kvlens: string;
  /** How the counterpart was read (tap family, layer, condition). */
  readonly how: string;
  /** Where this run's model or data differ from the paper's (empty: the same, as far as the run records). */
  readonly differs: string[];
}

const pct = (v: number) => `${(100 * v).toFixed(1)}`;
const PAPER_MODEL_DIRS = /llava-onevision-qwen2-7b/i;

/** Best LM-layer value-token row of a (task, metric): {layer, value}, seeds averaged. */
function peak(rows: readonly ProbeRow[], task: string, metric: string): { layer: number; value: number } | undefined {
  const byLayer = new Map<number, number[]>();
  for (const r of rows) {
    if (r.task !== task || r.metric !== metric || r.layer === null || tapFamily(r.tap) !== 'lm.{L}.attn.v' || !Number.isFinite(r.value)) continue;
    (byLayer.get(r.layer) ?? byLayer.set(r.layer, []).get(r.layer)!).push(r.value);
  }
  let best: { layer: number; value: number } | undefined;
  for (const [layer, v] of byLayer) {
    const value = v.reduce((a, b) => a + b, 0) / v.length;
    if (!best || value > best.value) best = { layer, value };
  }
  return best;
}

function modelDiffers(run: RunResults): string[] {
  const id = run.manifest.models[0]?.id ?? '';
  return PAPER_MODEL_DIRS.test(id) ? [] : [`model: this run used ${id || 'an unnamed model'}`];
}

function dataCount(run: RunResults, name: RegExp): number | undefined {
  return run.manifest.datasets.find((d) => name.test(d.name))?.count;
}

/** The headline metric of each probe task (the one the paper's curves plot). */
export const HEADLINE_METRIC: Record<string, string> = {
  'pascal5i-fewshot': 'mIoU', 'msrc-coseg': 'Jaccard', 'imagenet-s-semseg': 'mIoU', 'refcoco-refseg': 'mIoU',
  'spair-correspondence': 'PCK@0.1.point', 'davis-propagation': 'J&F', 'bdd10k-linearseg': 'mIoU',
};

function flowRows(run: RunResults): PaperComparison[] {
  const rows = run.probes;
  if (!rows) return [];
  const out: PaperComparison[] = [];
  const base = modelDiffers(run);
  const layers = run.manifest.models[0]?.lmLayers;
  const depth = layers && layers !== 28 ? [`depth: ${layers} LM layers (the paper's model has 28)`] : [];
  for (const [id, task] of [['fig2-seg-peak', 'pascal5i-fewshot'], ['fig2-corr-peak', 'spair-correspondence']] as const) {
    const p = peak(rows, task, HEADLINE_METRIC[task]);
    if (!p) continue;
    const ref = PAPER_NUMBERS.find((r) => r.id === id)!;
    out.push({ ref, kvlens: `layer ${p.layer} (${HEADLINE_METRIC[task]} ${p.value.toFixed(3)})`, how: `arg-max over lm.{L}.attn.v, 0-based layers`, differs: [...base, ...depth] });
  }
  // Table 1: tasks where the encoder baseline row beats the best LM layer.
  const tasks = [...new Set(rows.map((r) => r.task))].filter((t) => HEADLINE_METRIC[t]);
  const withEncoder = tasks.filter((t) => rows.some((r) => r.task === t && r.metric === HEADLINE_METRIC[t] && isBaselineTap(r.tap)));
  if (withEncoder.length) {
    const wins = withEncoder.filter((t) => {
      const enc = rows.filter((r) => r.task === t && r.metric === HEADLINE_METRIC[t] && isBaselineLayerTap(r.tap));
      const encRows = enc.length ? enc : rows.filter((r) => r.task === t && r.metric === HEADLINE_METRIC[t] && isBaselineTap(r.tap));
      const e = encRows.reduce((a, r) => a + r.value, 0) / encRows.length;
      const lm = peak(rows, t, HEADLINE_METRIC[t]);
      return lm !== undefined && e > lm.value;
    });
    out.push({
      ref: PAPER_NUMBERS.find((r) => r.id === 'table1-encoder-wins')!, kvlens: `${wins.length} of ${withEncoder.length}${wins.length ? ` (${wins.join(', ')})` : ''}`,
      how: 'encoder row at the projector-input layer vs the best lm.{L}.attn.v layer, headline metric per task',
      differs: [...base, ...(withEncoder.length !== 6 ? [`tasks: ${withEncoder.length} with an encoder row (the paper: 6)`] : [])],
    });
  }
  return out;
}

function blockingRows(run: RunResults): PaperComparison[] {
  const b = run.benchmarks;
  if (!b) return [];
  const none = b.conditions.find((c) => c.name === 'none');
  const blocked = b.conditions.find((c) => c.name === 'block-input-agnostic');
  if (!none || !blocked) return [];
  const out: PaperComparison[] = [];
  const differs = modelDiffers(run);
  if (none.pope && blocked.pope) {
    const mean = (c: typeof none, k: 'f1' | 'accuracy') => c.pope!.splits.reduce((a, s) => a + s[k], 0) / c.pope!.splits.length;
    const n = none.pope.splits.reduce((a, s) => a + s.n, 0);
    out.push({
      ref: PAPER_NUMBERS.find((r) => r.id === 'table3-pope')!,
      kvlens: `F1 ${pct(mean(none, 'f1'))} -> ${pct(mean(blocked, 'f1'))}; accuracy ${pct(mean(none, 'accuracy'))} -> ${pct(mean(blocked, 'accuracy'))}`,
      how: `mean over the POPE splits run (${none.pope.splits.map((s) => s.split).join(', ')}); layers ${blocked.blockedLayers?.join(',') ?? '?'} blocked`,
      differs: [...differs, ...(n !== 9000 ? [`data: ${n} POPE questions (the full set: 3 x 3,000)`] : [])],
    });
  }
  if (none.mme && blocked.mme) {
    out.push({
      ref: PAPER_NUMBERS.find((r) => r.id === 'table3-mme')!, kvlens: `perception ${none.mme.perception.toFixed(1)} -> ${blocked.mme.perception.toFixed(1)}`,
      how: 'MME perception score (sum of acc + acc+ over the perception subtasks run)', differs,
    });
  }
  return out;
}

function prefixRows(run: RunResults): PaperComparison[] {
  const p = run.prefix;
  if (!p) return [];
  const none = p.conditions.find((c) => c.name === 'none');
  const correct = p.conditions.find((c) => c.name === 'correct');
  if (!none || !correct) return [];
  const out: PaperComparison[] = [];
  const differs = modelDiffers(run);
  for (const [id, task] of [['table4-bdd', 'bdd10k-linearseg'], ['table4-refcoco', 'refcoco-refseg']] as const) {
    const a = peak(none.rows, task, 'mIoU');
    const c = peak(correct.rows, task, 'mIoU');
    if (!a || !c) continue;
    const others = p.conditions.filter((x) => x.name !== 'none' && x.name !== 'correct').map((x) => `${x.name} ${(100 * (peak(x.rows, task, 'mIoU')?.value ?? NaN)).toFixed(1)}`);
    out.push({
      ref: PAPER_NUMBERS.find((r) => r.id === id)!,
      kvlens: id === 'table4-bdd'
        ? `${pct(a.value)} -> ${pct(c.value)} (${others.join(', ')})`
        : `${(100 * (c.value - a.value)) >= 0 ? '+' : ''}${(100 * (c.value - a.value)).toFixed(1)} (${pct(a.value)} -> ${pct(c.value)})`,
      how: `mIoU x 100 at each condition's best lm.{L}.attn.v layer (none: layer ${a.layer}, correct: layer ${c.layer})`,
      differs: [...differs, ...((dataCount(run, /bdd|refcoco/i) ?? 0) < 50 ? [`data: ${dataCount(run, /bdd|refcoco/i) ?? '?'} images`] : [])],
    });
  }
  return out;
}

const total = (t: UnderutilTable) => t.valueRightMlmRight + t.valueRightMlmWrong + t.valueWrongMlmRight + t.valueWrongMlmWrong;

function underutilRows(run: RunResults): PaperComparison[] {
  const u = run.underutil;
  if (!u) return [];
  const art = (subs: typeof u.subtasks) => subs.find((s) => /art.?style/i.test(s.name));
  const head = art(u.subtasks);
  if (!head) return [];
  const alt = (u.alternatives ?? []).map((a) => ({ choice: a.layerChoice.split(':')[0], s: art(a.subtasks) })).filter((a) => a.s);
  const n = total(head.table);
  return [{
    ref: PAPER_NUMBERS.find((r) => r.id === 'blink-art-style')!,
    kvlens: `${pct(head.table.valueRightMlmWrong / n)}% (${head.table.valueRightMlmWrong} of ${n})${alt.map((a) => `; ${a.choice}: ${pct(a.s!.table.valueRightMlmWrong / total(a.s!.table))}% (${a.s!.table.valueRightMlmWrong} of ${total(a.s!.table)})`).join('')}`,
    how: `${u.layerChoice.split(':')[0]} layer choice, layer ${head.layer}; ${u.rule.split('; ').slice(-1)[0]}`,
    differs: [...modelDiffers(run), ...(n !== 117 ? [`data: ${n} Art Style questions counted (the paper: 117)`] : [])],
  }];
}

/** Every paper number this run has a counterpart for. */
export function paperComparisons(run: RunResults): PaperComparison[] {
  return [...flowRows(run), ...blockingRows(run), ...prefixRows(run), ...underutilRows(run)];
}

/** The report section: the paper's number beside kvlens's, with provenance and what differs; undefined if none apply. */
export function paperSection(run: RunResults): string | undefined {
  const rows = paperComparisons(run);
  if (rows.length === 0) return undefined;
  const body = rows.map((r) => `<tr><td>${esc(r.ref.result)}</td><td>${esc(r.ref.quantity)}</td><td>${esc(r.ref.paper)} <small>[${r.ref.provenance}]</small></td>`
    + `<td>${esc(r.kvlens)}</td><td>${esc(r.how)}</td><td>${r.differs.length ? esc(r.differs.join('; ')) : 'same model and data as recorded'}</td></tr>`).join('');
  return section('paper', "The paper's numbers beside this run's",
    note('[ABS]: the paper\'s abstract; [SEED]: the seed summary of the paper, not confirmed in the paper text. The last column says where this run\'s model or data differ from the paper\'s.')
    + `<table id="paper-comparison"><thead><tr><th>result</th><th>quantity</th><th>paper</th><th>kvlens (this run)</th><th>how</th><th>differs</th></tr></thead><tbody>${body}</tbody></table>`);
}
