/**
 * Live progress on the kernel's message stream: a pipeline call in a cell shows one output (one display id) that
 * the stages and every denoising step update in place, ending in a latents payload with the step history;
 * `progress: false` shows nothing. Also the usage_request reply that jupyter-resource-usage's kernel panel reads.
 */
import * as assert from "assert";
import * as path from "path";
import { loadImage } from "canvas";
import { decodeArray } from "../../src/display/arrays";
import type { LatentsPayload } from "../../src/display/payloads";
import { assertValidPayload, LATENTS_MIME } from "../../src/display/schemas";
import { fixturesDir } from "../helpers/paths";
import { buildRoot, KernelClient } from "./kernel-client";
import type { Message } from "../../kernel/src/wire";

type Data = Record<string, unknown>;
const displays = (outputs: Message[]) => outputs.filter((m) => m.header.msg_type === "display_data" || m.header.msg_type === "update_display_data");
const dataOf = (m: Message) => m.content["data"] as Data;
const displayId = (m: Message) => (m.content["transient"] as { display_id?: string }).display_id;

async function assertPngDecodes(data: Data): Promise<{ width: number; height: number }> {
  const img = await loadImage(Buffer.from(String(data["image/png"]), "base64"));
  assert.ok(img.width > 0 && img.height > 0);
  return { width: img.width, height: img.height };
}

describe("kernel: live pipeline progress", function () {
  this.timeout(180_000);
  let kc: KernelClient;
  let loadOutputs: Message[];
  before(async () => {
    kc = await KernelClient.start();
    const setup = [
      `import { PixArtSigmaPipeline } from ${JSON.stringify(path.join(buildRoot, "src", "index"))};`,
      `const pipe = await PixArtSigmaPipeline.fromPretrained(${JSON.stringify(path.join(fixturesDir, "tiny-square", "pipeline"))});`,
    ].join("\n");
    const { reply, outputs } = await kc.execute(setup, {}, 60000);
    assert.strictEqual(reply.content["status"], "ok", JSON.stringify(reply.content));
    loadOutputs = outputs;
  });
  after(async () => { await kc?.close(); });

  it("fromPretrained: one output, updated per load stage, ending in a text summary", () => {
    const shown = displays(loadOutputs);
    assert.strictEqual(shown[0].header.msg_type, "display_data");
    assert.ok(shown.slice(1).every((m) => m.header.msg_type === "update_display_data"));
    assert.strictEqual(new Set(shown.map(displayId)).size, 1);
    const texts = shown.map((m) => String(dataOf(m)["text/plain"]));
    for (const c of ["tokenizer", "textEncoder", "transformer", "vae"]) assert.ok(texts.some((t) => t.includes(`load ${c}`)), `no update names load ${c}`);
    assert.match(texts[texts.length - 1], /^fromPretrained done in [\d.:]+( s)?\n  ✓ load tokenizer/);
  });

  it("an N-step call: one display id, N preview updates plus stage updates, a final latents payload", async () => {
    const N = 4;
    const { reply, outputs } = await kc.execute(`const out = await pipe.call({ prompt: "a red fox", numInferenceSteps: ${N}, seed: 0, useResolutionBinning: false }); out.stepsRun`, {}, 60000);
    assert.strictEqual(reply.content["status"], "ok", JSON.stringify(reply.content));
    const shown = displays(outputs);
    assert.strictEqual(new Set(shown.map(displayId)).size, 1, "more than one display id");
    assert.strictEqual(shown.filter((m) => m.header.msg_type === "display_data").length, 1);
    const previews = shown.filter((m) => {
      const p = dataOf(m)[LATENTS_MIME] as LatentsPayload | undefined;
      return p && !p.done && p.progress?.stage === "denoise";
    });
    assert.strictEqual(previews.length, N);
    assert.deepStrictEqual(previews.map((m) => (dataOf(m)[LATENTS_MIME] as LatentsPayload).steps[0].step), [1, 2, 3, 4]);
    const stageTexts = shown.map((m) => String(dataOf(m)["text/plain"]));
    for (const stage of ["encode prompt", "denoise (4 steps)", "decode"]) assert.ok(stageTexts.some((t) => t.includes(stage)), `no update mentions ${stage}`);
    assert.ok(previews.some((m) => /step 2\/4 \[#+\.+\] 50% · elapsed [\d.]+ s · ETA [\d.]+ s · [\d.]+ it\/s/.test(String(dataOf(m)["text/plain"]))));

    for (const m of shown) {
      const payload = dataOf(m)[LATENTS_MIME];
      if (payload !== undefined) assertValidPayload(LATENTS_MIME, payload);
      if (dataOf(m)["image/png"] !== undefined) await assertPngDecodes(dataOf(m));
    }
    const final = dataOf(shown[shown.length - 1]);
    const payload = final[LATENTS_MIME] as LatentsPayload;
    assert.strictEqual(payload.done, true);
    assert.deepStrictEqual(payload.steps.map((s) => s.step), [1, 2, 3, 4]);
    const [b, c, h, w] = payload.latentShape;
    assert.strictEqual((decodeArray(payload.steps[3].preview) as Uint8Array).length, b * h * w * 3);
    assert.strictEqual(decodeArray(payload.latents!).length, b * c * h * w);
    assert.match(String(final["text/plain"]), /^call done in .* · 4 steps at [\d.]+ it\/s\n  ✓ encode prompt/);
    const grid = await assertPngDecodes(final);
    assert.ok(grid.width >= 4 * h, `grid ${grid.width}×${grid.height}`);
  });

  it("progress: false emits no display messages", async () => {
    const { reply, outputs } = await kc.execute(`(await pipe.call({ prompt: "a red fox", numInferenceSteps: 3, useResolutionBinning: false, progress: false })).stepsRun`, {}, 60000);
    assert.strictEqual(reply.content["status"], "ok");
    assert.deepStrictEqual(displays(outputs), []);
  });

  it("answers usage_request with the kernel's memory and CPU", async () => {
    const reply = await kc.request("control", "usage_request", {});
    assert.strictEqual(reply.header.msg_type, "usage_reply");
    const c = reply.content as Record<string, unknown>;
    assert.strictEqual(c["pid"], kc.proc.pid);
    assert.ok(typeof c["hostname"] === "string" && c["hostname"] !== "");
    assert.ok(Number(c["kernel_memory"]) > 20 * 2 ** 20, `kernel_memory ${c["kernel_memory"]}`);
    assert.ok(Number(c["kernel_cpu"]) >= 0 && Number(c["cpu_count"]) >= 1);
    const vm = c["host_virtual_memory"] as Record<string, number>;
    assert.ok(vm["total"] > 0 && vm["available"] <= vm["total"] && vm["percent"] >= 0 && vm["percent"] <= 100);
  });
});
