// LLaVA-OneVision's differences from the shared interface, as data: a base tile (the whole image squashed to one
// SigLIP tile) and the anyres high-resolution grid (unpadded, anyres_max-downsampled, a newline token ending every
// row); vision taps per SigLIP tile (no CLS), the base tile being tile 0; a Qwen2 decoder with ChatML prompts.

import type { FamilySpec } from '../types.js';

export const LLAVA_ONEVISION_SPEC: FamilySpec = {
  family: 'llava_onevision',
  views: [
    { name: 'base', positions: 'sequence', description: 'the whole image squashed to one tile: its patch grid' },
    { name: 'highres', positions: 'sequence', description: 'the anyres grid of the high-resolution tiles, unpadded and downsampled (newlines excluded)' },
  ],
  towerView: 'base',
  projectorView: 'base',
  visionTapLayout: { kind: 'tiles', clsTokens: 0 },
  projectorLayout: 'tiles',
  towers: { vision: 'siglip', decoder: 'qwen2' },
  originalEncoder: { kind: 'siglip', modelType: 'siglip_vision_model', example: 'google/siglip-so400m-patch14-384' },
  prompt: { builtinTemplate: 'builtin:chatml', imagePlaceholder: '<image>' },
  nativeResolution: 'anyres-tiles',
};
