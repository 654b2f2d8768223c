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
 *        [--size 1024] [--steps 2] [--vae-opt extended] [--device cuda] [--json out.json] [--skip-text-encoder]
 *        [--steps-per-run K]
 * --binning false turns resolution binning off (for the tiny fixtures, which have no bin table).
 * With --device cuda (after `npm run gpu:install`; docs/gpu.md) every model runs on the GPU and each stage also
 * reports this process's peak GPU memory (nvidia-smi, sampled) next to diffusers' documented figures, and the
 * denoising time per step next to diffusers fp16 on an H100. Make the transformer and VAE with --dtype float16
 * there: the GPU then holds their weights in 16 bits (cast to fp32 per layer at run time).
 * --steps-per-run K runs the denoising loop inside the transformer's graph, K steps per onnxruntime run
 * (`call({ stepsPerRun })`, docs/gpu.md): the per-step times are then each run's time over its steps, and the first
 * run also makes the loop graph's session.
 * --skip-text-encoder encodes nothing and feeds random embeddings of T5's shape (when the 9.5 GB T5 is not there).
 * A size is binned like diffusers does (the 1024-MS transformer generates 512×512 requests at 1024×1024 and
 * resizes back), so use --size 1024 for the native size.
 * The folder is completed into a pipeline (model_index.json, scheduler and tokenizer from the tiny fixtures)
 * when those parts are missing.
 */
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import { formatBytes, GpuPeakSampler, gpuProcessMemory, processMemory, resetPeak } from "../src/memory/probes";
import type { Device } from "../src/onnx/device";
import { PixArtSigmaPipeline } from "../src/pipeline/pixart-sigma";
import { completePipelineFolder } from "./fullsize-folder";

interface StageFigure {
  stage: string;
  seconds: number;
  peakRss: number;
  rssAfter: number;
  /** This process's GPU memory: peak while the stage ran (sampled every 100 ms) and after it (GPU runs only). */
  gpuPeak?: number;
  gpuAfter?: number;
}

/**
 * Published figures for the same recipe at 1024×1024 (diffusers' PixArt-Σ docs; Quanto's PixArt-Σ numbers):
 * peak GPU memory of the whole flow, and diffusers fp16 on one H100 for 20 steps.
 */
const PUBLISHED = {
  gpuPeakBytes: { int8: [8e9, "diffusers, 8-bit T5 (bitsandbytes): < 8 GB"], int4: [7e9, "diffusers, 4-bit T5: < 7 GB"] } as Record<string, [number, string]>,
  quanto: { int8: [5.36e9, "Quanto int8: 5.36 GB"], int4: [3.06e9, "Quanto int4: 3.06 GB"] } as Record<string, [number, string]>,
  h100SecondsPer20Steps: 1.2,
};

