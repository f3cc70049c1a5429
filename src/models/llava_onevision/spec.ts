// LLaVA-OneVision's differences from the shared LLaVA layout (../llava-spec.ts), as data: the high-resolution grid is
// unpadded and anyres_max-downsampled; vision taps per SigLIP tile (no CLS), the base tile being tile 0; a Qwen2
// decoder with ChatML prompts.

import { llavaSpec } from '../llava-spec.js';

export const LLAVA_ONEVISION_SPEC = llavaSpec({
  family: 'llava_onevision',
  highres: 'unpadded and downsampled',
  clsTokens: 0,
  towers: { vision: 'siglip', decoder: 'qwen2' },
  originalEncoder: { kind: 'siglip', modelType: 'siglip_vision_model', example: 'google/siglip-so400m-patch14-384' },
  builtinTemplate: 'builtin:chatml',
});
