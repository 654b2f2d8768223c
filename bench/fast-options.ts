/**
 * Issue 15's fast options with their quality cost: FORA step caching (intervals 2 and 3) and int8 / int4 weights for
 * the transformer, each against the exact fp32 run on the same seed.
 *
 * Tiny trained checkpoint (models/default.json's, models/tiny-shapes): the 60 held-out captions of
 * test/fixtures/shapes in one call, as test/parity/shapes.test.ts makes it (20 DPM-Solver++ steps, guidance 1.5,
 * seed 0, max_sequence_length 32, no binning). Per variant: the semantic score (object colour, background and
 * position all read back right, test/helpers/scene-reader.ts), PSNR and max |Δ| of the float images in [0, 1] vs the
 * exact fp32 images, and the call's time (median of --reps, variants interleaved in one process).
 *
 * With --fullsize DIR (a full-size-shaped transformer folder, e.g. .bench/fullsize/transformer from
 * tools/reference/make_fullsize.py): the transformer part of a 512 px, 4-step call with CFG (batch 2, 300-token
 * prompts with 20 and 1 valid tokens, random embeddings), exact vs FORA interval 2, interleaved, --reps each.
 *
 *   npm run build && node --expose-gc dist/bench/fast-options.js [--reps 2] [--fullsize .bench/fullsize/transformer] [--skip-tiny]
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { performance } from "perf_hooks";
import { readDefaults } from "../src/cli/defaults";
import type { Tensor } from "../src/models/model";
import { PixArtTransformer2DModel } from "../src/models/pixart-transformer-2d";
import type { TransformerCacheConfig } from "../src/models/pixart-transformer-2d-cache";
import { PixArtImage } from "../src/pipeline/image";
import { PixArtSigmaPipeline } from "../src/pipeline/pixart-sigma";
import { TorchGenerator } from "../src/random/torch-generator";
import { randnTensor } from "../src/random/randn-tensor";
import { repoRoot } from "../test/helpers/paths";
import { readScene, type SceneVocabulary } from "../test/helpers/scene-reader";

interface Variant {
  name: string;
  /** Transformer load option. */
  quantize?: "int8" | "int4";
  cache?: TransformerCacheConfig;
}

const VARIANTS: Variant[] = [
  { name: "exact fp32" },
  { name: "FORA interval 2", cache: { method: "fora", interval: 2 } },
  { name: "FORA interval 3", cache: { method: "fora", interval: 3 } },
  { name: "int8 transformer", quantize: "int8" },
  { name: "int4 transformer", quantize: "int4" },
];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const load = (): string => os.loadavg().map((x) => x.toFixed(1)).join(" ");
/** The middle value (the lower of the two middle ones for an even count: the faster of 2 reps). */
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

/** PSNR (peak 1) and max |Δ| of float images in [0, 1]. */
function imageDifference(a: Float32Array, b: Float32Array): { psnr: number; maxAbs: number } {
  let se = 0;
  let maxAbs = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    se += d * d;
    maxAbs = Math.max(maxAbs, Math.abs(d));
  }
  return { psnr: se === 0 ? Infinity : 10 * Math.log10(a.length / se), maxAbs };
}

async function tiny(reps: number): Promise<void> {
  type HeldOut = [string, string, string, string, string];
  const ref = JSON.parse(fs.readFileSync(path.join(repoRoot(), "test", "fixtures", "shapes", "reference.json"), "utf8")) as {
    semantic: SceneVocabulary & { held_out: HeldOut[]; call: { num_inference_steps: number; guidance_scale: number; seed: number; max_sequence_length: number } };
  };
  const { held_out: heldOut, call } = ref.semantic;
  const model = path.resolve(repoRoot(), (await readDefaults()).model);
  // One pipeline per variant, so that each keeps its sessions (quantized graphs, FORA's two graph variants).
  const pipes = new Map<string, PixArtSigmaPipeline>();
  for (const v of VARIANTS) {
    const transformer = await PixArtTransformer2DModel.fromPretrained(path.join(model, "transformer"), v.quantize ? { quantize: v.quantize } : {});
    if (v.cache) transformer.enableCache(v.cache);
    pipes.set(v.name, await PixArtSigmaPipeline.fromPretrained(model, { progress: false, transformer }));
  }
  const run = async (v: Variant): Promise<{ tensor: Tensor; ms: number }> => {
    const t = performance.now();
    const { tensor } = await pipes.get(v.name)!.call({
      prompt: heldOut.map(([caption]) => caption), negativePrompt: "", numInferenceSteps: call.num_inference_steps,
      guidanceScale: call.guidance_scale, seed: call.seed, maxSequenceLength: call.max_sequence_length, useResolutionBinning: false,
      outputType: "tensor",
    });
    return { tensor, ms: performance.now() - t };
  };
  for (const v of VARIANTS) await run(v); // warm-up: sessions, memory arenas
  const times = new Map<string, number[]>(VARIANTS.map((v) => [v.name, []]));
  const images = new Map<string, Tensor>();
  const loads: string[] = [load()];
  for (let r = 0; r < reps; r++) {
    for (const v of VARIANTS) {
      const { tensor, ms } = await run(v);
      times.get(v.name)!.push(ms);
      images.set(v.name, tensor);
    }
    loads.push(load());
  }
  const exact = images.get("exact fp32")!;
  const [n, h, w] = exact.dims;
  const exactMs = median(times.get("exact fp32")!);
  console.log(`\nTiny shapes checkpoint, ${n} held-out captions, ${call.num_inference_steps} steps, guidance ${call.guidance_scale}, ` +
    `seed ${call.seed}; ${reps} timed call(s) per variant, interleaved; load average (1/5/15 min) ${loads.join(" → ")}\n`);
  console.log("| variant | all three right | colour | background | position | PSNR vs exact | max \\|Δ\\| vs exact | call time (median) | vs exact |");
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const v of VARIANTS) {
    const t = images.get(v.name)!;
    const right = { all: 0, colour: 0, background: 0, position: 0 };
    for (let i = 0; i < n; i++) {
      const image = PixArtImage.fromFloat(t.data, i, h, w);
      const read = readScene(image.rgb, image.width, image.height, ref.semantic);
      const [, , colour, position, background] = heldOut[i];
      right.colour += Number(read.colour === colour);
      right.background += Number(read.background === background);
      right.position += Number(read.position === position);
      right.all += Number(read.colour === colour && read.background === background && read.position === position);
    }
    const d = imageDifference(t.data, exact.data);
    const ms = median(times.get(v.name)!);
    const pct = (k: number) => `${k}/${n}`;
    console.log(`| ${v.name} | ${pct(right.all)} = ${((100 * right.all) / n).toFixed(1)}% | ${pct(right.colour)} | ${pct(right.background)} | ` +
      `${pct(right.position)} | ${Number.isFinite(d.psnr) ? `${d.psnr.toFixed(1)} dB` : "∞ (identical)"} | ${d.maxAbs.toExponential(2)} | ` +
      `${(ms / 1000).toFixed(2)} s | ${(ms / exactMs).toFixed(2)} |`);
  }
  for (const pipe of pipes.values()) await pipe.dispose();
}

