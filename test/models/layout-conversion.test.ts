// Every family's tiny checkpoint rewritten into the layouts transformers 4.46 ... v5 save (weights renamed in the
// safetensors header only or re-sharded, config re-spelled, chat template and image-processor settings moved) loads
// through loadModel / loadProcessor and gives the same prompt, pixels and every tap, bit for bit, as the original.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, type KvlensModel } from '../../src/models/index.js';
import { loadProcessor, type PreparedInputs } from '../../src/preprocess/load.js';
import { rgbImage } from '../../src/preprocess/image.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { VisionLanguageModel } from '../../src/models/vlm-base.js';
import { extractFeatures } from '../../src/extract/extract.js';
import { FeatureStore } from '../../src/store/reader.js';
import { writeImages } from '../extract/helpers.js';
import { writeLlavaOnevisionCheckpoint, TINY_LLAVA_ONEVISION } from '../../src/models/synthetic/llava-onevision.js';
import { writeLlavaNextCheckpoint, TINY_LLAVA_NEXT } from '../../src/models/synthetic/llava-next.js';
import { writeQwen2VlCheckpoint, TINY_QWEN2_5_VL, TINY_QWEN2_VL } from '../../src/models/synthetic/qwen2-vl.js';
import {
  copyDir, editJson, LLAVA_PREFIXES, moveTemplate, nestImageProcessor, nestQwenText, QWEN_VL_PREFIXES, renameByPrefix, renameInHeader, shard,
  toDtype, toRopeParameters, type Json,
} from './layouts.js';

interface Family {
  readonly name: string;
  readonly write: (dir: string) => string;
  readonly kind: 'llava' | 'qwen';
  /** config class default rope_theta of the text model */
  readonly theta: number;
}

const FAMILIES: Family[] = [
  { name: 'llava_onevision', write: (d) => writeLlavaOnevisionCheckpoint(d, TINY_LLAVA_ONEVISION), kind: 'llava', theta: 10000 },
  // untied head: language_model.lm_head.weight, renamed lm_head.weight in the newer layouts
  { name: 'llava_onevision (untied head)', write: (d) => writeLlavaOnevisionCheckpoint(d, { ...TINY_LLAVA_ONEVISION, text: { ...TINY_LLAVA_ONEVISION.text, tieEmbeddings: false } }), kind: 'llava', theta: 10000 },
  { name: 'llava_next', write: (d) => writeLlavaNextCheckpoint(d, TINY_LLAVA_NEXT), kind: 'llava', theta: 10000 },
  { name: 'qwen2_vl', write: (d) => writeQwen2VlCheckpoint(d, TINY_QWEN2_VL), kind: 'qwen', theta: 1_000_000 },
  { name: 'qwen2_5_vl', write: (d) => writeQwen2VlCheckpoint(d, TINY_QWEN2_5_VL), kind: 'qwen', theta: 1_000_000 },
];

interface Layout {
  readonly name: string;
  /** rewrite `dir` (a copy of the original) in place; returns the files the template and image settings must come from */
  readonly apply: (dir: string, f: Family) => { template: string; imageProcessor: string };
}

const current = (f: Family) => renameByPrefix(f.kind === 'llava' ? LLAVA_PREFIXES : QWEN_VL_PREFIXES);

/** The text config of a family's config.json, wherever it is. */
function editText(cfg: Json, f: Family, edit: (t: Json) => Json): Json {
  return f.kind === 'llava' || cfg.text_config ? { ...cfg, text_config: edit(cfg.text_config as Json) } : edit(cfg);
}

const LAYOUTS: Layout[] = [
  {
    // transformers 4.46 - 4.51 names, saved in three shards with an index.
    name: 'legacy names, sharded',
    apply: (dir) => {
      shard(dir, 3);
      return { template: 'tokenizer_config.json', imageProcessor: 'preprocessor_config.json' };
    },
  },
  {
    // transformers 4.52 - 4.57: model.language_model.* / model.visual.* / lm_head; Qwen text fields in text_config;
    // the chat template in chat_template.jinja.
    name: '4.52 names, nested text_config, chat_template.jinja',
    apply: (dir, f) => {
      renameInHeader(join(dir, 'model.safetensors'), join(dir, 'model.safetensors'), current(f));
      if (f.kind === 'qwen') editJson(join(dir, 'config.json'), (c) => nestQwenText(c, `${f.name}_text`));
      moveTemplate(dir, 'chat_template.jinja');
      return { template: 'chat_template.jinja', imageProcessor: 'preprocessor_config.json' };
    },
  },
  {
    // transformers v5: current names in two shards; dtype for torch_dtype; rope_parameters with rope_theta inside;
    // LLaVA's image_token_id alias; the image processor nested in processor_config.json under its fast class name,
    // Qwen's pixel bounds as size {shortest_edge, longest_edge}.
    name: 'v5: sharded current names, rope_parameters, dtype, nested fast image processor',
    apply: (dir, f) => {
      shard(dir, 2, current(f));
      editJson(join(dir, 'config.json'), (c) => {
        let out = toDtype(f.kind === 'qwen' ? nestQwenText(c, `${f.name}_text`) : c);
        out = editText(out, f, (t) => toRopeParameters(t, f.theta));
        if (f.kind === 'llava') {
          const { image_token_index: id, ...rest } = out;
          out = { ...rest, image_token_id: id };
        }
        return out;
      });
      moveTemplate(dir, 'chat_template.jinja');
      nestImageProcessor(dir, (pre) => {
        if (f.kind !== 'qwen') return pre;
        const { min_pixels: min, max_pixels: max, ...rest } = pre;
        return { ...rest, size: { shortest_edge: min, longest_edge: max } };
      });
      return { template: 'chat_template.jinja', imageProcessor: 'processor_config.json (image_processor)' };
    },
  },
  {
    // Hub re-saves of the 4.4x era: legacy names, Qwen2-VL's rope_scaling spelled {type: "mrope"}, the processor's
    // template in chat_template.json.
    name: 'hub legacy: rope_scaling.type, chat_template.json',
    apply: (dir, f) => {
      if (f.kind === 'qwen') {
        editJson(join(dir, 'config.json'), (c) => ({ ...c, rope_scaling: { type: 'mrope', mrope_section: (c.rope_scaling as Json).mrope_section } }));
      }
      moveTemplate(dir, 'chat_template.json');
      return { template: 'chat_template.json', imageProcessor: 'preprocessor_config.json' };
    },
  },
];