async function measure<T>(stage: string, figures: StageFigure[], gpu: boolean, work: () => Promise<T>): Promise<T> {
  resetPeak();
  const sampler = gpu ? new GpuPeakSampler(undefined, 100).start() : undefined;
  const t = Date.now();
  const result = await work();
  const seconds = (Date.now() - t) / 1000;
  const m = processMemory();
  const gpuPeak = (await sampler?.stop())?.peak;
  const gpuAfter = gpu ? gpuProcessMemory()?.usedBytes : undefined;
  figures.push({ stage, seconds, peakRss: m.rssPeak, rssAfter: m.rss, ...(gpuPeak === undefined ? {} : { gpuPeak }), ...(gpuAfter === undefined ? {} : { gpuAfter }) });
  const gpuText = gpuPeak === undefined ? "" : `   peak GPU ${formatBytes(gpuPeak).padStart(10)}   after ${formatBytes(gpuAfter ?? 0)}`;
  console.log(`${stage.padEnd(42)} ${seconds.toFixed(1).padStart(7)} s   peak RSS ${formatBytes(m.rssPeak).padStart(10)}   after ${formatBytes(m.rss)}${gpuText}`);
  return result;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    dir: { type: "string", default: "/tmp/pixart-full" }, quantize: { type: "string", default: "int8" },
    size: { type: "string", default: "1024" }, steps: { type: "string", default: "2" }, "vae-opt": { type: "string", default: "all" },
    device: { type: "string", default: "cpu" }, binning: { type: "string", default: "true" }, json: { type: "string" }, "skip-text-encoder": { type: "boolean", default: false },
    "steps-per-run": { type: "string" },
  } });
  const dir = values.dir!;
  const device = values.device as Device;
  const gpu = device !== "cpu";
  const skipT5 = values["skip-text-encoder"]!;
  for (const c of [...(skipT5 ? [] : ["text_encoder"]), "transformer", "vae"]) {
    if (!fs.existsSync(path.join(dir, c, "config.json"))) {
      console.error(`${path.join(dir, c)} missing; see the header of bench/staged-recipe.ts for how to make it`);
      process.exit(2);
    }
  }
  completePipelineFolder(dir);
  const size = Number(values.size);
  const quantize = values.quantize as "int8" | "int4";
  const figures: StageFigure[] = [];
  const steps = Number(values.steps);
  const stepsPerRun = values["steps-per-run"] === undefined ? undefined : Number(values["steps-per-run"]);
  const loopText = stepsPerRun === undefined ? "step by step" : `in-graph loop, ${stepsPerRun} steps per run`;
  console.log(`staged recipe on ${device}: T5 ${skipT5 ? "skipped (random embeddings)" : quantize}, ${size}×${size}, ${steps} steps (${loopText}), VAE optimization "${values["vae-opt"]}"\n`);

  const pipe = await PixArtSigmaPipeline.fromPretrained(dir, { device, textEncoder: skipT5 ? null : { quantize }, transformer: null, vae: null });
  const embeds = skipT5 ? randomEmbeddings(JSON.parse(fs.readFileSync(path.join(dir, "transformer", "config.json"), "utf8")).caption_channels ?? 4096) : await measure(`1. encode prompt (T5-XXL ${quantize}, loaded)`, figures, gpu,
    () => pipe.encodePrompt("a small cactus with a happy face in the Sahara desert"));
  if (!skipT5) {
    await measure("   delete text encoder + flush", figures, gpu, async () => {
      delete pipe.textEncoder;
      await pipe.flush();
    });
  }
  await measure("2a. load transformer", figures, gpu, () => pipe.load("transformer"));
  // One entry per callback: after every step, or after every run's last step with --steps-per-run.
  const stepEnds: { time: number; steps: number }[] = [];
  const denoiseStart = Date.now();
  const { latents } = await measure(`2b. denoise (${steps} steps, ${loopText})`, figures, gpu, () =>
    pipe.call({ ...embeds, outputType: "latent", numInferenceSteps: steps, height: size, width: size, seed: 0, useResolutionBinning: values.binning !== "false",
      stepsPerRun, callbackOnStepEnd: (info) => void stepEnds.push({ time: Date.now(), steps: info.step + 1 }) }));
  const stepSeconds = stepEnds.flatMap((e, i) => {
    const prev = i === 0 ? { time: denoiseStart, steps: 0 } : stepEnds[i - 1];
    const n = e.steps - prev.steps;
    return new Array<number>(n).fill((e.time - prev.time) / 1000 / n);
  });
  const traffic = { ...pipe.transformer!.hostTraffic };
  await measure("   delete transformer + flush", figures, gpu, async () => {
    delete pipe.transformer;
    await pipe.flush();
  });
  // Resolution binning (on by default, as in diffusers) may have moved the generation to another size.
  const [, , h, w] = latents!.dims;
  console.log(`   (generated at ${h * 8}×${w * 8} after resolution binning; decoded and resized back to ${size}×${size})`);
  await measure("3. load VAE + decode", figures, gpu, async () => {
    await pipe.load("vae", { graphOptimizationLevel: values["vae-opt"] as "all" | "extended" });
    return pipe.decodeLatents(latents!, { height: size, width: size });
  });
  console.log(`\npeak RSS over the run: ${formatBytes(Math.max(...figures.map((f) => f.peakRss)))}` +
    " (diffusers documents < 8 GB GPU with an 8-bit T5, < 7 GB with 4-bit, for this recipe on CUDA)");
  const gpuPeak = gpu ? Math.max(...figures.map((f) => f.gpuPeak ?? 0)) : undefined;
  // Steady-state step time: the first step (run) includes CUDA/cuDNN warm-up (kernel selection, arena growth).
  const firstRun = stepsPerRun ?? 1;
  const steady = stepSeconds.length > firstRun ? median(stepSeconds.slice(firstRun)) : median(stepSeconds);
  if (gpuPeak !== undefined) {
    const [dBytes, dText] = PUBLISHED.gpuPeakBytes[quantize];
    const [qBytes, qText] = PUBLISHED.quanto[quantize];
    console.log(`peak GPU memory of this process over the run: ${formatBytes(gpuPeak)} = ${(gpuPeak / 1e9).toFixed(2)} GB; published for this ` +
      `recipe: ${dText} (ours is ${(gpuPeak / dBytes * 100).toFixed(0)} % of it), ${qText} (${(gpuPeak / qBytes * 100).toFixed(0)} %)${skipT5 ? " — T5 stage skipped" : ""}`);
  }
  console.log(`denoising: ${stepSeconds.map((x) => x.toFixed(2)).join(", ")} s per step; steady ${steady.toFixed(3)} s/step = ` +
    `${(steady * 20).toFixed(2)} s for 20 steps (diffusers fp16 on one H100: ${PUBLISHED.h100SecondsPer20Steps} s for 20 steps at 1024 px)`);
  const perStep = { bytesIn: traffic.bytesIn / Math.max(1, traffic.steps), bytesOut: traffic.bytesOut / Math.max(1, traffic.steps) };
  console.log(`transformer host traffic per step: ${formatBytes(perStep.bytesIn)} in, ${formatBytes(perStep.bytesOut)} out ` +
    `(${traffic.runs} onnxruntime runs for ${traffic.steps} steps)`);
  const report = pipe.memoryReport();
  console.log("\n" + report.toString());
  if (values.json) {
    fs.writeFileSync(values.json, JSON.stringify({
      device, quantize, size, steps, stepsPerRun: stepsPerRun ?? null, skipTextEncoder: skipT5, figures, stepSeconds, steadySecondsPerStep: steady, gpuPeak,
      hostTraffic: traffic, hostTrafficPerStep: perStep,
      published: PUBLISHED, loadavg: fs.readFileSync("/proc/loadavg", "utf8").trim(), memoryReport: report.toJSON(),
    }, null, 2));
  }
  await pipe.dispose();
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** T5-shaped embeddings (300 tokens × 4096 for T5-XXL) of a 14-token prompt and an empty negative prompt, for --skip-text-encoder. */
function randomEmbeddings(channels: number) {
  const tokens = 300;
  const embeds = (phase: number) => ({ data: new Float32Array(tokens * channels).map((_, i) => 0.1 * Math.sin(0.013 * i + phase)), dims: [1, tokens, channels] });
  const mask = (n: number) => ({ data: BigInt64Array.from({ length: tokens }, (_, i) => (i < n ? 1n : 0n)), dims: [1, tokens] });
  return { promptEmbeds: embeds(0), promptAttentionMask: mask(14), negativePromptEmbeds: embeds(1), negativePromptAttentionMask: mask(1) };
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
