/** The three model graphs of PixArt-Σ (T5 encoder, diffusion transformer, VAE decoder), their configs and errors. */
export type { HostTraffic, Tensor } from "./model";
export { ModelReleasedError } from "./model";
export { T5EncoderModel, T5InputError, parseT5Config } from "./t5-encoder";
export type { T5Config, T5EncoderInput, T5EncoderLoadOptions, T5GraphOptions, T5LinearFn } from "./t5-encoder";
export { PixArtTransformer2DModel, TransformerInputError, parsePixArtTransformerConfig } from "./pixart-transformer-2d";
export type {
  CrossAttentionForwardOptions, DenoiseLoopInput, PixArtGraphOptions, PixArtTransformer2DConfig, TransformerAttentionOutput, TransformerForwardInput,
} from "./pixart-transformer-2d";
export type { LinearStepPlan } from "./pixart-denoise-loop";
export { CacheOptionError } from "./pixart-transformer-2d-cache";
export type { ForaCacheConfig, TransformerCacheConfig } from "./pixart-transformer-2d-cache";
export { AutoencoderKL, LatentShapeError, TilingOptionError, parseAutoencoderKLConfig } from "./autoencoder-kl";
export type { AutoencoderKLConfig, DecodeOptions as VaeDecodeOptions, TilingOptions as VaeTilingOptions } from "./autoencoder-kl";
export { QUANTIZE_METHODS, QuantizeOptionError, QuantizeDtypeError, NonFiniteRowError, NonFiniteWeightError } from "./quantize";
export type { Int4AccuracyLevel, LinearFn, QuantizeMethod } from "./quantize";
export { QuantizeCacheError } from "./quantized-cache";
export type { QuantizationReport, QuantizeLoadOptions } from "./quantized-cache";
export type { RawConfig } from "./config-fields";
export type { AttrValue, BuiltModel, ElemType, FloatAttr, GraphAttr, GraphBuilder, OpOptions, Value } from "../onnx/graph";
