/**
 * The pipeline's progress events on the tiny checkpoint: every operation brackets its stages with begin/end, the
 * denoise stage reports each step with its latents, `progress: false` silences the kernel default, and a failing
 * listener never stops a run.
 */
import * as assert from "assert";
import * as path from "path";
import { PixArtSigmaPipeline } from "../../src/pipeline/pixart-sigma";
import { setDefaultProgress, type ProgressEvent, type StepEvent } from "../../src/runtime/progress";
import { fixturesDir } from "../helpers/paths";

const MODEL = path.join(fixturesDir, "tiny-square", "pipeline");
const small = { prompt: "a red fox", seed: 0, useResolutionBinning: false } as const;

function summary(events: ProgressEvent[]): string[] {
  return events.map((e) => (e.type === "step" ? `step ${e.step}/${e.totalSteps}` : e.type === "begin" || e.type === "end" ? `${e.type} ${e.operation}` : `${e.type} ${e.stage}: ${e.label}`));
}

describe("pipeline progress events", function () {
  this.timeout(120_000);
  let pipe: PixArtSigmaPipeline;
  const loadEvents: ProgressEvent[] = [];
  before(async () => {
    pipe = await PixArtSigmaPipeline.fromPretrained(MODEL, { progress: (e) => loadEvents.push(e) });
    pipe.progress = undefined;
  });
  after(async () => {
    setDefaultProgress(undefined);
    await pipe.dispose();
  });

  it("fromPretrained: one load stage per component, inside begin/end", () => {
    assert.deepStrictEqual(summary(loadEvents), [
      "begin fromPretrained",
      "stage-start load: load tokenizer", "stage-end load: load tokenizer",
      "stage-start load: load textEncoder", "stage-end load: load textEncoder",
      "stage-start load: load transformer", "stage-end load: load transformer",
      "stage-start load: load vae", "stage-end load: load vae",
      "end fromPretrained",
    ]);
  });

  it("call: encode stages, N steps with latents and timing, decode", async () => {
    const events: ProgressEvent[] = [];
    const out = await pipe.call({ ...small, numInferenceSteps: 3, progress: (e) => events.push(e) });
    assert.deepStrictEqual(summary(events), [
      "begin call",
      "stage-start encode: encode prompt", "stage-end encode: encode prompt",
      "stage-start encode: encode negative prompt", "stage-end encode: encode negative prompt",
      "stage-start denoise: denoise (3 steps)", "step 1/3", "step 2/3", "step 3/3", "stage-end denoise: denoise (3 steps)",
      "stage-start decode: decode", "stage-end decode: decode",
      "end call",
    ]);
    const steps = events.filter((e): e is StepEvent => e.type === "step");
    assert.deepStrictEqual(steps.map((s) => s.timestep), pipe.scheduler.timesteps);
    for (const s of steps) {
      assert.deepStrictEqual([...s.latents.dims], [1, 4, 8, 8].map((d, i) => (i === 1 ? pipe.transformer!.config.inChannels : i < 2 ? d : s.latents.dims[i])));
      assert.ok(s.itPerSec >= 0 && s.etaMs >= 0 && s.stageElapsedMs >= 0);
    }
    assert.strictEqual(steps[2].etaMs, 0);
    assert.ok(out.images?.length === 1);
  });

  it("the listener sees the same latents the run returns", async () => {
    let last: Float32Array | undefined;
    const out = await pipe.call({ ...small, numInferenceSteps: 2, outputType: "latent", progress: (e) => { if (e.type === "step") last = Float32Array.from(e.latents.data); } });
    assert.deepStrictEqual(last, out.latents!.data);
  });

  it("previewDecodeEvery: the VAE-decoded image on every n-th step event; a bad value is a typed error", async () => {
    const decoded: [number, number[]][] = [];
    await pipe.call({ ...small, numInferenceSteps: 5, outputType: "latent", previewDecodeEvery: 2,
      progress: (e) => { if (e.type === "step" && e.decoded) decoded.push([e.step, [...e.decoded.dims]]); } });
    assert.deepStrictEqual(decoded, [[2, [1, 64, 64, 3]], [4, [1, 64, 64, 3]]]);
    await assert.rejects(pipe.call({ ...small, previewDecodeEvery: 0 }), { name: "PipelineArgumentError", message: /previewDecodeEvery: must be an integer from 1/ });
  });

  it("encodePrompt, load and decodeLatents are operations of their own", async () => {
    const events: ProgressEvent[] = [];
    const progress = (e: ProgressEvent) => events.push(e);
    await pipe.encodePrompt("a cat", { progress });
    const { latents } = await pipe.call({ ...small, numInferenceSteps: 1, outputType: "latent", progress: false });
    await pipe.decodeLatents(latents!, { progress });
    delete pipe.vae;
    await pipe.load("vae", undefined, { progress });
    assert.deepStrictEqual(summary(events), [
      "begin encodePrompt", "stage-start encode: encode prompt", "stage-end encode: encode prompt", "stage-start encode: encode negative prompt",
      "stage-end encode: encode negative prompt", "end encodePrompt",
      "begin decodeLatents", "stage-start decode: decode", "stage-end decode: decode", "end decodeLatents",
      "begin load", "stage-start load: load vae", "stage-end load: load vae", "end load",
    ]);
  });

  it("the registered default gets one listener per operation; progress: false silences it", async () => {
    const made: string[] = [];
    const seen: ProgressEvent[] = [];
    setDefaultProgress((operation) => {
      made.push(operation);
      return (e) => seen.push(e);
    });
    await pipe.call({ ...small, numInferenceSteps: 2, outputType: "latent" });
    assert.deepStrictEqual(made, ["call"]);
    assert.strictEqual(seen.filter((e) => e.type === "step").length, 2);
    seen.length = 0;
    await pipe.call({ ...small, numInferenceSteps: 2, outputType: "latent", progress: false });
    pipe.progress = false;
    await pipe.encodePrompt("quiet");
    pipe.progress = undefined;
    assert.deepStrictEqual(made, ["call"]);
    assert.strictEqual(seen.length, 0);
  });

  it("a throwing listener is dropped with one warning; the run finishes", async () => {
    const warn = console.warn;
    const warnings: string[] = [];
    console.warn = (msg: string) => warnings.push(msg);
    let calls = 0;
    try {
      const out = await pipe.call({ ...small, numInferenceSteps: 2, outputType: "latent", progress: () => { calls++; throw new Error("boom"); } });
      assert.strictEqual(out.stepsRun, 2);
    } finally {
      console.warn = warn;
    }
    assert.strictEqual(calls, 1);
    assert.strictEqual(warnings.length, 1);
    assert.match(warnings[0], /progress display failed.*boom/);
  });

  it("a failing stage reports its error in stage-end and end", async () => {
    const events: ProgressEvent[] = [];
    const controller = new AbortController();
    controller.abort(new Error("stop here"));
    await assert.rejects(pipe.call({ ...small, numInferenceSteps: 2, signal: controller.signal, progress: (e) => events.push(e) }), /stop here/);
    const ends = events.filter((e) => e.type === "stage-end" || e.type === "end");
    assert.deepStrictEqual(ends.slice(-2).map((e) => [e.type, (e as { error?: string }).error]), [["stage-end", "stop here"], ["end", "stop here"]]);
  });
});
