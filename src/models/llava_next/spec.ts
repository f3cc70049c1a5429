// LLaVA-NeXT's differences from the shared interface, as data: base tile + anyres high-resolution grid (no
// anyres_max downsample, newline per row) like LLaVA-OneVision; a CLIP tower whose taps carry the CLS token first
// (the projector drops it: "default" strategy); a Llama-3 (or other) decoder with its chat template.

import type { FamilySpec } from '../types.js';

export const LLAVA_NEXT_SPEC: FamilySpec = {
  family: 'llava_next',
  views: [
    { name: 'base', positions: 'sequence', description: 'the whole image squashed to one tile: its patch grid' },
    { name: 'highres', positions: 'sequence', description: 'the anyres grid of the high-resolution tiles, unpadded (newlines excluded)' },
  ],
  towerView: 'base',
  projectorView: 'base',
  visionTapLayout: { kind: 'tiles', clsTokens: 1 },
  projectorLayout: 'tiles',
  towers: { vision: 'clip', decoder: 'llama' },
  originalEncoder: { kind: 'clip', modelType: 'clip_vision_model', example: 'openai/clip-vit-large-patch14-336' },
  prompt: { builtinTemplate: 'builtin:llama3', imagePlaceholder: '<image>' },
  nativeResolution: 'anyres-tiles',
};
