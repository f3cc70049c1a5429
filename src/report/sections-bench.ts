// Report sections for key variance, benchmark tables (with/without blocking), under-utilisation and sample pictures.
import type { Benchmarks, BenchmarkCondition, KeyVariance, Underutil } from '../results/schema.js';
import type { SampleEntry } from '../results/rundir.js';
import { flagMatrix, formatTick, histogram, inlineSvg, lineChart } from './charts.js';
import { deltaCell, esc, figure, fixed, numCell, pct, section, table, td } from './html.js';
import type { PlotSink } from './sections-probes.js';

export async function keyVarianceSection(kv: KeyVariance, plot: PlotSink): Promise<string> {
  const layers = [...kv.layers].sort((a, b) => a.layer - b.layer);
  const n = kv.grid.rows * kv.grid.cols;
  const intro = `<p>Cross-image ${kv.statistic === 'sum' ? 'L2 variance (sum over key dimensions)' : 'variance (mean over key dimensions)'} of `
    + `<code>${esc(kv.tap)}</code> at each of the ${n} image-token positions (${kv.grid.rows}×${kv.grid.cols} grid) over `
    + `${kv.nImages} images from ${esc(kv.imageSource)}, model ${esc(kv.model)}. Threshold τ = ${formatTick(kv.threshold.value)} `
    + `(chosen by: ${esc(kv.threshold.method)}${kv.threshold.note ? `; ${esc(kv.threshold.note)}` : ''}). Positions below τ are input-agnostic. `
    + `Blocked layers: ${kv.blockedLayers.length ? kv.blockedLayers.join(', ') : 'none'}.</p>`;

  const countSvg = await lineChart({
    title: 'Input-agnostic key positions per layer', xLabel: 'layer', yLabel: 'positions below τ',
    series: [{ label: `${kv.tap} (of ${n})`, points: layers.map((l) => ({ x: l.layer, y: l.inputAgnostic.length })) }],
  });
  const countSlug = plot({ slug: 'keyvar-count', title: 'Input-agnostic key positions per layer', svg: countSvg });
  const matrixSvg = await flagMatrix({
    title: 'Input-agnostic positions by layer', rows: layers.length, cols: n,
    flagged: layers.map((l) => l.inputAgnostic), rowLabel: (i) => `L${layers[i].layer}`, xLabel: 'image-token position (row-major)', yLabel: 'layer',
    highlightRows: layers.map((l, i) => (kv.blockedLayers.includes(l.layer) ? i : -1)).filter((i) => i >= 0),
  });
  const matrixSlug = plot({ slug: 'keyvar-positions', title: 'Input-agnostic positions by layer', svg: matrixSvg });

  const hists: string[] = [];
  for (const l of layers) {
    const title = `Layer ${l.layer}: ${l.inputAgnostic.length} below τ`;
    const svg = await histogram({ title, xLabel: 'variance', edges: l.histogram.edges, counts: l.histogram.counts, threshold: kv.threshold.value });
    const slug = plot({ slug: `keyvar-hist-layer-${l.layer}`, title, svg });
    hists.push(figure(slug, inlineSvg(svg)));
  }
  const perLayer = table('keyvar-table', ['layer', 'min variance', 'median variance', 'max variance', 'input-agnostic positions', 'blocked'],
    layers.map((l) => {
      const s = [...l.variance].sort((a, b) => a - b);
      return [td(l.layer), numCell(s[0], (v) => fixed(v, 1)), numCell(s[Math.floor(s.length / 2)], (v) => fixed(v, 1)), numCell(s[s.length - 1], (v) => fixed(v, 1)),
        `<td class="num" data-value="${l.inputAgnostic.length}" title="${esc(l.inputAgnostic.join(' '))}">${l.inputAgnostic.length}</td>`,
        td(kv.blockedLayers.includes(l.layer) ? 'yes' : '')];
    }));
  return section('key-variance', 'Input-agnostic keys',
    `${intro}<div class="grid">${figure(countSlug, inlineSvg(countSvg))}${figure(matrixSlug, inlineSvg(matrixSvg), 'Red: positions below τ; shaded rows: blocked layers.')}</div>`
    + `<h3>Variance histograms per layer</h3><div class="grid">${hists.join('')}</div>${perLayer}`);
}

