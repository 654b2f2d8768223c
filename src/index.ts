/**
 * pixart-ts: the diffusers PixArt-Σ pipeline in TypeScript on onnxruntime-node.
 */
export { PixArtSigmaPipeline, PipelineArgumentError } from "./pipeline/pixart-sigma";
export type { CallOptions, EncodePromptOptions, EncodedPrompt, FromPretrainedOptions, PipelineOutput, ProgressCallOptions, StepInfo } from "./pipeline/pixart-sigma";
export type { PipelineOperation, PipelineStage, ProgressEvent, ProgressListener, ProgressOption, StepEvent, StageStartEvent, StageEndEvent } from "./runtime/progress";
export { ComponentMissingError, ComponentStateError } from "./pipeline/components";
export { PixArtImage } from "./pipeline/image";
export type { AttentionMaps, AttentionOptions, AttentionWord, ImageAttentionMaps } from "./pipeline/attention-maps";
export { CrossAttentionOptionError } from "./models/pixart-transformer-2d-attention";
export { attentionBundle, showAttention } from "./display/attention";
export { inspect, imageGridBundle } from "./display/faces";
export { T5EncoderModel } from "./models/t5-encoder";
export { PixArtTransformer2DModel } from "./models/pixart-transformer-2d";
export { AutoencoderKL } from "./models/autoencoder-kl";
export type { Tensor } from "./models/model";
export { T5Tokenizer } from "./tokenizer/t5-tokenizer";
export { loadScheduler, schedulerFromConfig, SCHEDULER_CLASS_NAMES } from "./schedulers/scheduler";
export type { Scheduler } from "./schedulers/scheduler";
export { TorchGenerator } from "./random/torch-generator";
export { randnTensor } from "./random/randn-tensor";
export { MemoryReport } from "./memory/report";
export { cudaStatus, DeviceArgumentError, GpuUnavailableError } from "./onnx/device";
export type { CudaStatus, Device } from "./onnx/device";
export { processMemory, formatBytes } from "./memory/probes";
export { resolveModelPath } from "./io/hub-cache";
export * from "./io/errors";
