// A `kvlens run` flow task sets every text-query and propagation field the probe's own schema has (src/probes/fields.ts
// is the one source): the same defaults as `kvlens probe`, and a set value reaches the probe flow.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseExperimentConfig, ProbeTaskSchema } from '../../src/experiments/config.js';
import { ProbeFlowConfigSchema } from '../../src/experiments/flow-config.js';
import { probeTaskFields } from '../../src/experiments/stores.js';
import { PROBE_DEFAULTS, PROBE_PROPAGATION_FIELDS, PROBE_TEXT_QUERY_FIELDS } from '../../src/probes/fields.js';

const FIELDS = [...Object.keys(PROBE_TEXT_QUERY_FIELDS), ...Object.keys(PROBE_PROPAGATION_FIELDS)];

test('flow tasks take the text-query and propagation fields, with the probes\' own defaults', () => {
  const task = ProbeTaskSchema.parse({ task: 'semseg', data: '/d' });
  const probe = ProbeFlowConfigSchema.parse({ task: 'semseg', store: '/s', data: '/d' });
  for (const f of FIELDS) assert.deepEqual((task as Record<string, unknown>)[f], (probe as Record<string, unknown>)[f], f);
  assert.equal(task.similarity, PROBE_DEFAULTS.textQuery.similarity);
  assert.equal(task.maskRule, PROBE_DEFAULTS.textQuery.maskRule);
  assert.equal(task.contextFrames, PROBE_DEFAULTS.propagation.contextFrames);
  assert.deepEqual([task.variant, task.textTemplate, task.queries], [50, '{}', 'present']);
});

test('a flow experiment\'s text-query settings reach the probe flow', () => {
  const cfg = parseExperimentConfig({
    experiment: 'flow', model: '/m', out: '/o',
    tasks: [{ task: 'refseg', data: '/d', maskRule: 'topFraction', fraction: 0.4, similarity: 'cosine', textTemplate: 'a photo of {}' },
      { task: 'propagation', data: '/v', topK: 7, radius: 3, contextFrames: 4, temperature: 0.2 }],
  });
  assert.equal(cfg.experiment, 'flow');
  if (cfg.experiment !== 'flow') return;
  const [ref, prop] = cfg.tasks.map((t) => ProbeFlowConfigSchema.parse({ ...probeTaskFields(t), store: '/s' }));
  assert.deepEqual([ref.maskRule, ref.fraction, ref.similarity, ref.textTemplate], ['topFraction', 0.4, 'cosine', 'a photo of {}']);
  assert.deepEqual([prop.topK, prop.radius, prop.contextFrames, prop.temperature], [7, 3, 4, 0.2]);
  assert.throws(() => parseExperimentConfig({ experiment: 'flow', model: '/m', out: '/o', tasks: [{ task: 'refseg', data: '/d', maskRule: 'argmax' }] }), /tasks\.0\.maskRule/);
});
