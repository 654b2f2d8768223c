/**
 * The diffusers "under 8 GB" recipe, staged, on full-size-shaped PixArt-Σ components with random weights:
 * encode the prompt with an 8-bit (or 4-bit) T5, delete the text encoder, flush, denoise to latents, delete the
 * transformer, flush, decode with the VAE. Prints the peak RSS of each stage.
 *
 * Make the components first (never committed; ~12 GB of disk):
 *   .venv/bin/python tools/reference/make_fullsize.py /tmp/pixart-full --components transformer,vae
 *   .venv/bin/python tools/reference/make_fullsize.py /tmp/pixart-full --components text_encoder --dtype bfloat16
 * Run:
 *   npm run build && node --expose-gc dist/bench/staged-recipe.js [--dir /tmp/pixart-full] [--quantize int8|int4]
 *        [--size 1024] [--steps 2] [--vae-opt extended]
 * A size is binned like diffusers does (the 1024-MS transformer generates 512×512 requests at 1024×1024 and
 * resizes back), so use --size 1024 for the native size.
 * The folder is completed into a pipeline (model_index.json, scheduler and tokenizer from the tiny fixtures)
 * when those parts are missing.
 */
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import { formatBytes, processMemory, resetPeak } from "../src/memory/probes";
import { PixArtSigmaPipeline } from "../src/pipeline/pixart-sigma";
import { repoRoot } from "../test/helpers/paths";

function completePipelineFolder(dir: string): void {
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

interface StageFigure {
  stage: string;
  seconds: number;
  peakRss: number;
  rssAfter: number;
}

async function measure<T>(stage: string, figures: StageFigure[], work: () => Promise<T>): Promise<T> {
  resetPeak();
  const t = Date.now();
  const result = await work();
  const m = processMemory();
  figures.push({ stage, seconds: (Date.now() - t) / 1000, peakRss: m.rssPeak, rssAfter: m.rss });
  console.log(`${stage.padEnd(42)} ${((Date.now() - t) / 1000).toFixed(1).padStart(7)} s   peak RSS ${formatBytes(m.rssPeak).padStart(10)}   after ${formatBytes(m.rss)}`);
  return result;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    dir: { type: "string", default: "/tmp/pixart-full" }, quantize: { type: "string", default: "int8" },
    size: { type: "string", default: "1024" }, steps: { type: "string", default: "2" }, "vae-opt": { type: "string", default: "all" },
  } });
  const dir = values.dir!;
  for (const c of ["text_encoder", "transformer", "vae"]) {
    if (!fs.existsSync(path.join(dir, c, "config.json"))) {
      console.error(`${path.join(dir, c)} missing; see the header of bench/staged-recipe.ts for how to make it`);
      process.exit(2);
    }
  }
  completePipelineFolder(dir);
  const size = Number(values.size);
  const quantize = values.quantize as "int8" | "int4";
  const figures: StageFigure[] = [];
  console.log(`staged recipe: T5 ${quantize}, ${size}×${size}, ${values.steps} steps, VAE optimization "${values["vae-opt"]}"\n`);

  const pipe = await PixArtSigmaPipeline.fromPretrained(dir, { textEncoder: { quantize }, transformer: null, vae: null });
  const embeds = await measure(`1. encode prompt (T5-XXL ${quantize}, loaded)`, figures,
    () => pipe.encodePrompt("a small cactus with a happy face in the Sahara desert"));
  await measure("   delete text encoder + flush", figures, async () => {
    delete pipe.textEncoder;
    await pipe.flush();
  });
  const { latents } = await measure(`2. load transformer + denoise (${values.steps} steps)`, figures, async () => {
    await pipe.load("transformer");
    return pipe.call({ ...embeds, outputType: "latent", numInferenceSteps: Number(values.steps), height: size, width: size, seed: 0 });
  });
  await measure("   delete transformer + flush", figures, async () => {
    delete pipe.transformer;
    await pipe.flush();
  });
  // Resolution binning (on by default, as in diffusers) may have moved the generation to another size.
  const [, , h, w] = latents!.dims;
  console.log(`   (generated at ${h * 8}×${w * 8} after resolution binning; decoded and resized back to ${size}×${size})`);
  await measure("3. load VAE + decode", figures, async () => {
    await pipe.load("vae", { graphOptimizationLevel: values["vae-opt"] as "all" | "extended" });
    return pipe.decodeLatents(latents!, { height: size, width: size });
  });
  console.log(`\npeak RSS over the run: ${formatBytes(Math.max(...figures.map((f) => f.peakRss)))}` +
    " (diffusers documents < 8 GB GPU with an 8-bit T5, < 7 GB with 4-bit, for this recipe on CUDA)");
  console.log("\n" + pipe.memoryReport().toString());
  await pipe.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