/** The transformer part of a 4-step, 512 px CFG call: exact vs FORA interval 2, interleaved. */
async function fullsize(dir: string, reps: number): Promise<void> {
  // Two models over the same (memory-mapped, shared) weight file, so that each keeps its sessions and arenas.
  const exact = await PixArtTransformer2DModel.fromPretrained(dir);
  const fora = await PixArtTransformer2DModel.fromPretrained(dir);
  fora.enableCache({ method: "fora", interval: 2 });
  console.log(`\nFull-size-shaped transformer: ${dir}`);
  const L = 300;
  const g = new TorchGenerator(0);
  const embeds = { data: randnTensor([2, L, exact.config.captionChannels!], g), dims: [2, L, exact.config.captionChannels!] };
  const mask = { data: BigInt64Array.from({ length: 2 * L }, (_, i) => BigInt(i < L ? Number(i < 1) : Number(i - L < 20))), dims: [2, L] };
  const noise = randnTensor([1, 4, 64, 64], g);
  const timesteps = [999, 749, 499, 249];
  const denoise = async (model: PixArtTransformer2DModel, steps = timesteps): Promise<{ ms: number; latents: Float32Array }> => {
    model.resetCache();
    let x = Float32Array.from(noise);
    const t = performance.now();
    for (const step of steps) {
      const both = new Float32Array(2 * x.length);
      both.set(x);
      both.set(x, x.length);
      const out = await model.forward({ hiddenStates: { data: both, dims: [2, 4, 64, 64] }, encoderHiddenStates: embeds,
        encoderAttentionMask: mask, timestep: [step, step] });
      // Guidance 4.5 on the ε channels and a plain Euler-like update: the timing does not depend on the update.
      const n = x.length;
      const next = new Float32Array(n);
      for (let c = 0; c < 4; c++) {
        for (let p = 0; p < 64 * 64; p++) {
          const i = c * 4096 + p;
          const u = out.data[c * 4096 + p];
          const cond = out.data[8 * 4096 + c * 4096 + p];
          next[i] = x[i] - 0.2 * (u + 4.5 * (cond - u));
        }
      }
      x = next;
    }
    return { ms: performance.now() - t, latents: x };
  };
  // Warm-up: sessions and memory arenas (one full and one reusing step for FORA).
  await denoise(exact, timesteps.slice(0, 1));
  await denoise(fora, timesteps.slice(0, 2));
  const times = { exact: [] as number[], fora: [] as number[] };
  const loads: string[] = [load()];
  let diff = 0;
  for (let r = 0; r < reps; r++) {
    const a = await denoise(exact);
    const b = await denoise(fora);
    times.exact.push(a.ms);
    times.fora.push(b.ms);
    diff = a.latents.reduce((m, v, i) => Math.max(m, Math.abs(v - b.latents[i])), 0);
    loads.push(load());
    console.log(`  rep ${r + 1}: exact ${(a.ms / 1000).toFixed(1)} s, FORA interval 2 ${(b.ms / 1000).toFixed(1)} s (load ${loads.at(-1)})`);
  }
  const [e, f] = [median(times.exact), median(times.fora)];
  console.log(`512 px, 4 steps, CFG batch 2: exact ${(e / 1000).toFixed(1)} s, FORA interval 2 ${(f / 1000).toFixed(1)} s (median of ${reps}), ratio ${(f / e).toFixed(2)}; final latents max |Δ| ${diff.toExponential(2)} ` +
    `(random weights: not a quality figure); load average ${loads.join(" → ")}`);
  console.log(`FORA cache held between steps: ${(fora.stepCacheBytes / 2 ** 20).toFixed(0)} MiB`);
  await exact.release();
  await fora.release();
}

async function main(): Promise<void> {
  const reps = Number(arg("--reps") ?? 2);
  console.log(`fast-options bench, ${new Date().toISOString()}, ${os.cpus().length} logical CPUs, load average ${load()}`);
  if (!process.argv.includes("--skip-tiny")) await tiny(reps);
  const full = arg("--fullsize");
  if (full) await fullsize(full, reps);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
