/**
 * Short faces: the pipeline, a scheduler, a model and a tensor print in at most 15 lines with what matters (components
 * loaded or not, dtype and size, scheduler class and key options; dims, dtype, min/max/mean); an array of images is
 * one HTML + PNG + text bundle (a grid with captions); inspect() gives the full dump.
 */
import * as assert from "assert";
import * as path from "path";
import { inspect as utilInspect } from "util";
import { createCanvas, loadImage } from "canvas";
import { faceBundle, imageGridBundle, inspect } from "../../src/display/faces";
import { toMimeBundle } from "../../src/display/display";
import { PixArtImage } from "../../src/pipeline/image";
import { PixArtSigmaPipeline } from "../../src/pipeline/pixart-sigma";
import { fixturesDir } from "../helpers/paths";

const lines = (s: string): string[] => s.split("\n");

describe("short faces", function () {
  let pipe: PixArtSigmaPipeline;
  before(async () => {
    pipe = await PixArtSigmaPipeline.fromPretrained(path.join(fixturesDir, "tiny-square", "pipeline"));
  });
  after(async () => {
    await pipe?.dispose();
  });

  it("shows the pipeline's components, scheduler and size in at most 15 lines", async () => {
    const face = utilInspect(pipe);
    assert.ok(lines(face).length <= 15, face);
    assert.match(face, /^PixArtSigmaPipeline from .*tiny-square/);
    assert.match(face, /tokenizer +T5Tokenizer/);
    assert.match(face, /textEncoder +T5EncoderModel · cpu · F32 · [\d.]+ KiB/);
    assert.match(face, /transformer +PixArtTransformer2DModel · cpu · F32/);
    assert.match(face, /scheduler +DPMSolverMultistepScheduler \(solver_order 2, algorithm_type dpmsolver\+\+, prediction_type epsilon/);
    assert.match(face, /image size +64×64/);
    delete pipe.textEncoder;
    await pipe.flush();
    assert.match(utilInspect(pipe), /textEncoder +— not loaded/);
    await pipe.load("textEncoder");
  });

  it("shows the last run, finished or stopped", async () => {
    await pipe.call({ prompt: "a fox", numInferenceSteps: 2, useResolutionBinning: false, outputType: "latent" });
    assert.match(utilInspect(pipe), /last run +2 of 2 steps, finished/);
  });

  it("shows a scheduler's class, key options and timesteps", () => {
    const face = utilInspect(pipe.scheduler);
    assert.ok(lines(face).length <= 15, face);
    assert.strictEqual(lines(face)[0], "DPMSolverMultistepScheduler");
    assert.match(face, /num_train_timesteps 1000 · beta_schedule linear/);
    assert.match(face, /solver_order 2/);
    pipe.scheduler.setTimesteps(20);
    assert.match(utilInspect(pipe.scheduler), /timesteps \[999, 949, 899, …, \d+, \d+, \d+\] \(20\)/);
  });

  it("shows a model's device, weights by dtype and config", () => {
    const face = utilInspect(pipe.transformer);
    assert.ok(lines(face).length <= 15, face);
    assert.match(lines(face)[0]!, /^PixArtTransformer2DModel on cpu · weights [\d.]+ KiB \(F32 [\d.]+ KiB\)$/);
    assert.match(face, /numLayers 2/);
  });

  it("shows a tensor as dims, dtype and min/max/mean", () => {
    const t = { data: new Float32Array([1, -2, 3, 6]), dims: [2, 2] };
    assert.deepStrictEqual(toMimeBundle(t), { "text/plain": "Tensor [2, 2] float32 · min -2 · max 6 · mean 2" });
    const big = { data: new Float32Array(4 * 64 * 64).fill(0.5), dims: [1, 4, 64, 64] };
    assert.strictEqual((faceBundle(big) as { "text/plain": string })["text/plain"], "Tensor [1, 4, 64, 64] float32 · min 0.5 · max 0.5 · mean 0.5");
    assert.strictEqual(faceBundle({ data: new Float32Array(3), dims: [2, 2] }), undefined, "dims that do not match the data are no tensor");
  });

  it("shows an array of images as one grid bundle with captions", async () => {
    const red = new PixArtImage(4, 3, new Uint8Array(36).fill(0).map((_, i) => (i % 3 === 0 ? 255 : 0)));
    const blue = new PixArtImage(4, 3, new Uint8Array(36).fill(0).map((_, i) => (i % 3 === 2 ? 255 : 0)));
    const bundle = toMimeBundle([red, blue, red]) as Record<string, string>;
    assert.deepStrictEqual(Object.keys(bundle).sort(), ["image/png", "text/html", "text/plain"]);
    assert.strictEqual(bundle["text/plain"], "3 images: [0] 4×3, [1] 4×3, [2] 4×3");
    assert.strictEqual((bundle["text/html"]!.match(/<img /g) ?? []).length, 3);
    assert.match(bundle["text/html"]!, /<figcaption[^>]*>\[1\] 4×3<\/figcaption>/);
    const png = await loadImage(Buffer.from(bundle["image/png"]!, "base64"));
    assert.deepStrictEqual([png.width, png.height], [3 * 4 + 2 * 8, 3], "three cells in a row with 8 px gaps");
    const ctx = createCanvas(png.width, png.height).getContext("2d");
    ctx.drawImage(png, 0, 0);
    assert.deepStrictEqual([...ctx.getImageData(12, 1, 1, 1).data], [0, 0, 255, 255], "the second image starts after the gap");
    assert.deepStrictEqual([...ctx.getImageData(5, 1, 1, 1).data], [255, 255, 255, 255], "the gap is white");
    assert.deepStrictEqual(Object.keys(imageGridBundle([red])), ["text/html", "image/png", "text/plain"]);
  });

  it("keeps the full dump one call away", () => {
    const full = utilInspect(inspect(pipe.scheduler, 2));
    assert.ok(lines(full).length > 15, "the full dump is long");
    assert.match(full, /dynamic_thresholding_ratio/);
    assert.ok(lines(utilInspect(inspect(pipe))).length > 15);
  });
});
