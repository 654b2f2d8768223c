import * as assert from "assert";
import { PixArtSigmaPipeline, type CallOptions } from "../../src/pipeline/pixart-sigma";
import type { Tensor } from "../../src/models/model";
import { describeDifference, loadReference, maxAbsDifference, referenceJson, tinyConfigs, type RefTensor } from "../helpers/reference";

interface RecordedCall {
  prompt: string | string[];
  negative_prompt: string | string[];
  num_inference_steps: number | null;
  timesteps: number[] | null;
  guidance_scale: number;
  height: number | null;
  width: number | null;
  use_resolution_binning: boolean;
  num_images_per_prompt: number;
  max_sequence_length: number;
  clean_caption: boolean;
  seed: number;
}

/** The diffusers call recorded in reference.json, as our call options. */
export function callOptions(c: RecordedCall): CallOptions {
  return {
    prompt: c.prompt,
    negativePrompt: c.negative_prompt,
    numInferenceSteps: c.num_inference_steps ?? undefined,
    timesteps: c.timesteps ?? undefined,
    guidanceScale: c.guidance_scale,
    height: c.height ?? undefined,
    width: c.width ?? undefined,
    useResolutionBinning: c.use_resolution_binning,
    numImagesPerPrompt: c.num_images_per_prompt,
    maxSequenceLength: c.max_sequence_length,
    cleanCaption: c.clean_caption,
    seed: c.seed,
  };
}

function tolerance(config: string, key: string): number {
  const t = (referenceJson(config) as { tolerances: Record<string, { max_abs: number }> }).tolerances[key];
  assert.ok(t, `reference.json has no tolerance for ${key}`);
  return t.max_abs;
}

function assertClose(name: string, actual: Tensor | { data: ArrayLike<number>; dims: readonly number[] }, expected: RefTensor, tol: number): void {
  assert.deepStrictEqual([...actual.dims], expected.dims, `${name}: shape`);
  const d = maxAbsDifference(actual.data, expected.data as Float32Array);
  assert.ok(d.maxAbs <= tol, `${name}: ${describeDifference(d, expected.dims)} > ${tol}`);
}

describe("parity: PixArtSigmaPipeline end to end vs diffusers", function () {
  this.timeout(300_000);
  for (const config of tinyConfigs()) {
    const call = (referenceJson(config.dir) as { pipeline: { call: RecordedCall } }).pipeline.call;
    describe(config.name, () => {
      let pipe: PixArtSigmaPipeline;
      before(async () => { pipe = await PixArtSigmaPipeline.fromPretrained(config.pipeline); });
      after(async () => { await pipe.dispose(); });

      it("encodePrompt gives diffusers' embeddings and masks", async () => {
        const ref = await loadReference(config.dir);
        const cfg = call.guidance_scale > 1;
        const enc = await pipe.encodePrompt(call.prompt, {
          doClassifierFreeGuidance: cfg, negativePrompt: call.negative_prompt, numImagesPerPrompt: call.num_images_per_prompt,
          maxSequenceLength: call.max_sequence_length, cleanCaption: call.clean_caption,
        });
        assertClose("prompt_embeds", enc.promptEmbeds, await ref("pipeline.prompt_embeds"), tolerance(config.dir, "pipeline.prompt_embeds"));
        assert.deepStrictEqual(Array.from(enc.promptAttentionMask.data), Array.from((await ref("pipeline.prompt_attention_mask")).data as BigInt64Array));
        if (cfg) {
          assertClose("negative_prompt_embeds", enc.negativePromptEmbeds!, await ref("pipeline.negative_prompt_embeds"),
            tolerance(config.dir, "pipeline.negative_prompt_embeds"));
          assert.deepStrictEqual(Array.from(enc.negativePromptAttentionMask!.data),
            Array.from((await ref("pipeline.negative_prompt_attention_mask")).data as BigInt64Array));
        } else {
          assert.strictEqual(enc.negativePromptEmbeds, undefined);
        }
      });

      it("draws torch's initial noise and follows diffusers step by step to the same latents", async () => {
        const ref = await loadReference(config.dir);
        const steps: Float32Array[] = [];
        const out = await pipe.call({ ...callOptions(call), outputType: "latent",
          callbackOnStepEnd: ({ latents }) => { steps.push(Float32Array.from(latents.data)); } });
        const expectedSteps = await ref("pipeline.latents_steps");
        const tol = tolerance(config.dir, "pipeline.latents_steps");
        const per = expectedSteps.data.length / steps.length;
        assert.strictEqual(steps.length, expectedSteps.dims[0], "number of steps");
        steps.forEach((s, i) => {
          const d = maxAbsDifference(s, (expectedSteps.data as Float32Array).subarray(i * per, (i + 1) * per));
          assert.ok(d.maxAbs <= tol, `step ${i}: ${describeDifference(d, expectedSteps.dims.slice(1))} > ${tol}`);
        });
        assertClose("latents_final", out.latents!, await ref("pipeline.latents_final"), tolerance(config.dir, "pipeline.latents_final"));
      });

      it("produces diffusers' image within 1/255 per channel", async () => {
        const ref = await loadReference(config.dir);
        const out = await pipe.call({ ...callOptions(call), outputType: "tensor" });
        assertClose("image", out.tensor!, await ref("pipeline.image"), tolerance(config.dir, "pipeline.image"));
      });
    });
  }
});
