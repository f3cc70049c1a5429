// The feature store: streaming, resumable safetensors shards + manifest (writer), positioned-read access (reader),
// sharded runs (selection) and merging. See format.ts for the on-disk layout.
export { StoreWriter, type WriterOptions, type WriterEvent } from './writer.js';
export { FeatureStore, type Grid, type ReadOptions, type StoredImage } from './reader.js';
export { mergeStores, mergeManifests, type MergeOptions, type MergeResult } from './merge.js';
export { resolveShard, parseShardSpec, selectShard, shardRange, missingParts, listIdentity } from './selection.js';
export { modelIdentity, modelConfigSha256, weightsIdentity, kvlensVersion, type WeightsHashMethod } from './provenance.js';
export { isStorableTap, tapLayout, tapViews, gatherGrid, SIGLIP_VIEW, type ImageRecord, type ViewTokens, type TapTensor } from './gather.js';
export {
  DEFAULT_VIEWS, DEFAULT_MAX_SHARD_BYTES, LOCK_FILE, readManifest, tensorName, shardFileName,
  type Manifest, type StoreIdentity, type StoreDType, type ShardSelection, type TapDims, type ImageEntry,
} from './format.js';
