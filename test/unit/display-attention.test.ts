/**
 * The attention-map display: the payload validates against its schema and carries what the maps hold, the PNG decodes
 * at the expected size, text/plain names the words.
 */
import * as assert from "assert";
import * as path from "path";
import { loadImage } from "canvas";
import { decodeArray } from "../../src/display/arrays";
import { attentionBundle, attentionPayload, attentionPng, showAttention } from "../../src/display/attention";
import { jupyterDisplay } from "../../src/display/display";
import { ATTENTION_MIME, payloadErrors } from "../../src/display/schemas";
import { CrossAttentionRecorder, type AttentionMaps } from "../../src/pipeline/attention-maps";
import { PixArtImage } from "../../src/pipeline/image";
import { T5Tokenizer } from "../../src/tokenizer/t5-tokenizer";
import { fixturesDir } from "../helpers/paths";

/** Maps of two images whose token t attends to grid cell t (mod cells), so every word map has a peak. */
async function syntheticMaps(height: number, width: number, prompt: string): Promise<AttentionMaps> {
  const tokenizer = await T5Tokenizer.fromPretrained(path.join(fixturesDir, "tiny-square", "pipeline", "tokenizer"));
  const grid: [number, number] = [4, 4];
  const ids = tokenizer.encode(prompt, { padding: "longest" }).inputIds[0];
  const [layers, rows, s, l] = [2, 2, 16, 20];
  const probs = new Float32Array(layers * rows * s * l);
  for (let i = 0; i < probs.length; i++) {
    const t = i % l;
    const q = Math.floor(i / l) % s;
    probs[i] = q === t % s ? 0.5 : 0.5 / (l - 1);
  }
  const recorder = new CrossAttentionRecorder({ layers: [0, 1], steps: [0, 1] });
  recorder.add(0, { data: probs, dims: [layers, rows, s, l] });
  recorder.add(1, { data: probs, dims: [layers, rows, s, l] });
  return recorder.finish({ tokenizer, maxLength: 300, grid, generation: { height, width }, output: { height, width },
    rows: [0, 1].map(() => ({ prompt, ids, count: ids.length })) });
}

function image(height: number, width: number): PixArtImage {
  return new PixArtImage(width, height, Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 7) % 256));
}

describe("display: cross-attention maps", () => {
  it("the payload validates, states its quantisation, and decodes to the maps", async () => {
    const maps = await syntheticMaps(64, 64, "a red circle at the top left");
    const payload = attentionPayload(maps, [image(64, 64), image(64, 64)]);
    assert.deepStrictEqual(payloadErrors(ATTENTION_MIME, payload), []);
    assert.strictEqual(payload.images.length, 2);
    const first = payload.images[0];
    assert.deepStrictEqual(first.words.map((w) => w.text), ["a", "red", "circle", "at", "the", "top", "left"]);
    assert.strictEqual(first.wordMaps.dtype, "uint8");
    assert.strictEqual(first.wordMaps.scale, 1 / 255);
    assert.strictEqual(first.wordMaps.offset, 0);
    assert.deepStrictEqual(first.wordMaps.dims, [7, 64, 64]);
    const back = decodeArray(first.wordMaps) as Float32Array;
    const want = maps.images[0].wordMaps.data;
    assert.ok(back.every((v, i) => Math.abs(v - want[i]) <= 0.5 / 255 + 1e-6), "word maps within half a quantisation step");
    assert.deepStrictEqual(decodeArray(first.tokenMaps), maps.images[0].tokenMaps.data);
    assert.deepStrictEqual(first.image!.dims, [64, 64, 3]);
  });

  it("large images are resampled to maxSide in the payload; the schema rejects JSON-number arrays and a wrong version", async () => {
    const maps = await syntheticMaps(96, 48, "two words");
    const payload = attentionPayload(maps, undefined, { maxSide: 32 });
    assert.deepStrictEqual(payload.images[0].wordMaps.dims, [2, 32, 16]);
    assert.strictEqual(payload.images[0].image, undefined);
    assert.deepStrictEqual(payloadErrors(ATTENTION_MIME, payload), []);
    const numbers = { ...payload, images: [{ ...payload.images[0], wordMaps: [0.1, 0.2] }] };
    assert.notDeepStrictEqual(payloadErrors(ATTENTION_MIME, numbers), []);
    assert.notDeepStrictEqual(payloadErrors(ATTENTION_MIME, { ...payload, version: 2 }), []);
  });

  it("the bundle has the payload, a PNG that decodes to the panel grid, and text naming the words", async () => {
    const maps = await syntheticMaps(64, 64, "a red circle at the top left");
    const bundle = attentionBundle(maps, [image(64, 64), image(64, 64)], { panel: 64, columns: 4 });
    assert.deepStrictEqual(Object.keys(bundle).sort(), [ATTENTION_MIME, "image/png", "text/plain"].sort());
    const png = await loadImage(Buffer.from(bundle["image/png"] as string, "base64"));
    // 4 columns of 64 px panels with 6 px gaps; 2 images × (caption + 2 lines of panels: image + 7 words).
    assert.strictEqual(png.width, 6 + 4 * 70);
    assert.strictEqual(png.height, 6 + 2 * (18 + 2 * (64 + 16 + 6)));
    assert.match(bundle["text/plain"] as string, /2 image\(s\), blocks 0, 1, 2 steps/);
    assert.match(bundle["text/plain"] as string, /\[a red circle at the top left\]/);
    const shown = await showAttention(maps)[jupyterDisplay]();
    assert.ok(ATTENTION_MIME in shown);
    assert.ok(attentionPng(maps).length > 100);
  });
});
