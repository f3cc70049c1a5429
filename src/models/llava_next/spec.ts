// LLaVA-NeXT's differences from the shared LLaVA layout (../llava-spec.ts), as data: no anyres_max downsample; a CLIP
// tower whose taps carry the CLS token first (the projector drops it: "default" strategy); a Llama-3 (or other)
// decoder with its chat template.

import { llavaSpec } from '../llava-spec.js';

export const LLAVA_NEXT_SPEC = llavaSpec({
  family: 'llava_next',
  highres: 'unpadded',
  clsTokens: 1,
  towers: { vision: 'clip', decoder: 'llama' },
  originalEncoder: { kind: 'clip', modelType: 'clip_vision_model', example: 'openai/clip-vit-large-patch14-336' },
  builtinTemplate: 'builtin:llama3',
});
