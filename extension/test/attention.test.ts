import * as assert from "assert";
import { drawAttention, heatColor } from "../src/attention";
import { ATTENTION_MIME } from "../src/payload";
import { renderOutput } from "../src/render";
import type { AttentionPayload } from "../../src/display/payloads";
import { clone, context, newDocument, notebookBundles, PlotlyRecorder } from "./helpers";

describe("extension: attention renderer", () => {
  const bundles = notebookBundles(ATTENTION_MIME);
  const payload = () => clone(bundles[0]!.data[ATTENTION_MIME]) as AttentionPayload;

  it("finds the attention outputs of notebook 03", () => {
    assert.ok(bundles.length >= 1);
  });

  it("draws the image, a heat map per word with a word selector, and a plotly heat map of the raw patch-grid map", async () => {
    const p = payload();
    const { doc, host } = newDocument();
    const plotly = new PlotlyRecorder();
    await renderOutput(ATTENTION_MIME, host, p, context(doc, plotly), drawAttention).ready;
    assert.strictEqual(host.querySelector(".jp-pixart-error"), null, host.textContent!);
    const words = [...host.querySelectorAll<HTMLButtonElement>("button.jp-pixart-word")];
    assert.deepStrictEqual(words.map((b) => b.textContent), p.images[0]!.words.map((w) => w.text));
    assert.strictEqual(words[0]!.getAttribute("aria-pressed"), "true");
    assert.ok(host.querySelector("canvas.jp-pixart-image"), "the generated image");
    assert.strictEqual(plotly.plots.length, p.images.length);
    const trace = plotly.plots[0]!.data[0] as { type: string; z: number[][] };
    assert.strictEqual(trace.type, "heatmap");
    assert.deepStrictEqual([trace.z.length, trace.z[0]!.length], p.grid);
  });

  it("clicking a word switches the overlay and the plot to that word's map", async () => {
    const p = payload();
    const { doc, host } = newDocument();
    const plotly = new PlotlyRecorder();
    await renderOutput(ATTENTION_MIME, host, p, context(doc, plotly), drawAttention).ready;
    const heat = host.querySelector<HTMLCanvasElement>("canvas.jp-pixart-heat")!;
    const pixels = () => [...heat.getContext("2d")!.getImageData(0, 0, heat.width, heat.height).data];
    const before = pixels();
    const plotRoot = plotly.plots[0]!.root;
    const zBefore = JSON.stringify((plotly.figureOf(plotRoot)!.data[0] as { z: unknown }).z);
    const words = host.querySelectorAll<HTMLButtonElement>("button.jp-pixart-word");
    const target = p.images[0]!.words.length - 1;
    const word = p.images[0]!.words[target]!.text;
    assert.ok(target > 0, "notebook 03's prompt has several words");
    words[target]!.click();
    await new Promise((r) => setTimeout(r, 0));
    assert.strictEqual(heat.dataset["word"], word);
    assert.strictEqual(words[target]!.getAttribute("aria-pressed"), "true");
    assert.strictEqual(words[0]!.getAttribute("aria-pressed"), "false");
    assert.notDeepStrictEqual(pixels(), before);
    // The overlay is the word's quantised map through the colour map: check one pixel against the payload.
    const wm = p.images[0]!.wordMaps;
    const [, h, w] = wm.dims;
    const q = Buffer.from(wm.data, "base64")[target * h! * w!]!;
    assert.deepStrictEqual(pixels().slice(0, 3), heatColor(q * wm.scale!));
    const zAfter = JSON.stringify((plotly.figureOf(plotRoot)!.data[0] as { z: unknown }).z);
    assert.notStrictEqual(zAfter, zBefore);
  });

  it("the raw map is the mean of the word's pieces' token maps", async () => {
    const p = payload();
    const image = p.images[0]!;
    // A word of two pieces (the tutorial's tokenizer gives these words one piece each): tokens 1 and 2.
    image.words[1]!.tokens = [1, 2];
    const { doc, host } = newDocument();
    const plotly = new PlotlyRecorder();
    await renderOutput(ATTENTION_MIME, host, p, context(doc, plotly), drawAttention).ready;
    host.querySelectorAll<HTMLButtonElement>("button.jp-pixart-word")[1]!.click();
    await new Promise((r) => setTimeout(r, 0));
    const z = (plotly.plots[0]!.data[0] as { z: number[][] }).z;
    const maps = new Float32Array(new Uint8Array(Buffer.from(image.tokenMaps.data, "base64")).buffer);
    const [rows, cols] = p.grid;
    for (const [r, c] of [[0, 0], [1, 2], [rows - 1, cols - 1]] as const) {
      const expected = (maps[(1 * rows + r) * cols + c]! + maps[(2 * rows + r) * cols + c]!) / 2;
      assert.ok(Math.abs(z[r]![c]! - expected) < 1e-6 * Math.max(1, Math.abs(expected)), `(${r}, ${c}): ${z[r]![c]} vs ${expected}`);
    }
  });

  it("the opacity control sets the overlay's opacity", async () => {
    const { doc, host, window } = newDocument();
    await renderOutput(ATTENTION_MIME, host, payload(), context(doc), drawAttention).ready;
    const slider = host.querySelector<HTMLInputElement>("input.jp-pixart-opacity")!;
    slider.value = "25";
    slider.dispatchEvent(new window.Event("input"));
    assert.strictEqual(host.querySelector<HTMLCanvasElement>("canvas.jp-pixart-heat")!.style.opacity, "0.25");
  });

  it("shows words cut by the sequence limit as disabled buttons", async () => {
    const p = payload();
    p.images[0]!.cutWords = ["beyond", "limit"];
    const { doc, host } = newDocument();
    await renderOutput(ATTENTION_MIME, host, p, context(doc), drawAttention).ready;
    const disabled = [...host.querySelectorAll<HTMLButtonElement>("button.jp-pixart-word:disabled")].map((b) => b.textContent);
    assert.deepStrictEqual(disabled, ["beyond", "limit"]);
  });

  it("a word pointing past the tokens, or maps of the wrong size, give a message naming the field", () => {
    const p = payload();
    const image = p.images[0]!;
    image.words[1]!.tokens = [999];
    const { doc, host } = newDocument();
    renderOutput(ATTENTION_MIME, host, p, context(doc), drawAttention);
    const text = () => host.querySelector(".jp-pixart-error")!.textContent!;
    assert.ok(text().includes(`images[0].words[1] ("${image.words[1]!.text}"): token 999 is past the ${image.tokens.length} tokens`), text());
    const q = payload();
    const dims = q.images[0]!.tokenMaps.dims;
    q.images[0]!.tokenMaps.dims = [dims[0]!, dims[1]! + 1, dims[2]!];
    renderOutput(ATTENTION_MIME, host, q, context(doc), drawAttention);
    assert.ok(text().includes(`images[0].tokenMaps: dim 1 is ${dims[1]! + 1}, expected ${q.grid[0]}`), text());
  });

  it("NaN in the raw maps becomes a gap in the plot, not a crash", async () => {
    const p = payload();
    const bytes = Buffer.from(p.images[0]!.tokenMaps.data, "base64");
    bytes.writeFloatLE(NaN, 0);
    p.images[0]!.tokenMaps.data = bytes.toString("base64");
    const { doc, host } = newDocument();
    const plotly = new PlotlyRecorder();
    await renderOutput(ATTENTION_MIME, host, p, context(doc, plotly), drawAttention).ready;
    assert.strictEqual((plotly.plots[0]!.data[0] as { z: (number | null)[][] }).z[0]![0], null);
  });
});
