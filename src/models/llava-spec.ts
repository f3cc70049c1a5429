// What the LLaVA families (LLaVA-OneVision, LLaVA-NeXT) share as data: every image is a base tile (the whole image
// squashed to one tile) followed by the anyres grid of high-resolution tiles with a newline token ending each row;
// vision.* and projector.out are kept per tile on the base view. A family's spec.ts gives only what differs: its
// tower, CLS tokens, decoder, original encoder, chat template and how its high-resolution grid is formed.
import type { FamilySpec, OriginalEncoder } from './types.js';

export interface LlavaSpecData {
  readonly family: string;
  /** how the high-resolution grid is formed, completing "the anyres grid of the high-resolution tiles, ..." */
  readonly highres: string;
  /** tokens before the patch grid in every vision tile (CLIP's CLS: 1; SigLIP: 0) */
  readonly clsTokens: number;
  readonly towers: FamilySpec['towers'];
  readonly originalEncoder: OriginalEncoder;
  readonly builtinTemplate: string;
}

export function llavaSpec(d: LlavaSpecData): FamilySpec {
  return {
    family: d.family,
    views: [
      { name: 'base', positions: 'sequence', description: 'the whole image squashed to one tile: its patch grid' },
      { name: 'highres', positions: 'sequence', description: `the anyres grid of the high-resolution tiles, ${d.highres} (newlines excluded)` },
    ],
    towerView: 'base',
    projectorView: 'base',
    visionTapLayout: { kind: 'tiles', clsTokens: d.clsTokens },
    projectorLayout: 'tiles',
    towers: d.towers,
    originalEncoder: d.originalEncoder,
    prompt: { builtinTemplate: d.builtinTemplate, imagePlaceholder: '<image>' },
    nativeResolution: 'anyres-tiles',
  };
}
