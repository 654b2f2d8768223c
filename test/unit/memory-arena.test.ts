/**
 * onnxruntime's CPU memory arena in the transformer and the VAE: repeated runs stop page-faulting their activations
 * in (against `memoryArena: false`, same output), and release() still gives the arena's memory back to the OS.
 */
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { formatBytes } from "../../src/memory/probes";
import { AutoencoderKL } from "../../src/models/autoencoder-kl";
import { PixArtTransformer2DModel } from "../../src/models/pixart-transformer-2d";
import { fixturesDir } from "../helpers/paths";
import { writeTransformerPipeline } from "../helpers/synthetic-checkpoint";

/** Minor page faults of the third call (the first two settle the allocator and the arena). */
async function faultsOfThirdCall(call: (seed: number) => Promise<unknown>): Promise<number> {
  await call(0);
  await call(1);
  const before = process.resourceUsage().minorPageFault;
  await call(2);
  return process.resourceUsage().minorPageFault - before;
}

/**
 * Anonymous memory held after two calls and left after release(), in a fresh process (so that no freed memory of
 * earlier tests is reused). `script` defines `load()` → model and `call(model, seed)`, and may use `src(module)`.
 */
function heldAndLeft(script: string): { held: number; left: number } {
  const src = (m: string) => require.resolve(`../../src/${m}`);
  const main = `
    const src = (m) => require({ ${["memory/probes", "models/autoencoder-kl", "models/pixart-transformer-2d"].map((m) => `${JSON.stringify(m)}: ${JSON.stringify(src(m))}`).join(", ")} }[m]);
    const { processMemory } = src("memory/probes");
    ${script}
    (async () => {
      // A first load, call and release first: what onnxruntime allocates once per process (about 50 MB, kept whether
      // or not a model uses an arena) is then in the baseline, and "left" is what this model did not give back.
      const warm = await load();
      await call(warm, 2);
      await warm.release();
      global.gc();
      const start = processMemory().rssAnon;
      const model = await load();
      await call(model, 0);
      await call(model, 1);
      const held = processMemory().rssAnon - start;
      await model.release();
      global.gc();
      console.log(JSON.stringify({ held, left: processMemory().rssAnon - start }));
    })();`;
  const out = execFileSync(process.execPath, ["--expose-gc", "-e", main], { encoding: "utf8" });
  return JSON.parse(out.trim().split("\n").pop()!) as { held: number; left: number };
}

/**
 * Loads a model with and without the arena, asserts the third call without it page-faults over `minFaults` times and
 * with it under a quarter of that, and that both give the same output.
 */
async function assertArenaSavesFaults<M extends { release(): Promise<void> }, T extends { data: unknown }>(
  load: (options: { memoryArena?: boolean }) => Promise<M>, call: (model: M, seed: number) => Promise<T>, minFaults: number, what: string,
): Promise<void> {
  const withArena = await load({});
  const without = await load({ memoryArena: false });
  try {
    const a = await faultsOfThirdCall((seed) => call(withArena, seed));
    const b = await faultsOfThirdCall((seed) => call(without, seed));
    assert.ok(b > minFaults, `without the arena a ${what} page-faults ${b} times`);
    assert.ok(a < b / 4, `with the arena ${a} page faults per ${what}, without ${b}`);
    const [x, y] = [await call(withArena, 3), await call(without, 3)];
    assert.deepStrictEqual(x.data, y.data);
  } finally {
    await withArena.release();
    await without.release();
  }
}

