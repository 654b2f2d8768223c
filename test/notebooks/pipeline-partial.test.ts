/**
 * What a notebook user keeps when a long pipeline call is interrupted, and where tracebacks point: an interrupted
 * 500-step call leaves the finished steps' latents on pipe.lastRun (decodable), the interrupt's traceback names the
 * cell line that awaited the call and the library line (src/*.ts) where it stopped, and an error thrown inside the
 * library is shown at its src/*.ts line too. The pipeline's face is short, and an array of images is one grid output.
 */
import * as assert from "assert";
import * as path from "path";
import { fixturesDir } from "../helpers/paths";
import { buildRoot, KernelClient, ofType } from "../kernel/kernel-client";

const plain = (lines: unknown): string => (lines as string[]).join("\n").replace(/\x1b\[[0-9;]*m/g, "");

describe("kernel: partial results and tracebacks of pipeline calls", function () {
  this.timeout(180_000);
  let kc: KernelClient;
  before(async () => {
    kc = await KernelClient.start();
  });
  after(async () => {
    await kc?.close();
  });

  const value = async (code: string): Promise<string> => {
    const { reply, outputs } = await kc.execute(code, {}, 60000);
    assert.strictEqual(reply.content["status"], "ok", `${code}: ${String(reply.content["evalue"])}`);
    return String((ofType(outputs, "execute_result")[0]!.content["data"] as Record<string, unknown>)["text/plain"]);
  };

  it("keeps the latents of the finished steps of an interrupted 500-step call, with cell and library frames", async () => {
    const setup = [
      `import { PixArtSigmaPipeline } from ${JSON.stringify(path.join(buildRoot, "src", "index"))};`,
      `const pipe = await PixArtSigmaPipeline.fromPretrained(${JSON.stringify(path.join(fixturesDir, "tiny-square", "pipeline"))});`,
      "let steps = 0;",
    ].join("\n");
    assert.strictEqual((await kc.execute(setup, {}, 60000)).reply.content["status"], "ok");

    const run = "const prompt = 'a cat'\nconst out = await pipe.call({ prompt, numInferenceSteps: 500, useResolutionBinning: false, outputType: 'latent',\n" +
      "  callbackOnStepEnd: ({ step }) => { steps = step + 1; if (step === 0) console.log('running'); } });";
    const id = await kc.send("shell", "execute_request", { code: run, silent: false, stop_on_error: true });
    await kc.waitForIopub((m) => m.parent_header.msg_id === id && m.header.msg_type === "stream");
    await kc.request("control", "interrupt_request", {});
    const reply = await kc.reply(id, 30000);
    assert.strictEqual(reply.content["ename"], "InterruptedError");
    const traceback = plain(reply.content["traceback"]);
    const count = Number(reply.content["execution_count"]);
    assert.match(traceback, new RegExp(`cell \\[${count}\\], line 2:\\d+`), traceback);
    assert.match(traceback, /src\/pipeline\/pixart-sigma\.ts:\d+:\d+/, traceback);
    assert.doesNotMatch(traceback, /Worker\.emit|node:internal|kernel\/src\//, traceback);

    const stopped = Number(await value("steps"));
    assert.ok(stopped > 0 && stopped < 500, `stopped after ${stopped} steps`);
    assert.strictEqual(await value("[pipe.lastRun!.stepsRun, pipe.lastRun!.finished, pipe.lastRun!.latents.dims.length]"), `[ ${stopped}, false, 4 ]`);
    // What ran before the interrupt stays defined (the const on line 1).
    assert.strictEqual(await value("prompt"), "'a cat'");
    assert.strictEqual(await value("(await pipe.decodeLatents(pipe.lastRun!.latents)).length"), "1");
  });

  it("shows the pipeline's short face, and an array of images as one grid output", async () => {
    const face = await value("pipe");
    assert.ok(face.split("\n").length <= 15, face);
    assert.match(face, /^PixArtSigmaPipeline from /);
    const { outputs } = await kc.execute("(await pipe.call({ prompt: 'a fox', numInferenceSteps: 1, numImagesPerPrompt: 3, useResolutionBinning: false })).images", {}, 60000);
    const results = ofType(outputs, "execute_result");
    assert.strictEqual(results.length, 1);
    const data = results[0]!.content["data"] as Record<string, string>;
    assert.deepStrictEqual(Object.keys(data).sort(), ["image/png", "text/html", "text/plain"]);
    assert.strictEqual(data["text/plain"], "3 images: [0] 64×64, [1] 64×64, [2] 64×64");
    assert.strictEqual((data["text/html"]!.match(/<figure/g) ?? []).length, 3);
  });

  it("shows an error thrown inside the library at its src/*.ts line, under the cell line that called it", async () => {
    const { reply } = await kc.execute("const n = -1\nawait pipe.call({ prompt: 'x', numInferenceSteps: n })", {}, 60000);
    assert.strictEqual(reply.content["status"], "error");
    const traceback = plain(reply.content["traceback"]);
    const count = Number(reply.content["execution_count"]);
    assert.match(traceback, /at .*\(.*src\/pipeline\/[\w-]+\.ts:\d+:\d+\)/, traceback);
    assert.doesNotMatch(traceback, /dist\/src\/.*\.js|Proxy\./, traceback);
    assert.match(traceback, new RegExp(`cell \\[${count}\\], line 2:\\d+`), traceback);
  });
});