const CONDITION_ORDER = ['none', 'block-input-agnostic', 'block-random'];
const CONDITION_LABEL: Record<string, string> = { none: 'no blocking', 'block-input-agnostic': 'block input-agnostic keys', 'block-random': 'block random keys (control)' };
const label = (c: BenchmarkCondition) => CONDITION_LABEL[c.name] ?? c.name;

function ordered(conds: BenchmarkCondition[]): BenchmarkCondition[] {
  const rank = (n: string) => (CONDITION_ORDER.includes(n) ? CONDITION_ORDER.indexOf(n) : CONDITION_ORDER.length);
  return [...conds].sort((a, b) => rank(a.name) - rank(b.name));
}

function popeTable(conds: BenchmarkCondition[]): string {
  const base = conds.find((c) => c.name === 'none')?.pope;
  const rows: string[][] = [];
  for (const c of conds) {
    if (!c.pope) continue;
    for (const s of c.pope.splits) {
      const b = base?.splits.find((x) => x.split === s.split);
      rows.push([td(label(c)), td(s.split), td(s.n), numCell(s.accuracy, pct), numCell(s.precision, pct), numCell(s.recall, pct), numCell(s.f1, pct),
        numCell(s.yesRatio, pct), numCell(s.unparsedRate, pct), c.name === 'none' ? '<td class="na">–</td>' : deltaCell(s.f1, b?.f1, pct)]);
    }
  }
  const parser = conds.find((c) => c.pope)?.pope?.parser ?? '';
  return rows.length ? table('pope-table', ['condition', 'split', 'n', 'accuracy %', 'precision %', 'recall %', 'F1 %', 'yes-ratio % (predictions)', 'unparsed %', 'ΔF1 vs none'], rows, `POPE (answer parser: ${parser})`) : '';
}

function mmeTable(conds: BenchmarkCondition[]): string {
  const withMme = conds.filter((c) => c.mme);
  if (!withMme.length) return '';
  const names = [...new Set(withMme.flatMap((c) => c.mme!.subtasks.map((s) => s.name)))];
  const head = ['subtask', 'category', ...withMme.flatMap((c) => [`${esc(label(c))}: acc %`, 'acc+ %', 'score'])];
  const rows = names.map((name) => {
    const cat = withMme.map((c) => c.mme!.subtasks.find((s) => s.name === name)).find(Boolean)?.category ?? '';
    return [td(name), td(cat), ...withMme.flatMap((c) => {
      const s = c.mme!.subtasks.find((x) => x.name === name);
      return [numCell(s?.acc, pct), numCell(s?.accPlus, pct), numCell(s?.score, (v) => fixed(v, 2))];
    })];
  });
  for (const total of ['perception', 'cognition'] as const) {
    rows.push([`<td><b>${total} total</b></td>`, td(''), ...withMme.flatMap((c) => ['<td></td>', '<td></td>', numCell(c.mme![total], (v) => fixed(v, 2), { total: true })])]);
  }
  return table('mme-table', head, rows, 'MME (score = acc + acc+ in points, 0–200 per subtask; totals are sums)');
}

