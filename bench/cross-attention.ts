/**
 * What recording cross-attention costs: the default transformer graph against its attention-map variant (every
 * block, conditional half of a CFG batch of 2), on a random-weight transformer of PixArt-Σ's width (16 heads × 72,
 * T5-XXL captions of 300 tokens) with fewer blocks. The default graph's bytes do not change with the feature, so its
 * speed cannot; this measures the extra MatMul/Softmax work on the recorded steps and the variant's first build.
 *
 * Run: npm run build && node --expose-gc dist/bench/cross-attention.js [--layers 2] [--latent 64] [--runs 3]
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { performance } from "perf_hooks";
import { PixArtTransformer2DModel } from "../src/models/pixart-transformer-2d";
import { writeTransformerPipeline } from "../test/helpers/synthetic-checkpoint";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

async function main(): Promise<void> {
  const [layers, latent, runs] = [arg("layers", 2), arg("latent", 64), arg("runs", 3)];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-attn-bench-"));
  try {
    await writeTransformerPipeline(dir, { layers, heads: 16, headDim: 72, captionChannels: 4096, sampleSize: 128 });
    const model = await PixArtTransformer2DModel.fromPretrained(path.join(dir, "transformer"));
    const [b, len] = [2, 300];
    const random = (n: number) => Float32Array.from({ length: n }, () => Math.random() * 2 - 1);
    const mask = new BigInt64Array(b * len);
    for (let r = 0; r < b; r++) for (let k = 0; k < (r === 0 ? 1 : 20); k++) mask[r * len + k] = 1n;
    const input = {
      hiddenStates: { data: random(b * 4 * latent * latent), dims: [b, 4, latent, latent] },
      encoderHiddenStates: { data: random(b * len * 4096), dims: [b, len, 4096] },
      encoderAttentionMask: { data: mask, dims: [b, len] },
      timestep: [500, 500],
    };
    const all = Array.from({ length: layers }, (_, i) => i);
    let t = performance.now();
    await model.forward(input);
    const firstDefault = performance.now() - t;
    t = performance.now();
    await model.forwardWithCrossAttention(input, { layers: all, rowStart: 1 });
    const firstVariant = performance.now() - t;
    const times = { default: [] as number[], variant: [] as number[] };
    for (let i = 0; i < runs; i++) {
      t = performance.now();
      await model.forward(input);
      times.default.push(performance.now() - t);
      t = performance.now();
      await model.forwardWithCrossAttention(input, { layers: all, rowStart: 1 });
      times.variant.push(performance.now() - t);
    }
    await model.release();
    const best = (xs: number[]) => Math.min(...xs);
    console.log(`transformer: ${layers} blocks, width 1152, latent ${latent}×${latent} (${(latent / 2) ** 2} patches), CFG batch 2, 300 text tokens`);
    console.log(`first call: default ${firstDefault.toFixed(0)} ms, variant ${firstVariant.toFixed(0)} ms (includes building its graph and session)`);
    console.log(`best of ${runs} (interleaved): default ${best(times.default).toFixed(0)} ms, variant ${best(times.variant).toFixed(0)} ms ` +
      `(+${((best(times.variant) / best(times.default) - 1) * 100).toFixed(1)}%)`);
    console.log(`load average: ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
