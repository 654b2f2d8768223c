import * as assert from "assert";
import { drawLatents } from "../src/latents";
import { LATENTS_MIME } from "../src/payload";
import { renderOutput } from "../src/render";
import { clone, context, newDocument, notebookBundles } from "./helpers";

describe("extension: latents renderer", () => {
  const bundles = notebookBundles(LATENTS_MIME);

  it("finds the latents outputs of the executed tutorials", () => {
    assert.ok(bundles.length >= 4, `only ${bundles.length} latents outputs in notebooks/`);
  });

  it("draws a scrubber, the channel grid and the final preview for every tutorial output", () => {
    for (const b of bundles) {
      const { doc, host } = newDocument();
      const payload = b.data[LATENTS_MIME] as { steps: { step: number }[]; latentShape: number[] };
      renderOutput(LATENTS_MIME, host, payload, context(doc), drawLatents);
      const where = `${b.notebook} cell ${b.cell}`;
      assert.strictEqual(host.querySelector(".jp-pixart-error"), null, `${where}: ${host.textContent}`);
      const slider = host.querySelector<HTMLInputElement>("input.jp-pixart-slider");
      assert.ok(slider, `${where}: no slider`);
      assert.strictEqual(slider.max, String(payload.steps.length - 1));
      assert.strictEqual(host.querySelectorAll(".jp-pixart-channel canvas").length, payload.latentShape[1], where);
      assert.ok(host.querySelector(".jp-pixart-final canvas"), `${where}: no final preview`);
    }
  });

  it("scrubbing shows the chosen step's pixels", () => {
    const payload = bundles[0]!.data[LATENTS_MIME] as { steps: { step: number; preview: { dims: number[]; data: string } }[] };
    const { doc, host, window } = newDocument();
    renderOutput(LATENTS_MIME, host, payload, context(doc), drawLatents);
    const frame = host.querySelector<HTMLCanvasElement>("canvas.jp-pixart-frame")!;
    const slider = host.querySelector<HTMLInputElement>("input.jp-pixart-slider")!;
    const label = host.querySelector(".jp-pixart-step-label")!;
    assert.strictEqual(frame.dataset["step"], String(payload.steps.at(-1)!.step), "starts on the last kept step");
    slider.value = "0";
    slider.dispatchEvent(new window.Event("input"));
    assert.strictEqual(frame.dataset["step"], String(payload.steps[0]!.step));
    assert.match(label.textContent!, new RegExp(`^step ${payload.steps[0]!.step}/`));
    // The frame holds the preview's bytes: pixel (0, 0) of batch item 0.
    const [, , w] = payload.steps[0]!.preview.dims;
    const rgb = Buffer.from(payload.steps[0]!.preview.data, "base64");
    const pixel = frame.getContext("2d")!.getImageData(0, 0, 1, 1).data;
    assert.deepStrictEqual([...pixel.slice(0, 3)], [...rgb.subarray(0, 3)]);
    assert.strictEqual(frame.width, w);
  });

  it("play steps through the kept previews and stops at the last", async () => {
    const payload = bundles[0]!.data[LATENTS_MIME] as { steps: { step: number }[] };
    const { doc, host } = newDocument();
    const drawn = renderOutput(LATENTS_MIME, host, payload, context(doc), drawLatents);
    const frame = host.querySelector<HTMLCanvasElement>("canvas.jp-pixart-frame")!;
    const play = host.querySelector<HTMLButtonElement>("button.jp-pixart-button")!;
    const seen = new Set<string>();
    const watcher = setInterval(() => seen.add(frame.dataset["step"]!), 20);
    play.click();
    assert.strictEqual(play.textContent, "Pause");
    const deadline = Date.now() + 60_000;
    while (play.textContent === "Pause" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    clearInterval(watcher);
    drawn.dispose();
    assert.strictEqual(play.textContent, "Play", "play stops at the end");
    assert.strictEqual(frame.dataset["step"], String(payload.steps.at(-1)!.step));
    assert.ok(seen.size >= 2, `saw steps ${[...seen]}`);
  });

  it("accepts the payload as a JSON string (tslab's display.raw)", () => {
    const { doc, host } = newDocument();
    renderOutput(LATENTS_MIME, host, JSON.stringify(bundles[0]!.data[LATENTS_MIME]), context(doc), drawLatents);
    assert.ok(host.querySelector("input.jp-pixart-slider"));
  });

  it("says what is wrong with a preview whose bytes do not match its dims, and draws the rest", () => {
    const payload = clone(bundles[0]!.data[LATENTS_MIME]) as { steps: { preview: { dims: number[] } }[] };
    payload.steps[0]!.preview.dims = [1, 9, 9, 3];
    const { doc, host, window } = newDocument();
    renderOutput(LATENTS_MIME, host, payload, context(doc), drawLatents);
    const slider = host.querySelector<HTMLInputElement>("input.jp-pixart-slider")!;
    slider.value = "0";
    slider.dispatchEvent(new window.Event("input"));
    assert.match(host.querySelector(".jp-pixart-frame-error")!.textContent!, /steps\[0\]\.preview: \d+ base64 characters for dims \[1, 9, 9, 3\]/);
  });
});
