import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { NotAPipelineError } from "../../src/io/errors";
import { PipelineArgumentError, PixArtSigmaPipeline } from "../../src/pipeline/pixart-sigma";
import { ResolutionBinningError } from "../../src/pipeline/resolution-binning";
import { ComponentMissingError, ComponentStateError } from "../../src/pipeline/components";
import { schedulerFromConfig } from "../../src/schedulers/scheduler";
import { UnknownSchedulerError } from "../../src/schedulers/errors";
import { fixturesDir } from "../helpers/paths";

const tiny = path.join(fixturesDir, "tiny-square", "pipeline");

function rejectsArgument(argument: string, pattern: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof PipelineArgumentError, `expected PipelineArgumentError, got ${String(e)}`);
    assert.strictEqual(e.argument, argument);
    assert.match(e.message, pattern);
    return true;
  };
}

describe("PixArtSigmaPipeline: bad input gets a clear, typed error", function () {
  this.timeout(60_000);
  let pipe: PixArtSigmaPipeline;
  before(async () => { pipe = await PixArtSigmaPipeline.fromPretrained(tiny); });
  after(async () => { await pipe.dispose(); });

  const embeds = (b: number, l: number, w = 32) => ({ data: new Float32Array(b * l * w), dims: [b, l, w] });
  const mask = (b: number, l: number) => ({ data: new BigInt64Array(b * l).fill(1n), dims: [b, l] });

  it("an empty prompt list", () => assert.rejects(pipe.call({ useResolutionBinning: false, prompt: [] }), rejectsArgument("prompt", /empty/)));
  it("no prompt at all", () => assert.rejects(pipe.call({ useResolutionBinning: false,}), rejectsArgument("prompt", /give a prompt/)));
  it("prompt and promptEmbeds both given", () =>
    assert.rejects(pipe.call({ useResolutionBinning: false, prompt: "a", promptEmbeds: embeds(1, 8), promptAttentionMask: mask(1, 8) }), rejectsArgument("prompt", /not both/)));
  it("promptEmbeds without a mask", () =>
    assert.rejects(pipe.call({ useResolutionBinning: false, promptEmbeds: embeds(1, 8) }), rejectsArgument("promptAttentionMask", /must be given/)));
  it("negativePromptEmbeds without a mask", () =>
    assert.rejects(pipe.call({ useResolutionBinning: false, promptEmbeds: embeds(1, 8), promptAttentionMask: mask(1, 8), negativePromptEmbeds: embeds(1, 8) }),
      rejectsArgument("negativePromptAttentionMask", /must be given/)));
  it("prompt and negative embeds with different shapes", () =>
    assert.rejects(pipe.call({ useResolutionBinning: false, promptEmbeds: embeds(1, 8), promptAttentionMask: mask(1, 8), negativePromptEmbeds: embeds(1, 6),
      negativePromptAttentionMask: mask(1, 6) }), rejectsArgument("negativePromptEmbeds", /\[1, 8, 32\]/)));
  it("a mask that does not match its embeddings", () =>
    assert.rejects(pipe.call({ useResolutionBinning: false, promptEmbeds: embeds(1, 8), promptAttentionMask: mask(1, 7) }), rejectsArgument("promptAttentionMask", /\[1, 8\]/)));
  it("embeddings of the wrong width for the transformer", () =>
    assert.rejects(pipe.call({ useResolutionBinning: false, promptEmbeds: embeds(1, 8, 5), promptAttentionMask: mask(1, 8) }), rejectsArgument("promptEmbeds", /32/)));
  for (const [h, w] of [[0, 64], [64, -8]]) {
    it(`height ${h} × width ${w}`, () =>
      assert.rejects(pipe.call({ prompt: "a", height: h, width: w, useResolutionBinning: false }), rejectsArgument(h <= 0 ? "height" : "width", /positive/)));
  }
  it("a height that is not a multiple of 8", () =>
    assert.rejects(pipe.call({ prompt: "a", height: 60, width: 64, useResolutionBinning: false }), rejectsArgument("height", /multiple of 16/)));
  it("an odd latent side (diffusers accepts 8 | 72 and then crashes in the scheduler)", () =>
    assert.rejects(pipe.call({ prompt: "a", height: 72, width: 64, useResolutionBinning: false }), rejectsArgument("height", /multiple of 16.*got 72/)));
  for (const steps of [0, -3, 2.5]) {
    it(`numInferenceSteps ${steps}`, () => assert.rejects(pipe.call({ useResolutionBinning: false, prompt: "a", numInferenceSteps: steps }), rejectsArgument("numInferenceSteps", /integer from 1 to 1000/)));
  }
  it("guidanceScale NaN", () => assert.rejects(pipe.call({ useResolutionBinning: false, prompt: "a", guidanceScale: NaN }), rejectsArgument("guidanceScale", /finite/)));
  it("a negative prompt list of the wrong length", () =>
    assert.rejects(pipe.call({ useResolutionBinning: false, prompt: ["a", "b"], negativePrompt: ["x"], numInferenceSteps: 1 }), rejectsArgument("negativePrompt", /1 entries but there are 2 prompts/)));
  it("latents of the wrong shape", () =>
    assert.rejects(pipe.call({ useResolutionBinning: false, prompt: "a", latents: { data: new Float32Array(16), dims: [1, 4, 2, 2] } }), rejectsArgument("latents", /\[1, 4, 8, 8\]/)));
  it("an unknown scheduler name", () =>
    assert.throws(() => schedulerFromConfig(pipe.scheduler.config, "FooScheduler"),
      (e: unknown) => e instanceof UnknownSchedulerError && /FooScheduler/.test(e.message) && /DPMSolverMultistepScheduler/.test(e.message)));
  it("resolution binning on a transformer whose sample size has no table (diffusers: \"Invalid sample size\")", () =>
    assert.rejects(pipe.call({ prompt: "a" }), (e: unknown) => e instanceof ResolutionBinningError && /sample_size 8/.test(e.message)));
  it("a model folder without model_index.json", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-nomodelindex-"));
    try {
      await assert.rejects(PixArtSigmaPipeline.fromPretrained(dir), (e: unknown) => e instanceof NotAPipelineError && e.message.includes(dir));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("PixArtSigmaPipeline: components you can delete and flush", function () {
  this.timeout(60_000);

  it("delete, =null and unload() remove a model; using it then says how to load it again; deleting twice is an error", async () => {
    const pipe = await PixArtSigmaPipeline.fromPretrained(tiny);
    try {
      assert.ok(pipe.transformer);
      delete pipe.transformer;
      assert.strictEqual(pipe.transformer, null);
      await assert.rejects(pipe.call({ useResolutionBinning: false, prompt: "a", numInferenceSteps: 1 }),
        (e: unknown) => e instanceof ComponentMissingError && /pipe\.load\("transformer"\)/.test(e.message));
      assert.throws(() => { delete pipe.transformer; },
        (e: unknown) => e instanceof ComponentStateError && /already removed/.test(e.message));
      pipe.textEncoder = null;
      assert.throws(() => pipe.unload("textEncoder"), ComponentStateError);
      await assert.rejects(pipe.encodePrompt("a"), (e: unknown) => e instanceof ComponentMissingError && /textEncoder/.test(e.message));
      const report = await pipe.flush();
      assert.deepStrictEqual(report.components.map((c) => [c.name, c.loaded]), [["textEncoder", false], ["transformer", false], ["vae", true]]);
      assert.deepStrictEqual(report.timeline.map((e) => e.kind).slice(-3), ["delete", "delete", "flush"]);
      await pipe.load("transformer");
      await pipe.load("textEncoder");
      const out = await pipe.call({ useResolutionBinning: false, prompt: "a", numInferenceSteps: 1, outputType: "latent" });
      assert.deepStrictEqual(out.latents!.dims, [1, 4, 8, 8]);
    } finally {
      await pipe.dispose();
    }
  });

  it("flush() and removing a model during a run are refused", async () => {
    const pipe = await PixArtSigmaPipeline.fromPretrained(tiny);
    try {
      let sawFlushError = false;
      let sawDeleteError = false;
      await pipe.call({ useResolutionBinning: false,
        prompt: "a", numInferenceSteps: 2, outputType: "latent",
        callbackOnStepEnd: async () => {
          await assert.rejects(pipe.flush(), (e: unknown) => e instanceof ComponentStateError && /while the pipeline is running/.test(e.message));
          sawFlushError = true;
          assert.throws(() => pipe.unload("vae"), ComponentStateError);
          sawDeleteError = true;
        },
      });
      assert.ok(sawFlushError && sawDeleteError);
      assert.ok(pipe.vae, "the VAE is still loaded");
    } finally {
      await pipe.dispose();
    }
  });

  it("a callback returning false stops the run early; an aborted signal stops it with the abort reason", async () => {
    const pipe = await PixArtSigmaPipeline.fromPretrained(tiny);
    try {
      const out = await pipe.call({ useResolutionBinning: false, prompt: "a", numInferenceSteps: 5, outputType: "latent", callbackOnStepEnd: ({ step }) => step < 1 });
      assert.strictEqual(out.stepsRun, 2);
      const controller = new AbortController();
      await assert.rejects(pipe.call({ useResolutionBinning: false, prompt: "a", numInferenceSteps: 5, signal: controller.signal,
        callbackOnStepEnd: () => { controller.abort(new Error("stop here")); } }), /stop here/);
    } finally {
      await pipe.dispose();
    }
  });
});

describe("PixArtSigmaPipeline: clean_caption", function () {
  this.timeout(60_000);
  let pipe: PixArtSigmaPipeline;
  before(async () => { pipe = await PixArtSigmaPipeline.fromPretrained(tiny); });
  after(async () => { await pipe.dispose(); });
  const run = (prompt: string, cleanCaption?: boolean) =>
    pipe.call({ prompt, numInferenceSteps: 1, outputType: "latent", useResolutionBinning: false, seed: 0, guidanceScale: 1,
      ...(cleanCaption === undefined ? {} : { cleanCaption }) });

  it("call() cleans captions by default, as diffusers' __call__ does (\"a,b\" reads as \"a, b\")", async () => {
    const byDefault = await run("A cat,on a mat");
    const cleaned = await run("a cat, on a mat", false);
    const raw = await run("A cat,on a mat", false);
    assert.deepStrictEqual(Array.from(byDefault.latents!.data), Array.from(cleaned.latents!.data));
    assert.notDeepStrictEqual(Array.from(byDefault.latents!.data), Array.from(raw.latents!.data));
  });

  it("falls back to lowercasing with a warning when the default cleaning meets markup it cannot port; throws when asked for", async () => {
    const warnings: string[] = [];
    const warn = console.warn;
    console.warn = (m: string) => { warnings.push(m); };
    try {
      const fallback = await run("a <b>bold</b> cat");
      assert.match(warnings.join("\n"), /clean_caption skipped/);
      assert.deepStrictEqual(Array.from(fallback.latents!.data), Array.from((await run("a <b>bold</b> cat", false)).latents!.data));
    } finally {
      console.warn = warn;
    }
    await assert.rejects(run("a <b>bold</b> cat", true), (e: unknown) => e instanceof Error && e.name === "CleanCaptionUnsupportedError");
  });
});
