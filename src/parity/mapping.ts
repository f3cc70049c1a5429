// Which model of a fixture set produced a run? Run names and model directory names follow no contract,
// so the decision is structural: every candidate model's config is checked against the shapes the run's
// tensors have (vocabulary, layer counts, KV heads, hidden sizes, tile size, image token). A model whose
// config contradicts a tensor is out. Among the models that fit, one named by path in the run's own note or
// tensor meanings wins (e.g. "models/qwen2_tiny_bf16 holds ..."), then a main model over a variant dir.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FixtureRun, FixtureSet } from './manifest.js';

export interface ModelCandidate {
  /** Manifest model key, plus ":<field>" for variant directories such as bf16_variant_dir. */
  readonly id: string;
  /** Directory relative to the fixture root, e.g. "models/qwen2_tiny". */
  readonly dir: string;
  readonly variant: boolean;
  /** Effective config: config_full from the manifest (if any) overlaid with the directory's config.json. */
  readonly config: Record<string, unknown>;
  readonly modelType: string;
}

export type RunMapping =
  | { readonly ok: true; readonly model: ModelCandidate; readonly why: string }
  | { readonly ok: false; readonly reason: string };

type Cfg = Record<string, unknown>;

function readJson(path: string): Cfg | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Cfg;
  } catch {
    return undefined;
  }
}

export function modelCandidates(fx: FixtureSet): ModelCandidate[] {
  const out: ModelCandidate[] = [];
  for (const [key, spec] of Object.entries(fx.manifest.models)) {
    const dirs: Array<[string, string, boolean]> = [[key, spec.dir, false]];
    for (const [field, v] of Object.entries(spec)) {
      if (field !== 'dir' && field.endsWith('_dir') && typeof v === 'string') dirs.push([`${key}:${field}`, v, true]);
    }
    for (const [id, dir, variant] of dirs) {
      const onDisk = readJson(join(fx.root, dir, 'config.json'));
      if (!onDisk && !spec.config_full) continue;
      const config = { ...(spec.config_full ?? {}), ...(onDisk ?? {}) };
      // Nested configs on disk omit defaults: keep config_full's nested fields under the disk ones.
      for (const nested of ['text_config', 'vision_config']) {
        const full = spec.config_full?.[nested];
        const disk = onDisk?.[nested];
        if (full && typeof full === 'object') config[nested] = { ...(full as Cfg), ...((disk as Cfg | undefined) ?? {}) };
      }
      out.push({ id, dir, variant, config, modelType: String(config.model_type ?? 'unknown') });
    }
  }
  return out;
}

const VISION_ONLY = /vision_model$/;

function num(c: Cfg | undefined, ...keys: string[]): number | undefined {
  for (const k of keys) if (c && typeof c[k] === 'number') return c[k] as number;
  return undefined;
}

function textConfig(c: ModelCandidate): Cfg | undefined {
  if (VISION_ONLY.test(c.modelType)) return undefined;
  return (c.config.text_config as Cfg | undefined) ?? c.config;
}

function visionConfig(c: ModelCandidate): Cfg | undefined {
  if (VISION_ONLY.test(c.modelType)) return c.config;
  return c.config.vision_config as Cfg | undefined;
}

/** Indices N of names "<prefix>N" (exactly), e.g. hidden_states.N. */
function indices(names: readonly string[], re: RegExp): number[] {
  const out: number[] = [];
  for (const n of names) {
    const m = re.exec(n);
    if (m) out.push(Number(m[1]));
  }
  return out;
}

interface Check { readonly what: string; readonly ok: boolean }

