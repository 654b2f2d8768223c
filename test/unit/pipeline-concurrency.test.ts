import * as assert from "assert";
import * as path from "path";
import { PixArtSigmaPipeline, PipelineBusyError, type CallOptions, type ImageOutput } from "../../src";
import { fixturesDir } from "../helpers/paths";

const model = path.join(fixturesDir, "tiny-square", "pipeline");

/** Five different calls: prompts, seeds, step counts, CFG on and off, two images in one of them. */
const CALLS: CallOptions<"image">[] = [
  { prompt: "a red fox in the snow", seed: 1, numInferenceSteps: 3 },
  { prompt: "a lighthouse at night", seed: 2, numInferenceSteps: 2, guidanceScale: 1 },
  { prompt: "two cats on a sofa", seed: 3, numInferenceSteps: 4, numImagesPerPrompt: 2 },
  { prompt: "a bowl of ramen", seed: 4, numInferenceSteps: 3, negativePrompt: "blurry" },
  { prompt: "a mountain lake", seed: 5, numInferenceSteps: 5, guidanceScale: 7 },
].map((c) => ({ ...c, useResolutionBinning: false, cleanCaption: false }));

function pixels(out: ImageOutput): Buffer[] {
  return out.images.map((img) => Buffer.from(img.rgb));
}

describe("pipeline: one run at a time", function () {
  this.timeout(300_000);
  let pipe: PixArtSigmaPipeline;
  let alone: Buffer[][];
  before(async () => {
    pipe = await PixArtSigmaPipeline.fromPretrained(model);
    alone = [];
    for (const c of CALLS) alone.push(pixels(await pipe.call(c)));
  });
  after(async () => pipe?.dispose());

  it("5 concurrent call()s give each the image the same call gives alone", async () => {
    // Without the queue, the calls share the stateful scheduler and fail ("all N steps are done") or mix steps.
    const outs = await Promise.all(CALLS.map((c) => pipe.call(c)));
    for (const [i, out] of outs.entries()) {
      const got = pixels(out);
      assert.strictEqual(got.length, alone[i].length);
      for (const [k, px] of got.entries()) assert.ok(px.equals(alone[i][k]), `call ${i} image ${k} differs from the same call run alone`);
    }
    // The calls differ from each other, so equal images mean each call got its own run.
    assert.ok(!alone[0][0].equals(alone[1][0]));
  });

  it("encodePrompt and decodeLatents queue behind a call too", async () => {
    const [out, encoded, latentOut] = await Promise.all([
      pipe.call(CALLS[0]),
      pipe.encodePrompt("a red fox in the snow"),
      pipe.call({ ...CALLS[0], outputType: "latent" }),
    ]);
    const decoded = await Promise.all([pipe.decodeLatents(latentOut.latents), pipe.call(CALLS[1])]);
    assert.ok(pixels(out)[0].equals(alone[0][0]));
    assert.ok(Buffer.from(decoded[0][0].rgb).equals(alone[0][0]), "decoding call 0's latents gives call 0's image");
    assert.ok(pixels(decoded[1])[0].equals(alone[1][0]));
    assert.deepStrictEqual(encoded.promptEmbeds.dims.slice(0, 1), [1]);
  });

  it("wait: false rejects at once with PipelineBusyError while another run holds the pipeline", async () => {
    const running = pipe.call(CALLS[1]);
    await assert.rejects(pipe.call({ ...CALLS[0], wait: false }), (e: unknown) => {
      assert.ok(e instanceof PipelineBusyError);
      assert.match(e.message, /^call\(\): the pipeline is busy with call\(\) and wait: false was given/);
      return true;
    });
    await assert.rejects(pipe.encodePrompt("x", { wait: false }), PipelineBusyError);
    assert.ok(pixels(await running)[0].equals(alone[1][0]));
    // Idle again: wait: false runs.
    assert.ok(pixels(await pipe.call({ ...CALLS[1], wait: false }))[0].equals(alone[1][0]));
  });

  it("aborting a queued call takes it out of the queue; the others still run", async () => {
    const controller = new AbortController();
    const first = pipe.call(CALLS[1]);
    const queued = pipe.call({ ...CALLS[0], signal: controller.signal });
    const third = pipe.call(CALLS[3]);
    controller.abort(new Error("changed my mind"));
    await assert.rejects(queued, /changed my mind/);
    assert.ok(pixels(await first)[0].equals(alone[1][0]));
    assert.ok(pixels(await third)[0].equals(alone[3][0]));
  });

  it("dispose() waits for queued calls; await using disposes at the end of the scope", async () => {
    const other = await PixArtSigmaPipeline.fromPretrained(model);
    const run = other.call(CALLS[1]);
    await other.dispose();
    assert.ok(pixels(await run)[0].equals(alone[1][0]));
    assert.strictEqual(other.transformer, null);
    let scoped: PixArtSigmaPipeline | undefined;
    {
      await using p = await PixArtSigmaPipeline.fromPretrained(model, { textEncoder: null });
      scoped = p;
      assert.ok(p.transformer);
    }
    assert.strictEqual(scoped.transformer, null);
    assert.strictEqual(scoped.vae, null);
  });
});