const IMAGE = (() => {
  const w = 75, h = 50;
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + (i >> 5) * 11) & 255;
  return rgbImage(w, h, data);
})();

async function run(dir: string): Promise<{ prepared: PreparedInputs; taps: Map<string, Tensor>; logits: Tensor; sources: { template: string; imageProcessor: string; notes: readonly string[] } }> {
  const proc = await loadProcessor(dir);
  const prepared = await proc.prepare({ images: [IMAGE], question: 'What is this?' });
  const model: KvlensModel = await loadModel(dir, { threads: 1 });
  try {
    assert.ok(model instanceof VisionLanguageModel);
    const taps = [...model.visionHooks, 'image.packed', 'lm.embed', 'lm.*.resid', 'lm.*.attn.q_proj', 'lm.*.attn.k_proj', 'lm.*.attn.v_proj', 'lm.*.attn.k', 'lm.*.attn.v', 'lm.*.attn.probs', 'lm.final_norm'];
    const out = await model.forward({
      inputIds: prepared.inputIds, pixelValues: prepared.pixelValues, taps, logitsAt: 'all',
      ...(prepared.imageSizes ? { imageSizes: prepared.imageSizes } : {}), ...(prepared.imageGridThw ? { imageGridThw: prepared.imageGridThw } : {}),
    });
    return { prepared, taps: out.taps, logits: out.logits!, sources: { template: proc.template.source, imageProcessor: proc.sources.imageProcessor, notes: proc.sources.notes } };
  } finally {
    await model.dispose();
  }
}

function sameBytes(a: Tensor | undefined, b: Tensor | undefined, what: string): void {
  assert.ok(a && b, `${what}: missing`);
  assert.deepEqual([...a.shape], [...b.shape], `${what}: shape`);
  assert.ok(Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength)), `${what}: values differ`);
}

for (const f of FAMILIES) {
  test(`${f.name}: every layout loads with the same prompt, pixels and taps as the original`, async () => {
    const root = mkdtempSync(join(tmpdir(), 'kvlens-layout-'));
    try {
      const orig = f.write(join(root, 'original'));
      const ref = await run(orig);
      assert.ok(ref.taps.size > 10, 'many taps compared');
      for (const [i, layout] of LAYOUTS.entries()) {
        const dir = join(root, `layout-${i}`);
        copyDir(orig, dir);
        const want = layout.apply(dir, f);
        const got = await run(dir);
        const what = `${f.name} / ${layout.name}`;
        assert.equal(got.sources.template, join(dir, want.template), `${what}: template source`);
        assert.equal(got.sources.imageProcessor, join(dir, want.imageProcessor), `${what}: image-processor source`);
        assert.equal(existsSync(join(dir, 'preprocessor_config.json')), want.imageProcessor === 'preprocessor_config.json');
        // the v5 layout names the fast processor class: kvlens says it computes the slow one's arithmetic
        assert.equal(got.sources.notes.some((n) => /Fast.*PIL arithmetic/.test(n)), want.imageProcessor !== 'preprocessor_config.json', `${what}: notes ${got.sources.notes.join('; ')}`);
        assert.equal(got.prepared.prompt, ref.prepared.prompt, `${what}: prompt`);
        sameBytes(got.prepared.inputIds, ref.prepared.inputIds, `${what}: input_ids`);
        sameBytes(got.prepared.pixelValues, ref.prepared.pixelValues, `${what}: pixel_values`);
        assert.deepEqual([...got.taps.keys()], [...ref.taps.keys()], `${what}: tap names`);
        for (const [name, t] of ref.taps) sameBytes(got.taps.get(name), t, `${what}: ${name}`);
        sameBytes(got.logits, ref.logits, `${what}: logits`);
        rmSync(dir, { recursive: true });
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
}

test('kvlens extract runs on a v5-layout checkpoint (no preprocessor_config.json) and stores what the legacy layout stores', { timeout: 120_000 }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'kvlens-layout-extract-'));
  try {
    const f = FAMILIES.find((x) => x.name === 'qwen2_5_vl')!;
    const orig = f.write(join(root, 'original'));
    const v5 = join(root, 'v5');
    copyDir(orig, v5);
    LAYOUTS[2].apply(v5, f);
    const images = join(root, 'images');
    await writeImages(images, 1);
    const stored: Float32Array[] = [];
    for (const model of [orig, v5]) {
      const out = join(root, `store-${stored.length}`);
      await extractFeatures({ model, images, out, taps: ['keys'], layers: '*', views: ['highres'], dtype: 'float32' });
      const store = FeatureStore.open(out);
      try {
        const [id] = store.images();
        stored.push(Float32Array.from(store.read(id, 'lm.0.attn.k', { view: 'highres' }).data));
      } finally {
        store.close();
      }
    }
    assert.ok(stored[0].length > 0);
    assert.deepEqual(stored[1], stored[0], 'stored keys, layer 0');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
