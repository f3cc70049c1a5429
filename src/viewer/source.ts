// What the viewer looks at: a feature store alone, or a run directory (results + optional <run>/store). Everything
// is read lazily per request: the store reader does positioned reads of one tensor; per-image run files are small.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FeatureStore } from '../store/index.js';
import { readJsonValidated } from '../results/io.js';
import { KeyVarianceSchema, type AttentionFile, type KeyVariance, type MaskFile } from '../results/schema.js';
import { RUN_FILES, readAttentionFile, readMaskFile } from '../results/rundir.js';
import { tapFamily, tapLayer } from '../taps/names.js';
import { isLanguageModelTap } from '../taps/table.js';
import { KvlensInputError } from '../util/errors.js';

export interface TapFamily { name: string; layers: number[] }

export class ViewerSource {
  private keyVariance: KeyVariance | undefined | null = null; // null = not loaded yet

  private constructor(
    readonly root: string,
    readonly mode: 'store' | 'run',
    readonly store: FeatureStore | undefined,
    readonly title: string,
  ) {}

  /** Open a store directory or a run directory (detected from its manifest.json). */
  static async open(root: string): Promise<ViewerSource> {
    let manifest: Record<string, unknown>;
    try {
      manifest = JSON.parse(await readFile(join(root, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new KvlensInputError(`expected a feature store or a run directory with a readable manifest.json (${(e as Error).message})`, root);
    }
    if (manifest.format === 'kvlens-feature-store') return new ViewerSource(root, 'store', FeatureStore.open(root), `store ${root}`);
    if (typeof manifest.experiment !== 'string') {
      throw new KvlensInputError('manifest.json is neither a feature store manifest (format: kvlens-feature-store) nor a run manifest (experiment: ...)', root);
    }
    const storeDir = join(root, RUN_FILES.store);
    const hasStore = await stat(join(storeDir, 'manifest.json')).then(() => true, () => false);
    return new ViewerSource(root, 'run', hasStore ? FeatureStore.open(storeDir) : undefined, `run ${manifest.experiment}`);
  }

  /**
   * Layered LM tap families held by the store (attn.v, attn.k, resid, ...), with their layers. Vision and
   * encoder-baseline taps (vision.{L}.out, baseline.{L}.out) are not LM families: the viewer's layer is an LM layer.
   */
  tapFamilies(): TapFamily[] {
    if (!this.store) return [];
    const fams = new Map<string, number[]>();
    for (const t of this.store.taps) {
      const layer = tapLayer(t);
      if (layer === null || !isLanguageModelTap(t)) continue;
      const fam = tapFamily(t).slice('lm.{L}.'.length);
      fams.set(fam, [...(fams.get(fam) ?? []), layer]);
    }
    return [...fams.entries()].map(([name, layers]) => ({ name, layers: layers.sort((a, b) => a - b) }));
  }

  imageIds(): string[] {
    return this.store ? this.store.images() : [];
  }

  /** [rows, cols, D] of one image, tap and view (default: the tap's first view). */
  grid(imageId: string, tap: string, view?: string) {
    if (!this.store) throw new KvlensInputError('this run has no feature store (<run>/store)', this.root);
    return this.store.read(imageId, tap, view ? { view } : {});
  }

  /** Which per-image run files exist at all (so the page offers only overlays it can draw). */
  async runFiles(): Promise<{ masks: boolean; attention: boolean }> {
    if (this.mode !== 'run') return { masks: false, attention: false };
    const has = (d: string) => readdir(join(this.root, d)).then((f) => f.some((n) => n.endsWith('.json')), () => false);
    return { masks: await has(RUN_FILES.masksDir), attention: await has(RUN_FILES.attentionDir) };
  }

  async loadKeyVariance(): Promise<KeyVariance | undefined> {
    if (this.keyVariance === null) {
      const p = join(this.root, RUN_FILES.keyVariance);
      const present = this.mode === 'run' && (await stat(p).then(() => true, () => false));
      this.keyVariance = present ? await readJsonValidated(p, KeyVarianceSchema) : undefined;
    }
    return this.keyVariance;
  }

  async mask(imageId: string): Promise<MaskFile | undefined> {
    return this.mode === 'run' ? readMaskFile(this.root, imageId) : undefined;
  }

  async attention(imageId: string): Promise<AttentionFile | undefined> {
    return this.mode === 'run' ? readAttentionFile(this.root, imageId) : undefined;
  }

  close(): void {
    this.store?.close();
  }
}
