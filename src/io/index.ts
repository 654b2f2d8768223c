/** Checkpoint I/O: safetensors, the diffusers folder layout, the Hugging Face cache. */
export * from "./types";
export * from "./errors";
export { JsonObject, JsonValue, isJsonObject, parsePythonJson, readJsonFile, readJsonObject } from "./json";
export {
  DTYPE_SIZES, MAX_HEADER_BYTES, SafetensorsFile, TensorArray, byteSize, isDType, openSafetensors,
  readTensorData, readTensorFloat32, toFloat32, toTypedArray,
} from "./safetensors";
export { Chunks, HeaderLayout, HeaderLayoutEntry, TensorDataSource, TensorToWrite, WriteOptions, WriteResult, layoutSafetensors, writeSafetensors } from "./safetensors-writer";
export {
  CheckpointWeights, Component, ComponentOptions, ComponentSpec, MODEL_INDEX, PipelineFolder, WeightOptions,
  openComponent, openPipelineFolder, openWeights, requireTensors, weightFileCandidates, withAliases,
} from "./checkpoint";
export { WeightCheckOptions, WeightScanResult, checkFiniteWeights } from "./weight-scan";
export { HubCacheOptions, hubCacheDir, isRepoId, repoFolderName, resolveModelPath, snapshotPath, validateRepoId } from "./hub-cache";
