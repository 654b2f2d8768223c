/**
 * FORA step caching (src/models/pixart-transformer-2d-cache.ts) on the trained tiny shapes checkpoint, against the
 * same algorithm written on diffusers' transformer (tools/shapes/fora.py → test/fixtures/shapes-fora).
 */
import * as assert from "assert";
import * as path from "path";
import { readDefaults } from "../../src/cli/defaults";
import type { Tensor } from "../../src/models/model";
import { CacheOptionError } from "../../src/models/pixart-transformer-2d-cache";
import { PipelineArgumentError, PixArtSigmaPipeline } from "../../src/pipeline/pixart-sigma";
import { fixturesDir } from "../helpers/paths";
import { describeDifference, loadReference, maxAbsDifference, referenceJson } from "../helpers/reference";

const dir = path.join(fixturesDir, "shapes-fora");
interface ForaReference {
  call: { prompts: string[]; num_inference_steps: number; guidance_scale: number; seed: number; max_sequence_length: number };
}
/**
 * Final latents vs diffusers' (values up to ~3). Measured: 1.7e-6 without a cache, 2.2e-6 and 2.5e-6 with intervals
 * 2 and 3; a reuse bug moves them by 0.05 or more (the cached latents are 0.30 and 0.54 from the exact ones).
 */
const LATENT_MAX_ABS = 1e-5;

describe("FORA step caching on the tiny shapes checkpoint vs the same algorithm on diffusers' transformer", function () {
  this.timeout(600_000);
  const info = referenceJson(dir) as unknown as ForaReference;
  let pipe: PixArtSigmaPipeline;
  let ref: Awaited<ReturnType<typeof loadReference>>;
  let exact: Tensor;
  const latents = async (): Promise<Tensor> => {
    const { call } = info;
    const out = await pipe.call({
      prompt: call.prompts, negativePrompt: "", numInferenceSteps: call.num_inference_steps, guidanceScale: call.guidance_scale,
      seed: call.seed, maxSequenceLength: call.max_sequence_length, useResolutionBinning: false, cleanCaption: false, outputType: "latent",
    });
    return out.latents;
  };
  const near = async (actual: Tensor, name: string, tolerance: number): Promise<number> => {
    const expected = await ref(name);
    assert.deepStrictEqual([...actual.dims], expected.dims);
    const d = maxAbsDifference(actual.data, expected.data as Float32Array);
    assert.ok(d.maxAbs <= tolerance, `${name}: ${describeDifference(d, expected.dims)}`);
    console.log(`      ${name}: max |ours − diffusers| ${d.maxAbs.toExponential(2)}`);
    return d.maxAbs;
  };

  before(async () => {
    pipe = await PixArtSigmaPipeline.fromPretrained((await readDefaults()).model, { progress: false });
    ref = await loadReference(dir);
    exact = await latents();
  });
  after(async () => { await pipe?.dispose(); });
  afterEach(async () => { await pipe.transformer!.disableCache(); });

  it("without a cache: diffusers' latents (the reference's own baseline)", async () => {
    await near(exact, "latents.exact", LATENT_MAX_ABS);
  });

  it("interval 1 (every step a full one, through the save variant of the graph): the uncached latents within 1e-6", async () => {
    pipe.transformer!.enableCache({ method: "fora", interval: 1 });
    const d = maxAbsDifference((await latents()).data, exact.data);
    assert.ok(d.maxAbs <= 1e-6, describeDifference(d, exact.dims));
  });

  for (const interval of [2, 3]) {
    it(`interval ${interval}: diffusers' FORA latents, finite and measurably different from the exact ones`, async () => {
      pipe.transformer!.enableCache({ method: "fora", interval });
      const cached = await latents();
      assert.ok(cached.data.every(Number.isFinite));
      await near(cached, `latents.fora${interval}`, LATENT_MAX_ABS);
      const fromExact = maxAbsDifference(cached.data, exact.data).maxAbs;
      assert.ok(fromExact > 0.05, `only ${fromExact} from the exact latents: the cached outputs were not reused`);
      // The pipeline resets the cache at the start of every call: a second call draws the same latents.
      const again = maxAbsDifference((await latents()).data, cached.data);
      assert.ok(again.maxAbs === 0, describeDifference(again, cached.dims));
      assert.ok(pipe.transformer!.stepCacheBytes === 2 * 2 * 6 * 16 * 128 * 4, `cache holds ${pipe.transformer!.stepCacheBytes} bytes`);
    });
  }

  it("a reusing step fed a full step's outputs for the same inputs gives that full step's output (within 1e-6)", async () => {
    const transformer = pipe.transformer!;
    const { promptEmbeds, promptAttentionMask } = await pipe.encodePrompt(info.call.prompts, { doClassifierFreeGuidance: false });
    const hiddenStates = { data: Float32Array.from({ length: 3 * 4 * 16 * 16 }, (_, i) => Math.sin(i)), dims: [3, 4, 16, 16] };
    const input = { hiddenStates, encoderHiddenStates: promptEmbeds, encoderAttentionMask: promptAttentionMask, timestep: [500, 500, 500] };
    const uncached = await transformer.forward(input);
    transformer.enableCache({ method: "fora", interval: 2 });
    const full = await transformer.forward(input);
    const reused = await transformer.forward(input);
    for (const [what, t] of [["full", full], ["reusing", reused]] as const) {
      const d = maxAbsDifference(t.data, uncached.data);
      assert.ok(d.maxAbs <= 1e-6, `${what} step: ${describeDifference(d, uncached.dims)}`);
    }
    // At another timestep the reusing step differs from a full one (its gates change, attn1/ff do not).
    const later = { ...input, timestep: [400, 400, 400] };
    const reusedLater = await transformer.forward(later); // step 2: full
    const reusedLater2 = await transformer.forward({ ...input, timestep: [300, 300, 300] }); // step 3: reuses step 2's
    await transformer.disableCache();
    const exactLater2 = await transformer.forward({ ...input, timestep: [300, 300, 300] });
    assert.ok(maxAbsDifference(reusedLater.data, (await transformer.forward(later)).data).maxAbs <= 1e-6);
    assert.ok(maxAbsDifference(reusedLater2.data, exactLater2.data).maxAbs > 1e-4, "a reusing step at a new timestep equals the exact one");
  });

  it("refuses bad configs and combinations, naming the option", async () => {
    const transformer = pipe.transformer!;
    for (const bad of [{ method: "fora", interval: 0 }, { method: "fora", interval: 1.5 }, { method: "pab", interval: 2 }, null]) {
      assert.throws(() => transformer.enableCache(bad as never), (e: unknown) => e instanceof CacheOptionError && /config/.test(e.message));
    }
    transformer.enableCache({ method: "fora", interval: 2 });
    const call = { prompt: "a red circle", numInferenceSteps: 2, useResolutionBinning: false, outputType: "latent" as const };
    await assert.rejects(pipe.call({ ...call, attention: true }), (e: unknown) => e instanceof PipelineArgumentError && e.argument === "attention");
    await assert.rejects(pipe.call({ ...call, stepsPerRun: 2 }), (e: unknown) => e instanceof PipelineArgumentError && e.argument === "stepsPerRun");
  });
});