describe("memory arena", function () {
  this.timeout(600_000);

  describe("transformer", () => {
    let dir: string;
    before(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-arena-"));
      // One block of PixArt-Σ's width: at a 64×64 latent its feed-forward activations (2 × 1024 × 4608 floats, 38 MB)
      // are above glibc's largest mmap threshold, so without an arena they are mapped afresh on every run.
      await writeTransformerPipeline(dir, { layers: 1, heads: 16, headDim: 72, captionChannels: 64, sampleSize: 128 });
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    const latent = 64;
    const input = (seed: number) => {
      const len = 8;
      return {
        hiddenStates: { data: Float32Array.from({ length: 2 * 4 * latent * latent }, (_, i) => Math.sin(i + seed)), dims: [2, 4, latent, latent] },
        encoderHiddenStates: { data: Float32Array.from({ length: 2 * len * 64 }, (_, i) => Math.cos(i)), dims: [2, len, 64] },
        encoderAttentionMask: { data: new BigInt64Array(2 * len).fill(1n), dims: [2, len] },
        timestep: [500, 500],
      };
    };

    it("steps run without page-faulting their activations in again (against memoryArena: false), same output", async () => {
      const transformer = path.join(dir, "transformer");
      // 38 MB of feed-forward activations alone are ~9,000 pages.
      await assertArenaSavesFaults((o) => PixArtTransformer2DModel.fromPretrained(transformer, { inProcess: true, ...o }),
        (model, seed) => model.forward(input(seed)), 5000, "step");
    });

    it("release() returns the arena to the OS", () => {
      const { held, left } = heldAndLeft(`
        const input = ${input.toString()};
        const latent = ${latent};
        const load = () => src("models/pixart-transformer-2d").PixArtTransformer2DModel.fromPretrained(${JSON.stringify(path.join(dir, "transformer"))}, { inProcess: true });
        const call = (model, seed) => model.forward(input(seed));`);
      assert.ok(held > 40e6, `the arena holds ${formatBytes(held)} after two steps`);
      assert.ok(left < 0.25 * held, `after release ${formatBytes(left)} of ${formatBytes(held)} is still held`);
    });
  });

  describe("VAE", () => {
    // The tiny VAE (4 channels at full resolution) at 1536 px: its last block's activations (4 × 1536² floats, 38 MB
    // each) are above glibc's largest mmap threshold, so without an arena they are mapped afresh on every decode.
    // Without its mid-block attention, whose 36,864² scores would make each decode take seconds.
    let vaeDir: string;
    before(() => {
      const tiny = path.join(fixturesDir, "tiny-square", "pipeline", "vae");
      vaeDir = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-arena-vae-"));
      const config = JSON.parse(fs.readFileSync(path.join(tiny, "config.json"), "utf8")) as Record<string, unknown>;
      fs.writeFileSync(path.join(vaeDir, "config.json"), JSON.stringify({ ...config, mid_block_add_attention: false }));
      fs.copyFileSync(path.join(tiny, "diffusion_pytorch_model.safetensors"), path.join(vaeDir, "diffusion_pytorch_model.safetensors"));
    });
    after(() => fs.rmSync(vaeDir, { recursive: true, force: true }));
    const latent = 192;
    const z = (seed: number) => ({ data: Float32Array.from({ length: 4 * latent * latent }, (_, i) => Math.sin(i + seed)), dims: [1, 4, latent, latent] });

    it("decodes run without page-faulting their activations in again (against memoryArena: false), same output", async () => {
      // One 38 MB activation alone is ~9,000 pages, and the last block makes several.
      await assertArenaSavesFaults((o) => AutoencoderKL.fromPretrained(vaeDir, { inProcess: true, ...o }),
        (model, seed) => model.decodeRaw(z(seed)), 20000, "decode");
    });

    it("release() returns the arena to the OS", () => {
      const { held, left } = heldAndLeft(`
        const latent = ${latent};
        const z = ${z.toString()};
        const load = () => src("models/autoencoder-kl").AutoencoderKL.fromPretrained(${JSON.stringify(vaeDir)}, { inProcess: true });
        const call = (model, seed) => model.decodeRaw(z(seed));`);
      assert.ok(held > 100e6, `the arena holds ${formatBytes(held)} after two decodes`);
      assert.ok(left < 0.25 * held, `after release ${formatBytes(left)} of ${formatBytes(held)} is still held`);
    });
  });
});