function blinkTable(conds: BenchmarkCondition[]): string {
  const withB = conds.filter((c) => c.blink);
  if (!withB.length) return '';
  const names = [...new Set(withB.flatMap((c) => c.blink!.subtasks.map((s) => s.name)))];
  const base = withB.find((c) => c.name === 'none')?.blink;
  const head = ['subtask', 'n', ...withB.map((c) => `${esc(label(c))} %`), ...withB.filter((c) => c.name !== 'none' && base).map((c) => `Δ ${esc(label(c))}`)];
  const others = withB.filter((c) => c.name !== 'none' && base);
  const rows = names.map((name) => {
    const n = withB.map((c) => c.blink!.subtasks.find((s) => s.name === name)?.n).find((x) => x !== undefined);
    const accs = withB.map((c) => c.blink!.subtasks.find((s) => s.name === name)?.accuracy);
    const b = base?.subtasks.find((s) => s.name === name)?.accuracy;
    return [td(name), td(n ?? '–'), ...accs.map((a) => numCell(a, pct)), ...others.map((c) => deltaCell(c.blink!.subtasks.find((s) => s.name === name)?.accuracy, b, pct))];
  });
  for (const agg of ['macro', 'micro'] as const) {
    rows.push([`<td><b>${agg} mean</b></td>`, td(''), ...withB.map((c) => numCell(c.blink![agg], pct, { total: true })), ...others.map((c) => deltaCell(c.blink![agg], base?.[agg], pct))]);
  }
  if (withB.some((c) => c.blink!.unparsedRate !== undefined)) {
    rows.push([td('unparsed'), td(''), ...withB.map((c) => numCell(c.blink!.unparsedRate, pct)), ...others.map(() => '<td></td>')]);
  }
  return table('blink-table', head, rows, 'BLINK accuracy (macro = unweighted mean over subtasks, lmms-eval style; micro = over questions)');
}

export function benchmarksSection(b: Benchmarks): string {
  const conds = ordered(b.conditions);
  const desc = conds.map((c) => `<li><b>${esc(label(c))}</b>${c.blockedLayers?.length ? `: layers ${c.blockedLayers.join(', ')}` : ''}`
    + `${c.blockedPositions !== undefined ? `, ${c.blockedPositions} key positions blocked` : ''}</li>`).join('');
  const missingControl = conds.some((c) => c.name === 'block-input-agnostic') && !conds.some((c) => c.name === 'block-random')
    ? '<p class="note">No block-random control condition in this run: an improvement cannot be attributed to the input-agnostic keys themselves.</p>' : '';
  return section('benchmarks', `Benchmarks with and without blocking (${b.model})`,
    `<ul>${desc}</ul>${missingControl}${popeTable(conds)}${mmeTable(conds)}${blinkTable(conds)}`);
}

export function underutilSection(u: Underutil): string {
  const parts = u.subtasks.map((s) => {
    const t = s.table;
    const n = t.valueRightMlmRight + t.valueRightMlmWrong + t.valueWrongMlmRight + t.valueWrongMlmWrong;
    const cell = (v: number) => `<td class="num" data-value="${v}">${v} (${n ? pct(v / n) : '0.0'}%)</td>`;
    const rate = n ? t.valueRightMlmWrong / n : 0;
    const tbl = `<table id="underutil-${esc(s.name)}" class="underutil"><caption>${esc(s.name)} — layer ${s.layer}, ${n} questions</caption>`
      + '<thead><tr><th></th><th>MLM ✓</th><th>MLM ✗</th></tr></thead><tbody>'
      + `<tr><th>Value ✓</th>${cell(t.valueRightMlmRight)}${cell(t.valueRightMlmWrong)}</tr>`
      + `<tr><th>Value ✗</th>${cell(t.valueWrongMlmRight)}${cell(t.valueWrongMlmWrong)}</tr></tbody></table>`
      + `<p>Under-utilisation (Value ✓ MLM ✗): <b class="rate" data-value="${rate}">${pct(rate)}%</b> of ${esc(s.name)} questions.</p>`;
    return `<div>${tbl}</div>`;
  });
  return section('underutil', 'Under-utilisation of visual information (BLINK)',
    `<p>Model ${esc(u.model)}, values from <code>${esc(u.tap)}</code>; value answer: ${esc(u.rule)}; layer choice: ${esc(u.layerChoice)}.</p><div class="grid">${parts.join('')}</div>`);
}

export function samplesSection(samples: SampleEntry[], dataUri: (file: string) => string): string {
  const figs = samples.map((s) => `<figure data-sample="${esc(s.file)}"><img alt="${esc(s.title)}" src="${dataUri(s.file)}">`
    + `<figcaption><b>${esc(s.title)}</b>${s.task ? ` (${esc(s.task)}, ${esc(s.kind)})` : ` (${esc(s.kind)})`}${s.caption ? ` — ${esc(s.caption)}` : ''}</figcaption></figure>`);
  return section('samples', 'Sample pictures', `<div class="grid samples">${figs.join('')}</div>`);
}
