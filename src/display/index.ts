/**
 * `pixart-ts/display`: display() and comms for pixart-ts notebooks, the cell interrupt signal, live progress,
 * attention-map displays and the JSON data types (with their schemas). display() is a no-op outside the kernel.
 *
 * @packageDocumentation
 */
export * from "./display";
export { InterruptedError, currentCellSignal, throwIfInterrupted } from "./interrupt";
export { LiveProgress, installLiveProgress } from "./progress";
export { imageGridBundle, inspect } from "./faces";
export type { ProgressSend } from "./progress";
export { attentionBundle, attentionPayload, attentionPng, attentionText, showAttention } from "./attention";
export type { AttentionDisplayOptions } from "./attention";
export type { AttentionImagePayload, AttentionPayload, EncodedArray, LatentStep, LatentsPayload } from "./payloads";
export { EncodedArrayError, decodeArray, encodeFloat32, encodeUint8, quantizeUint8 } from "./arrays";
export {
  ATTENTION_MIME, LATENTS_MIME, MEMORY_MIME, PayloadSchemaError, assertValidPayload, payloadErrors, payloadMimeTypes, registerPayloadSchema,
} from "./schemas";
