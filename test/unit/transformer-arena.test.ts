/**
 * The transformer's memory arena: repeated steps stop page-faulting their activations in, and release() still
 * gives the arena's memory back to the OS.
 */
import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { formatBytes, processMemory } from "../../src/memory/probes";
import { PixArtTransformer2DModel } from "../../src/models/pixart-transformer-2d";
import { writeTransformerPipeline } from "../helpers/synthetic-checkpoint";

describe("transformer memory arena", function () {
  this.timeout(600_000);
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

  /** Minor page faults of the third call (the first two settle the allocator and the arena). */
  async function faultsPerStep(model: PixArtTransformer2DModel): Promise<number> {
    await model.forward(input(0));
    await model.forward(input(1));
    const before = process.resourceUsage().minorPageFault;
    await model.forward(input(2));
    return process.resourceUsage().minorPageFault - before;
  }

  it("steps run without page-faulting their activations in again (against memoryArena: false), same output", async () => {
    const transformer = path.join(dir, "transformer");
    const withArena = await PixArtTransformer2DModel.fromPretrained(transformer, { inProcess: true });
    const without = await PixArtTransformer2DModel.fromPretrained(transformer, { inProcess: true, memoryArena: false });
    try {
      const [a, b] = [await faultsPerStep(withArena), await faultsPerStep(without)];
      // 38 MB of feed-forward activations alone are ~9,000 pages.
      assert.ok(b > 5000, `without the arena a step page-faults ${b} times`);
      assert.ok(a < b / 4, `with the arena ${a} page faults per step, without ${b}`);
      const [x, y] = [await withArena.forward(input(3)), await without.forward(input(3))];
      assert.deepStrictEqual(x.data, y.data);
    } finally {
      await withArena.release();
      await without.release();
    }
  });

  it("release() returns the arena to the OS (measured in a fresh process, so no freed memory of earlier tests is reused)", () => {
    const script = `
      const { PixArtTransformer2DModel } = require(${JSON.stringify(require.resolve("../../src/models/pixart-transformer-2d"))});
      const { processMemory } = require(${JSON.stringify(require.resolve("../../src/memory/probes"))});
      (async () => {
        const input = ${input.toString()};
        const latent = ${latent};
        const start = processMemory().rssAnon;
        const model = await PixArtTransformer2DModel.fromPretrained(${JSON.stringify(path.join(dir, "transformer"))}, { inProcess: true });
        await model.forward(input(0));
        await model.forward(input(1));
        const held = processMemory().rssAnon - start;
        await model.release();
        global.gc();
        console.log(JSON.stringify({ held, left: processMemory().rssAnon - start }));
      })();`;
    const out = execFileSync(process.execPath, ["--expose-gc", "-e", script], { encoding: "utf8" });
    const { held, left } = JSON.parse(out.trim().split("\n").pop()!) as { held: number; left: number };
    assert.ok(held > 40e6, `the arena holds ${formatBytes(held)} after two steps`);
    assert.ok(left < 0.25 * held, `after release ${formatBytes(left)} of ${formatBytes(held)} is still held`);
  });
});
