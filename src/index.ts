/**
 * pixart-ts: the diffusers PixArt-Σ pipeline in TypeScript on onnxruntime-node.
 *
 * The root entry point holds the pipeline, the models, the schedulers and every error class. Narrower entry
 * points: `pixart-ts/schedulers`, `pixart-ts/tokenizer`, `pixart-ts/display`, `pixart-ts/io`, `pixart-ts/models`,
 * `pixart-ts/random`, `pixart-ts/memory` and `pixart-ts/kernel` (the Jupyter kernel; needs tslab and zeromq).
 *
 * @packageDocumentation
 */
export { PixArtSigmaPipeline, PipelineArgumentError, PipelineBusyError, NonFiniteTensorError, COMPONENT_FOLDERS } from "./pipeline/pixart-sigma";
export type {
  CallOptions, ComponentName, EncodePromptOptions, EncodedPrompt, FromPretrainedOptions, ImageOutput, LatentOutput, OutputType,
  LoadOptions, PartialRun, PipelineOutput, ProgressCallOptions, QueueOptions, StepInfo, TensorOutput,
} from "./pipeline/pixart-sigma";
export type {
  OperationBeginEvent, OperationEndEvent, PipelineOperation, PipelineStage, ProgressEvent, ProgressListener, ProgressOption, ProgressTensor, StepEvent,
  StageStartEvent, StageEndEvent,
} from "./runtime/progress";
export { ComponentMissingError, ComponentStateError } from "./pipeline/components";
export type { ModelName } from "./pipeline/components";
export { PixArtImage, ImageFormatError, imageFormatFor } from "./pipeline/image";
export type { ImageFormat } from "./pipeline/image";
export type { AttentionMaps, AttentionOptions, AttentionWord, ImageAttentionMaps } from "./pipeline/attention-maps";
export { CrossAttentionOptionError } from "./models/pixart-transformer-2d-attention";
export { CacheOptionError, type ForaCacheConfig, type TransformerCacheConfig } from "./models/pixart-transformer-2d-cache";
export { attentionBundle, showAttention } from "./display/attention";
export { inspect, imageGridBundle } from "./display/faces";
export { ResolutionBinningError } from "./pipeline/resolution-binning";
export * from "./models";
export type { ExecutionProvider, SessionConfig } from "./onnx/session";
export { SessionWorkerError, SessionReleasedError } from "./onnx/worker-session";
export { cudaStatus, DeviceArgumentError, GpuUnavailableError } from "./onnx/device";
export type { CudaProbe, CudaStatus, Device } from "./onnx/device";
export { T5Tokenizer } from "./tokenizer/t5-tokenizer";
export * from "./tokenizer/errors";
export * from "./schedulers";
export * from "./random";
export * from "./memory";
export { resolveModelPath } from "./io/hub-cache";
export * from "./io/errors";
export { WeightsFileChangedError } from "./io/file-guard";
export type { WeightCheckOptions } from "./io/weight-scan";
export { DisplayError, CommError } from "./display/display";
export { InterruptedError } from "./display/interrupt";
export { EncodedArrayError } from "./display/arrays";
export { PayloadSchemaError } from "./display/schemas";
