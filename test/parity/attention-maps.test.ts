import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import type { Tensor } from "../../src/models/model";
import { CrossAttentionRecorder, upsampleBicubic, type AttentionMaps } from "../../src/pipeline/attention-maps";
import { PixArtSigmaPipeline } from "../../src/pipeline/pixart-sigma";
import { T5Tokenizer } from "../../src/tokenizer/t5-tokenizer";
import { describeDifference, firstColumns, loadReference, maxAbsDifference, referenceJson, tinyConfigs, type RefTensor } from "../helpers/reference";
import { callOptions } from "./pipeline.test";

interface AttentionJson {
  layers: number[];
  steps: number[];
  texts: string[];
  token_counts: number[];
  words: { text: string; tokens: number[] }[][];
  grid: [number, number];
  generation_size: [number, number];
  tolerances: Record<string, { max_abs: number }>;
}

/** Maps are sums of probabilities over steps, upsampled in float32 by torch: rounding only. */
const MAP_TOLERANCE = 1e-5;

function close(name: string, actual: ArrayLike<number>, expected: RefTensor | Tensor, tol: number, dims = expected.dims): void {
  const d = maxAbsDifference(actual, expected.data as Float32Array);
  assert.ok(d.maxAbs <= tol, `${name}: ${describeDifference(d, dims)} > ${tol}`);
}

/** Slice [k] of the first axis of a row-major tensor. */
function slab(t: RefTensor, k: number): Tensor {
  const size = t.dims.slice(1).reduce((a, b) => a * b, 1);
  return { data: (t.data as Float32Array).subarray(k * size, (k + 1) * size), dims: t.dims.slice(1) };
}

describe("parity: cross-attention maps of a pipeline call vs diffusers", function () {
  this.timeout(300_000);
  const configs = tinyConfigs().filter((c) => fs.existsSync(path.join(c.dir, "attention.json")));

  for (const config of configs) {
    const info = JSON.parse(fs.readFileSync(path.join(config.dir, "attention.json"), "utf8")) as AttentionJson;
    const call = callOptions((referenceJson(config.dir) as { pipeline: { call: Parameters<typeof callOptions>[0] } }).pipeline.call);
    describe(config.name, () => {
      let attention: AttentionMaps;
      const perStep: Tensor[] = [];
      before(async () => {
        const pipe = await PixArtSigmaPipeline.fromPretrained(config.pipeline, { progress: false });
        try {
          const out = await pipe.call({ ...call, outputType: "latent", attention: { layers: info.layers, steps: info.steps },
            callbackOnStepEnd: ({ crossAttention }) => { if (crossAttention) perStep.push(crossAttention); } });
          attention = out.attention!;
        } finally {
          await pipe.dispose();
        }
      });

      it(`probabilities of the recorded blocks and steps (conditional half) within ${info.tolerances["attention.pipeline.probs"].max_abs}`, async () => {
        const expected = await (await loadReference(config.dir, "attention.safetensors"))("attention.pipeline.probs");
        const tol = info.tolerances["attention.pipeline.probs"].max_abs;
        assert.strictEqual(perStep.length, expected.dims[0], "recorded steps");
        perStep.forEach((step, s) => {
          assert.deepStrictEqual([...step.dims].slice(0, 3), expected.dims.slice(1, 4), `step ${s} dims`);
          const kept = firstColumns(step.data, step.dims, expected.dims[4]);
          assert.strictEqual(kept.restMaxAbs, 0, "masked text tokens have probability 0");
          const layerSize = kept.data.length / step.dims[0];
          for (let l = 0; l < step.dims[0]; l++) {
            const want = slab(slab(expected, s) as RefTensor, l);
            close(`step ${info.steps[s]} block ${info.layers[l]}`, kept.data.subarray(l * layerSize, (l + 1) * layerSize), want, tol, want.dims);
          }
        });
        assert.deepStrictEqual(attention.steps, info.steps);
        assert.deepStrictEqual(attention.layers, info.layers);
      });

      it("words and their pieces per image are the fast tokenizer's word_ids()", () => {
        assert.strictEqual(attention.images.length, info.words.length);
        attention.images.forEach((image, r) => {
          assert.strictEqual(image.prompt, info.texts[r]);
          assert.strictEqual(image.tokens.length, info.token_counts[r]);
          assert.strictEqual(image.tokens[image.tokens.length - 1], "</s>");
          assert.deepStrictEqual(image.words.map((w) => ({ text: w.text, tokens: w.tokens })), info.words[r]);
          assert.deepStrictEqual([...image.tokenMaps.dims], [info.token_counts[r], ...info.grid]);
          assert.deepStrictEqual([...image.wordMaps.dims], [info.words[r].length, attention.height, attention.width]);
        });
      });

      it("word maps are min-max normalised: each spans [0, 1]", () => {
        for (const image of attention.images) {
          const pixels = attention.height * attention.width;
          image.words.forEach((w, k) => {
            const m = image.wordMaps.data.subarray(k * pixels, (k + 1) * pixels);
            assert.strictEqual(Math.min(...m), 0, `${w.text}: min`);
            assert.ok(Math.abs(Math.max(...m) - 1) < 1e-6, `${w.text}: max ${Math.max(...m)}`);
          });
        }
      });

      // The reference holds maps only for small generation sizes (see tools/reference/attention.py).
      if (!("attention.pipeline.token_maps" in (info as unknown as { tensors: object }).tensors)) return;
      it(`DAAM aggregation of diffusers' probabilities equals the reference maps within ${MAP_TOLERANCE}`, async () => {
        const ref = await loadReference(config.dir, "attention.safetensors");
        const probs = await ref("attention.pipeline.probs");
        const [height, width] = info.generation_size;
        // The aggregation alone, fed the reference probabilities: row 0 only (what the reference holds).
        const recorder = new CrossAttentionRecorder({ layers: info.layers, steps: info.steps });
        info.steps.forEach((step, s) => recorder.add(step, slab(probs, s)));
        const tokenizer = await T5Tokenizer.fromPretrained(path.join(config.pipeline, "tokenizer"));
        const maxLength = call.maxSequenceLength ?? 300;
        const maps = recorder.finish({ tokenizer, maxLength, grid: info.grid, generation: { height, width }, output: { height, width },
          rows: [{ prompt: info.texts[0], count: info.token_counts[0] }] });
        // The reference keeps the first words only: their K tokens and W word maps.
        const tokenMaps = await ref("attention.pipeline.token_maps");
        const wordMaps = await ref("attention.pipeline.word_maps");
        const [k, w] = [tokenMaps.dims[1], wordMaps.dims[1]];
        const raw = maps.images[0].tokenMaps;
        const up = upsampleBicubic(raw.data, k, raw.dims[1], raw.dims[2], height, width).map((v) => Math.max(v, 0));
        close("token maps", up, tokenMaps, MAP_TOLERANCE);
        close("word maps", maps.images[0].wordMaps.data.subarray(0, w * height * width), wordMaps, MAP_TOLERANCE);
      });
    });
  }
});