/** Structural checks of one candidate against one run; only checks that apply are returned. */
export function structuralChecks(fx: FixtureSet, run: FixtureRun, c: ModelCandidate): Check[] {
  const checks: Check[] = [];
  const names = run.specs.map((s) => s.name);
  const shape = (n: string) => run.specs.find((s) => s.name === n)?.shape;
  const text = textConfig(c);
  const vision = visionConfig(c);
  const add = (what: string, ok: boolean) => checks.push({ what, ok });

  // Language-model tensors.
  const logits = run.specs.filter((s) => /(^|\.)logits$/.test(s.name));
  if (logits.length) {
    const vocab = num(text, 'vocab_size');
    add(`logits vocab ${logits[0].shape.at(-1)} vs vocab_size ${vocab}`, vocab !== undefined && logits.every((s) => s.shape.at(-1) === vocab));
  }
  const kvLayers = indices(names, /^past_key_values\.(\d+)\.key$/);
  if (kvLayers.length) {
    const layers = num(text, 'num_hidden_layers');
    const heads = num(text, 'num_attention_heads');
    const kvHeads = num(text, 'num_key_value_heads') ?? heads;
    const hidden = num(text, 'hidden_size');
    const dHead = num(text, 'head_dim') ?? (hidden && heads ? hidden / heads : undefined);
    const k = shape(`past_key_values.${kvLayers[0]}.key`)!;
    add(`${kvLayers.length} cached layers vs num_hidden_layers ${layers}`, layers === kvLayers.length);
    add(`key shape [${k.join(', ')}] vs ${kvHeads} KV heads x ${dHead}`, k[1] === kvHeads && k[3] === dHead);
  }
  const hs = indices(names, /^hidden_states\.(\d+)$/);
  if (hs.length) {
    const cfg = text ?? vision;
    const layers = num(cfg, 'num_hidden_layers', 'depth');
    const hidden = num(cfg, 'hidden_size', 'embed_dim');
    add(`${hs.length} hidden_states vs ${layers} layers + 1`, layers !== undefined && hs.length === layers + 1);
    add(`hidden_states width ${shape(`hidden_states.${hs[0]}`)!.at(-1)} vs hidden_size ${hidden}`, shape(`hidden_states.${hs[0]}`)!.at(-1) === hidden);
  }
  // Vision tensors.
  const vhs = indices(names, /^vision\.hidden_states\.(\d+)$/);
  if (vhs.length) {
    const layers = num(vision, 'num_hidden_layers', 'depth');
    const hidden = num(vision, 'hidden_size', 'embed_dim');
    add(`${vhs.length} vision hidden_states vs ${layers} vision layers + 1`, layers !== undefined && vhs.length === layers + 1);
    add(`vision width vs vision hidden_size ${hidden}`, shape(`vision.hidden_states.${vhs[0]}`)!.at(-1) === hidden);
  }
  const pv = shape('pixel_values');
  if (pv) {
    if (!vision) add('pixel_values but the model has no vision tower', false);
    else if (pv.length >= 4) {
      const size = num(vision, 'image_size');
      add(`pixel_values tiles ${pv.at(-2)}x${pv.at(-1)} vs image_size ${size}`, pv.at(-1) === size && pv.at(-2) === size);
    } else if (pv.length === 2) {
      const t = num(vision, 'temporal_patch_size');
      const p = num(vision, 'patch_size', 'spatial_patch_size');
      const ch = num(vision, 'in_channels', 'in_chans', 'num_channels') ?? 3;
      add(`flattened patches of ${pv[1]} vs ${ch}x${t}x${p}x${p}`, t !== undefined && p !== undefined && pv[1] === ch * t * p * p);
    } else add(`pixel_values of rank ${pv.length}`, false);
  }
  if (pv && names.includes('input_ids') && text) {
    const imageToken = num(c.config, 'image_token_index', 'image_token_id');
    if (imageToken !== undefined) {
      const ids = fx.read(run, 'input_ids').data as BigInt64Array;
      add(`input_ids contain the image token ${imageToken}`, ids.includes(BigInt(imageToken)));
    }
  }
  return checks;
}

function mentions(fx: FixtureSet, run: FixtureRun, dir: string): boolean {
  const text = JSON.stringify(fx.note(run.name) ?? '') + run.specs.map((s) => s.meaning).join('\n');
  const escaped = dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`${escaped}(?![\\w-])`).test(text);
}

export function mapRunToModel(fx: FixtureSet, run: FixtureRun, candidates = modelCandidates(fx)): RunMapping {
  const fits: ModelCandidate[] = [];
  const rejected: string[] = [];
  for (const c of candidates) {
    const checks = structuralChecks(fx, run, c);
    const failed = checks.filter((x) => !x.ok);
    if (checks.length && !failed.length) fits.push(c);
    else rejected.push(`${c.id}: ${failed.length ? failed.map((f) => f.what).join('; ') : 'no tensor to check against'}`);
  }
  if (fits.length === 0) {
    return { ok: false, reason: `no model in the manifest matches run "${run.name}" (${rejected.join(' | ') || 'the manifest lists no models'})` };
  }
  if (fits.length === 1) return { ok: true, model: fits[0], why: 'the only model whose config fits the tensor shapes' };
  const named = fits.filter((c) => mentions(fx, run, c.dir));
  if (named.length === 1) return { ok: true, model: named[0], why: `named in the run's notes (${named[0].dir})` };
  const pool = named.length ? named : fits;
  const main = pool.filter((c) => !c.variant);
  if (main.length === 1) return { ok: true, model: main[0], why: `fits the shapes; preferred over variant dirs ${pool.filter((c) => c.variant).map((c) => c.dir).join(', ')}` };
  return { ok: false, reason: `run "${run.name}" fits several models equally (${pool.map((c) => c.id).join(', ')}); cannot tell which produced it` };
}
