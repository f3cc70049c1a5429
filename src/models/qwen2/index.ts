export { parseQwen2Config } from './config.js';
export { loadQwen2, type Qwen2LoadOptions } from './model.js';
