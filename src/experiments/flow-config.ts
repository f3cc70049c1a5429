// The probe flow's validated config (kvlens probe, and the tasks of a kvlens run experiment) and where its per-tap
// jobs live. Kept apart from flow.ts so the task builders (flow-tasks.ts) and the flow import it without a cycle.
import { z } from 'zod';
import { PROBE_DATASET_FIELDS, PROBE_PROPAGATION_FIELDS, PROBE_TEXT_QUERY_FIELDS } from '../probes/fields.js';
import { KvlensUsageError } from '../util/errors.js';

export const PROBE_TASKS = ['fewshot-seg', 'correspondence', 'coseg', 'semseg', 'refseg', 'propagation', 'bddseg'] as const;
export type ProbeTask = (typeof PROBE_TASKS)[number];

/** Defined with the probes' own schemas (src/probes/fields.ts): one source for every probe default. */
export { PROBE_DATASET_FIELDS, PROBE_PROPAGATION_FIELDS, PROBE_TEXT_QUERY_FIELDS };

export const ProbeFlowConfigSchema = z.object({
  task: z.enum(PROBE_TASKS),
  /** One store, or the shard stores of one run. */
  store: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  /** Dataset root in its on-disk layout. */
  data: z.string().min(1),
  /** Tap names or patterns over the store's taps: lm.*.attn.v, lm.3-5.attn.k, image.packed. */
  taps: z.array(z.string().min(1)).min(1).default(['lm.*.attn.v']),
  /** Layer selection substituted for "*" in the patterns: all, 3, 3-5, 0,7,14, -4:. */
  layers: z.string().min(1).default('all'),
  /** Store view to read (default: each tap's first view, "base"). */
  view: z.string().optional(),
  /** Name written in the rows' `model` column (default: the store's model directory name). */
  model: z.string().min(1).optional(),
  seed: z.number().int().default(0),
  ...PROBE_DATASET_FIELDS,
  threads: z.number().int().positive().optional(),
  // ---- text-query tasks (semseg, refseg) ----
  ...PROBE_TEXT_QUERY_FIELDS,
  /** Model directory for the text queries (default: the store's recorded path; its config.json must hash the same). */
  modelDir: z.string().min(1).optional(),
  /** Cache of text-query vectors (safetensors); none: computed every run. */
  queryCache: z.string().min(1).optional(),
  // ---- propagation ----
  ...PROBE_PROPAGATION_FIELDS,
  /** Indexed PNG predictions written to <dir>/<tap>/<video>/<frame>.png. */
  predictionsDir: z.string().min(1).optional(),
}).strict();
export type ProbeFlowConfig = z.infer<typeof ProbeFlowConfigSchema>;

export function parseProbeFlowConfig(input: unknown): ProbeFlowConfig {
  const r = ProbeFlowConfigSchema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new KvlensUsageError(`probe config field "${issue.path.join('.') || '(root)'}": ${issue.message}`);
  }
  return r.data;
}

/** The worker module of the per-tap jobs (the .ts file under tsx, the compiled .js otherwise). */
export const JOBS_MODULE = (): string => {
  const self = import.meta.url;
  return new URL(self.endsWith('.ts') ? './flow-jobs.ts' : './flow-jobs.js', self).href;
};
