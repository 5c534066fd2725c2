// Checkpoint I/O: safetensors (single files and sharded Hugging Face checkpoints) and GGUF.
export { CheckpointError } from './errors.ts';
export {
  openSafetensors, openSafetensorsFile, openSafetensorsIndex, loadSafetensors, saveSafetensors, saveSafetensorsSharded,
  safetensorsDTypeSize, MAX_HEADER_BYTES,
} from './safetensors.ts';
export type {
  SafetensorsDType, SafetensorsTensorInfo, SafetensorsLoadOptions, SafetensorsReader, SafetensorsSaveDType, SaveSafetensorsOptions,
  SaveShardedOptions, SavedSafetensors, SavedShards,
} from './safetensors.ts';
export { openGguf, saveGguf, permuteQkForGguf, unpermuteQkFromGguf, GGUF_DEFAULT_ALIGNMENT, GGUF_DEQUANTIZABLE } from './gguf.ts';
export type {
  GgufFile, GgufTensorInfo, GgufLoadOptions, GgufValue, GgufArray, GgufValueInput, GgufArrayInput, GgufNumberType, GgufBigIntType,
  GgufScalarType, GgufTensorInput, GgufWriteType, SaveGgufOptions,
} from './gguf.ts';
