// `kvlens report`: one self-contained HTML file from a run directory (inline SVG charts, pictures as data URIs, inline CSS,
// no scripts, no network), plus every plot as SVG and PNG under <out-dir>/plots/ for papers.
import { readFile } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import sharp from 'sharp';
import { writeFileAtomic } from '../results/io.js';
import { reportProgress } from '../util/progress.js';
import { loadRunDir, RUN_FILES, type RunResults } from '../results/rundir.js';
import { CSS, esc, note, section } from './html.js';
import { benchmarksSection, keyVarianceSection, samplesSection, underutilSection } from './sections-bench.js';
import { curvesSection, encoderSection, prefixSection, provenanceSection, runLine, type Plot } from './sections-probes.js';
import { paperSection } from './paper-reference.js';

export interface ReportOptions {
  /** Output HTML path; plots go to <dirname(out)>/plots. */
  out: string;
  /** Progress messages for long steps (the CLI prints them to stderr). */
  onProgress?: (message: string) => void;
  /** Rasterisation scale for the PNG copies (2 = twice the SVG's pixel size). */
  pngScale?: number;
}

export interface ReportSummary {
  html: string;
  plotsDir: string;
  plots: string[];
  sections: string[];
  omitted: string[];
}

const MIME: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.svg': 'image/svg+xml' };

function missingNote(file: string, what: string): string {
  return note(`${file} is not in this run, so ${what} is omitted.`);
}

async function sampleDataUris(run: RunResults): Promise<Map<string, string>> {
  const uris = new Map<string, string>();
  for (const s of run.samples) {
    const bytes = await readFile(join(run.dir, RUN_FILES.samplesDir, s.file));
    uris.set(s.file, `data:${MIME[extname(s.file).toLowerCase()]};base64,${bytes.toString('base64')}`);
  }
  return uris;
}

/** Build every section; missing result files become a note in place of their section. */
async function renderSections(run: RunResults, plots: Plot[], progress: (m: string) => void) {
  const sink = (p: Plot): string => {
    let slug = p.slug;
    for (let k = 2; plots.some((x) => x.slug === slug); k++) slug = `${p.slug}-${k}`;
    plots.push({ ...p, slug });
    return slug;
  };
  // Results first; provenance (run fields, models, datasets, every prompt) collapsed at the end.
  const html: string[] = [];
  const present: string[] = [];
  const omitted: string[] = [];
  const add = async (id: string, title: string, file: string, what: string, build: (() => string | Promise<string>) | undefined) => {
    if (build) {
      progress(`rendering ${title}`);
      html.push(await build());
      present.push(id);
    } else {
      html.push(section(id, title, missingNote(file, what)));
      omitted.push(id);
    }
  };
  for (const n of run.notes) html.push(note(n));
  const probes = run.probes;
  await add('curves', 'Layer-wise probe curves', RUN_FILES.probesJson, 'the layer-wise curves', probes && (() => curvesSection(probes, sink, run.probesProtocol)));
  await add('encoders', 'Encoder comparison', RUN_FILES.probesJson, 'the encoder comparison', probes && (() => encoderSection(probes, run.probesProtocol)));
  const kv = run.keyVariance;
  await add('key-variance', 'Input-agnostic keys', RUN_FILES.keyVariance, 'the key-variance histograms', kv && (() => keyVarianceSection(kv, sink)));
  const b = run.benchmarks;
  await add('benchmarks', 'Benchmarks with and without blocking', RUN_FILES.benchmarks, 'the POPE/MME/BLINK tables', b && (() => benchmarksSection(b)));
  const p = run.prefix;
  await add('prefix', 'Text-prefix comparison', RUN_FILES.prefix, 'the prefix comparison', p && (() => prefixSection(p, sink)));
  const u = run.underutil;
  await add('underutil', 'Under-utilisation of visual information (BLINK)', RUN_FILES.underutil, 'the under-utilisation table', u && (() => underutilSection(u)));
  // The paper's numbers beside this run's (src/report/paper-reference.ts): only when the run has a counterpart.
  const paper = paperSection(run);
  if (paper) { html.push(paper); present.push('paper'); }
  if (run.samples.length) {
    progress(`embedding ${run.samples.length} sample picture(s)`);
    const uris = await sampleDataUris(run);
    html.push(samplesSection(run.samples, (f) => uris.get(f) as string));
    present.push('samples');
  } else {
    html.push(section('samples', 'Sample pictures', missingNote(`${RUN_FILES.samplesDir}/`, 'the sample pictures section')));
    omitted.push('samples');
  }
  html.push(provenanceSection(run.manifest, run.dir));
  present.push('provenance');
  return { html, present, omitted };
}

function page(run: RunResults, sectionsHtml: string[]): string {
  const navItems = sectionsHtml.map((s) => /<section id="([^"]+)"><h2>([^<]*)<\/h2>/.exec(s)).filter((m): m is RegExpExecArray => m !== null);
  const nav = navItems.map((m) => `<a href="#${m[1]}">${m[2]}</a>`).join('');
  return '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
    + '<meta name="viewport" content="width=device-width, initial-scale=1">'
    + `<title>kvlens report: ${esc(run.manifest.experiment)}</title><style>${CSS}</style></head><body>`
    + `<h1>kvlens report — ${esc(run.manifest.experiment)}</h1>${runLine(run.manifest)}<nav>${nav}</nav>${sectionsHtml.join('\n')}`
    + `<footer><p class="note">Generated by kvlens ${esc(run.manifest.kvlensVersion)} from ${esc(run.dir)}. Plots as SVG/PNG: plots/.</p></footer>`
    + '</body></html>\n';
}

async function writePlots(plots: Plot[], dir: string, scale: number, progress: (m: string) => void): Promise<string[]> {
  const written: string[] = [];
  for (let i = 0; i < plots.length; i++) {
    const p = plots[i];
    if (i === 0) progress(`writing ${plots.length} plots (SVG + PNG)`);
    await writeFileAtomic(join(dir, `${p.slug}.svg`), p.svg);
    const png = await sharp(Buffer.from(p.svg), { density: 72 * scale }).png().toBuffer();
    await writeFileAtomic(join(dir, `${p.slug}.png`), png);
    written.push(p.slug);
    reportProgress({ step: 'plots', done: i + 1, total: plots.length, unit: 'SVG + PNG' });
  }
  return written;
}

export async function buildReport(runDir: string, opts: ReportOptions): Promise<ReportSummary> {
  const progress = opts.onProgress ?? (() => undefined);
  progress(`reading ${runDir}`);
  const run = await loadRunDir(runDir);
  const plots: Plot[] = [];
  const { html, present, omitted } = await renderSections(run, plots, progress);
  const plotsDir = join(dirname(opts.out), 'plots');
  const written = await writePlots(plots, plotsDir, opts.pngScale ?? 2, progress);
  progress(`writing ${opts.out}`);
  await writeFileAtomic(opts.out, page(run, html));
  return { html: opts.out, plotsDir, plots: written, sections: present, omitted };
}
