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
