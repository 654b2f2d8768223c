/** The pipeline's short face: one line per component (loaded or not, device, weights), scheduler, size, last run. */
import type { OrtModel } from "../models/model";
import { formatBytes } from "../memory/probes";
import type { PartialRun, PixArtSigmaPipeline } from "./pixart-sigma";

function modelLine(model: OrtModel | null | undefined): string {
  if (!model) return "— not loaded";
  const bytes = Object.entries(model.weightBytes).filter(([, n]) => n);
  const total = bytes.reduce((a, [, n]) => a + (n ?? 0), 0);
  const dtypes = bytes.map(([d]) => d).join("+") || "no external weights";
  return `${model.constructor.name} · ${model.released ? "released" : model.device} · ${dtypes} · ${formatBytes(total)}`;
}

function runLine(run: PartialRun | undefined): string[] {
  if (!run) return [];
  const state = run.finished ? "finished" : "stopped (latents of the last finished step in pipe.lastRun.latents)";
  return [`  last run     ${run.stepsRun} of ${run.numInferenceSteps} steps, ${state}`];
}

export function pipelineFace(pipe: PixArtSigmaPipeline): string {
  const scheduler = pipe.scheduler as { className?: string; config?: Record<string, unknown> };
  const cfg = scheduler.config ?? {};
  const options = ["solver_order", "algorithm_type", "prediction_type", "timestep_spacing"]
    .filter((k) => cfg[k] !== undefined && cfg[k] !== null)
    .map((k) => `${k} ${String(cfg[k])}`);
  const transformer = pipe.transformer;
  const size = transformer ? transformer.config.sampleSize * pipe.vaeScaleFactor : undefined;
  return [
    `PixArtSigmaPipeline${pipe.source ? ` from ${pipe.source.dir}` : ""}`,
    `  tokenizer    ${pipe.tokenizer ? pipe.tokenizer.constructor.name : "— not loaded"}`,
    `  textEncoder  ${modelLine(pipe.textEncoder)}`,
    `  transformer  ${modelLine(transformer)}`,
    `  vae          ${modelLine(pipe.vae)}`,
    `  scheduler    ${scheduler.className ?? pipe.scheduler.constructor.name}${options.length ? ` (${options.join(", ")})` : ""}`,
    ...(size ? [`  image size   ${size}×${size} by default`] : []),
    ...runLine(pipe.lastRun),
    `  (inspect(pipe) shows everything)`,
  ].join("\n");
}
