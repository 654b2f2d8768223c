/**
 * TypeScript shapes of the custom MIME payloads; src/display/schemas/*.schema.json are their definitions (the
 * tests check that what we emit validates). The JupyterLab extension imports these types.
 */
import type { EncodedArray } from "./arrays";
import type { PipelineStage } from "../runtime/progress";

export type { EncodedArray } from "./arrays";

/** application/vnd.pixart.latents+json, version 1 (schemas/latents.schema.json). */
export interface LatentsPayload {
  version: 1;
  /** [batch, channels, height, width] */
  latentShape: number[];
  numInferenceSteps: number;
  /** False in live updates, true in the finished output. */
  done: boolean;
  progress?: {
    stage: PipelineStage | "done";
    label?: string;
    step?: number;
    totalSteps?: number;
    elapsedMs: number;
    etaMs?: number;
    itPerSec?: number;
  };
  stages?: { stage: PipelineStage; label: string; durationMs: number }[];
  /** rgb = clamp((latent · matrix + bias + 1) / 2, 0, 1); one matrix row per latent channel. */
  projection?: { name: string; matrix: number[][]; bias: number[] };
  steps: LatentStep[];
  /** The final latents (quantised uint8 or float32). */
  latents?: EncodedArray;
}

export interface LatentStep {
  /** 1-based. */
  step: number;
  timestep: number;
  elapsedMs?: number;
  /** uint8 RGB [batch, height, width, 3]. */
  preview: EncodedArray;
}

/** application/vnd.pixart.attention+json, version 1 (schemas/attention.schema.json). */
export interface AttentionPayload {
  version: 1;
  /** Size of the generated images. */
  height: number;
  width: number;
  /** [rows, cols] of the patch grid of the token maps. */
  grid: [number, number];
  layers: number[];
  steps: number[];
  images: AttentionImagePayload[];
}

export interface AttentionImagePayload {
  prompt?: string;
  /** Pieces of the unmasked tokens, EOS included. */
  tokens: string[];
  words: { text: string; tokens: number[]; truncated: boolean }[];
  cutWords: string[];
  /** float32 [tokens, gridRows, gridCols]. */
  tokenMaps: EncodedArray;
  /** [words, mapHeight, mapWidth] in [0, 1], uint8 quantised (scale 1/255). */
  wordMaps: EncodedArray;
  /** uint8 RGB [mapHeight, mapWidth, 3]. */
  image?: EncodedArray;
}
