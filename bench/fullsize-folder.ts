/** Shared by the full-size benchmarks: turning a folder of make_fullsize.py components into a pipeline folder. */
import * as fs from "fs";
import * as path from "path";
import { repoRoot } from "../test/helpers/paths";

/**
 * Completes a folder of components into a pipeline folder (model_index.json, and the scheduler and tokenizer of
 * the tiny fixtures) when those parts are missing; existing parts are left alone.
 */
export function completePipelineFolder(dir: string): void {
  const tiny = path.join(repoRoot(), "test", "fixtures", "tiny-hires", "pipeline");
  for (const part of ["scheduler", "tokenizer"]) {
    if (!fs.existsSync(path.join(dir, part))) fs.cpSync(path.join(tiny, part), path.join(dir, part), { recursive: true });
  }
  const index = path.join(dir, "model_index.json");
  if (!fs.existsSync(index)) {
    fs.writeFileSync(index, JSON.stringify({
      _class_name: "PixArtSigmaPipeline", scheduler: ["diffusers", "DPMSolverMultistepScheduler"], text_encoder: ["transformers", "T5EncoderModel"],
      tokenizer: ["transformers", "T5Tokenizer"], transformer: ["diffusers", "PixArtTransformer2DModel"], vae: ["diffusers", "AutoencoderKL"],
    }, null, 2));
  }
}
