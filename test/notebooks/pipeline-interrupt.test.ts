/**
 * Jupyter's interrupt stops a running pipeline between denoising steps: in our kernel the call's signal defaults
 * to the cell's, and the models run in worker threads, so the kernel hears the interrupt while a step runs.
 */
import * as assert from "assert";
import * as path from "path";
import { fixturesDir } from "../helpers/paths";
import { buildRoot, KernelClient, ofType } from "../kernel/kernel-client";

describe("kernel interrupt during a pipeline run", function () {
  this.timeout(180_000);
  let kc: KernelClient;
  before(async () => { kc = await KernelClient.start(); });
  after(async () => { await kc?.close(); });

  it("stops the denoising loop after the current step, and the pipeline is usable afterwards", async () => {
    const setup = [
      `import { PixArtSigmaPipeline } from ${JSON.stringify(path.join(buildRoot, "src", "index"))};`,
      `const pipe = await PixArtSigmaPipeline.fromPretrained(${JSON.stringify(path.join(fixturesDir, "tiny-square", "pipeline"))});`,
      "let steps = 0;",
    ].join("\n");
    assert.strictEqual((await kc.execute(setup, {}, 60000)).reply.content["status"], "ok");

    const run = "await pipe.call({ prompt: 'a cat', numInferenceSteps: 500, useResolutionBinning: false, outputType: 'latent',\n" +
      "  callbackOnStepEnd: ({ step }) => { steps = step + 1; if (step === 0) console.log('running'); } });";
    const id = await kc.send("shell", "execute_request", { code: run, silent: false, stop_on_error: true });
    await kc.waitForIopub((m) => m.parent_header.msg_id === id && m.header.msg_type === "stream");
    assert.deepStrictEqual((await kc.request("control", "interrupt_request", {})).content, { status: "ok" });
    const reply = await kc.reply(id, 30000);
    assert.strictEqual(reply.content["status"], "error");
    assert.strictEqual(reply.content["ename"], "InterruptedError");

    const stepsAt = async () => Number(ofType((await kc.execute("steps")).outputs, "execute_result")[0]!.content["data"]!["text/plain" as never]);
    const stopped = await stepsAt();
    assert.ok(stopped > 0 && stopped < 500, `stopped after ${stopped} steps`);
    await new Promise((r) => setTimeout(r, 500));
    assert.strictEqual(await stepsAt(), stopped, "steps kept running after the interrupt");

    const again = await kc.execute("(await pipe.call({ prompt: 'a cat', numInferenceSteps: 1, useResolutionBinning: false, outputType: 'latent' })).stepsRun");
    assert.deepStrictEqual(ofType(again.outputs, "execute_result")[0]!.content["data"], { "text/plain": "1" });
  });
});
