/**
 * The live progress display without a kernel: what it sends for a synthetic long run (one new output then updates,
 * a bounded step history that keeps the first and last steps, valid payloads), the latent-to-RGB map, and that a
 * failing send stops its refresh timer.
 */
import * as assert from "assert";
import { latentsToRgb, projectionFor, SDXL_LATENT_RGB } from "../../src/display/latent-preview";
import type { LatentsPayload } from "../../src/display/payloads";
import { evenSample, formatDuration, LiveProgress } from "../../src/display/progress";
import { assertValidPayload, LATENTS_MIME } from "../../src/display/schemas";
import type { MimeBundle } from "../../src/display/display";
import type { ProgressEvent } from "../../src/runtime/progress";

function run(live: LiveProgress, steps: number): void {
  const dims = [2, 4, 3, 5];
  const latents = { data: new Float32Array(2 * 4 * 3 * 5), dims };
  const emit = (e: object) => live.listener({ elapsedMs: 1, operation: "call", ...e } as ProgressEvent);
  emit({ type: "begin" });
  emit({ type: "stage-start", stage: "denoise", label: `denoise (${steps} steps)`, totalSteps: steps });
  for (let k = 1; k <= steps; k++) {
    latents.data.fill(k / steps);
    emit({ type: "step", stage: "denoise", step: k, totalSteps: steps, timestep: 1000 - k, stageElapsedMs: k * 10, itPerSec: 100, etaMs: (steps - k) * 10, latents });
  }
  emit({ type: "stage-end", stage: "denoise", label: `denoise (${steps} steps)`, durationMs: steps * 10 });
  emit({ type: "end" });
}

describe("live progress display", () => {
  it("a 200-step run: one output updated per stage and step, 48 kept steps with the first and last", () => {
    const sent: { bundle: MimeBundle; displayId: string; update: boolean }[] = [];
    run(new LiveProgress("call", (bundle, o) => sent.push({ bundle, ...o })), 200);
    assert.strictEqual(new Set(sent.map((s) => s.displayId)).size, 1);
    assert.deepStrictEqual(sent.map((s) => s.update), sent.map((_, i) => i > 0));
    assert.strictEqual(sent.length, 1 + 1 + 200 + 1);
    const final = sent[sent.length - 1].bundle[LATENTS_MIME] as LatentsPayload;
    assertValidPayload(LATENTS_MIME, final);
    assert.strictEqual(final.steps.length, 48);
    assert.strictEqual(final.steps[0].step, 1);
    assert.strictEqual(final.steps[47].step, 200);
    assert.ok(final.steps.every((s, i) => i === 0 || s.step > final.steps[i - 1].step));
    const live = sent[100].bundle[LATENTS_MIME] as LatentsPayload;
    assert.strictEqual(live.steps.length, 1, "live updates carry only the current step");
    assert.deepStrictEqual(live.latentShape, [2, 4, 3, 5]);
  });

  it("a send that throws stops the refresh timer", async () => {
    let sends = 0;
    const live = new LiveProgress("load", () => {
      sends++;
      if (sends === 2) throw new Error("display gone");
    });
    live.listener({ type: "begin", elapsedMs: 0, operation: "load" });
    assert.throws(() => live.listener({ type: "stage-start", stage: "load", label: "load vae", elapsedMs: 0, operation: "load" }), /display gone/);
    await new Promise((r) => setTimeout(r, 1300));
    assert.strictEqual(sends, 2);
  });

  it("latents to RGB: SDXL's map for 4 channels, channels as colours otherwise", () => {
    const one = latentsToRgb(Float32Array.from([0, 0, 0, 0]), [1, 4, 1, 1]);
    assert.deepStrictEqual([...one], SDXL_LATENT_RGB.bias.map((b) => Math.round(((b + 1) / 2) * 255)));
    const three = latentsToRgb(Float32Array.from([1, -1, 0]), [1, 3, 1, 1]);
    assert.deepStrictEqual([...three], [255, 0, 128]);
    assert.strictEqual(projectionFor(16).matrix.length, 16);
  });

  it("even samples and durations", () => {
    assert.deepStrictEqual(evenSample([1, 2, 3, 4, 5], 3), [1, 3, 5]);
    assert.deepStrictEqual(evenSample([1, 2], 5), [1, 2]);
    assert.deepStrictEqual([formatDuration(250), formatDuration(12_340), formatDuration(125_000)], ["0.25 s", "12.3 s", "2:05"]);
  });
});
