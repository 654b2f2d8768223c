/**
 * The transformer's text graph: keys/values trimmed to the tokens some row keeps, computed once per prompt.
 * Compared with the single graph that projects all padded tokens on every call (the computation diffusers does;
 * test/parity/pixart-transformer-2d.test.ts compares the model itself with diffusers on batches whose two rows
 * keep different numbers of tokens).
 */
import * as assert from "assert";
import * as path from "path";
import * as ort from "onnxruntime-node";
import { openWeights } from "../../src/io/checkpoint";
import { readJsonObject } from "../../src/io/json";
import type { Tensor } from "../../src/models/model";
import { buildPixArtTransformerGraph, parsePixArtTransformerConfig, PixArtTransformer2DModel } from "../../src/models/pixart-transformer-2d";
import { firstTokens, padLastAxis, validTextLength } from "../../src/models/pixart-transformer-2d-text";
import { createSession } from "../../src/onnx/session";
import { fixturesDir } from "../helpers/paths";
import { maxAbsDiff, runStepGraph, transformerInput, type TransformerTestInput } from "../helpers/transformer-inputs";

const DIR = path.join(fixturesDir, "tiny-square", "pipeline", "transformer");

function mask(rows: string[]): Tensor<BigInt64Array> {
  return { data: BigInt64Array.from(rows.join(""), (c) => BigInt(c)), dims: [rows.length, rows[0].length] };
}

describe("transformer text graph: trimmed, once per prompt", () => {
  describe("validTextLength", () => {
    it("is one past the last token any row keeps", () => {
      assert.strictEqual(validTextLength(mask(["1100000", "1111000"])), 4);
      assert.strictEqual(validTextLength(mask(["1000100", "1100000"])), 5, "a hole does not end the row");
      assert.strictEqual(validTextLength(mask(["1111111"])), 7);
    });
    it("keeps every token when some row keeps none (diffusers then attends to all of them uniformly)", () => {
      assert.strictEqual(validTextLength(mask(["1100000", "0000000"])), 7);
    });
  });

  it("firstTokens and padLastAxis cut and restore the token axis", () => {
    const t = { data: Float32Array.from({ length: 2 * 3 * 2 }, (_, i) => i), dims: [2, 3, 2] };
    assert.deepStrictEqual(Array.from(firstTokens(t, 2).data), [0, 1, 2, 3, 6, 7, 8, 9]);
    assert.deepStrictEqual(firstTokens(t, 2).dims, [2, 2, 2]);
    assert.deepStrictEqual(Array.from(padLastAxis({ data: Float32Array.of(1, 2, 3, 4), dims: [2, 2] }, 3).data), [1, 2, 0, 3, 4, 0]);
  });

  describe("the model against the untrimmed single graph", () => {
    let model: PixArtTransformer2DModel;
    let full: ort.InferenceSession;
    const [len, latent] = [40, 8];
    before(async () => {
      const config = parsePixArtTransformerConfig(await readJsonObject(path.join(DIR, "config.json")), "config.json");
      model = await PixArtTransformer2DModel.fromPretrained(DIR, { inProcess: true });
      full = await createSession(buildPixArtTransformerGraph(config, await openWeights(DIR)));
    });
    after(async () => {
      await model?.release();
      await full?.release();
    });

    const input = (keep: number[], seed = 0) => transformerInput(model, keep, len, latent, [999, 500, 3], seed);
    const expected = (inp: TransformerTestInput) => runStepGraph(full, model, inp);
    const maxDiff = maxAbsDiff;

    it("rows keeping 3, 17 and 9 of 40 tokens: same sample (trimmed to 17)", async () => {
      const inp = input([3, 17, 9]);
      const [got, want] = [await model.forward(inp), await expected(inp)];
      assert.ok(maxDiff(got.data, want) <= 1e-6, `max diff ${maxDiff(got.data, want)}`);
    });

    it("a row that keeps no token: nothing trimmed, same sample", async () => {
      const inp = input([0, 17, 9]);
      const [got, want] = [await model.forward(inp), await expected(inp)];
      assert.ok(maxDiff(got.data, want) <= 1e-6, `max diff ${maxDiff(got.data, want)}`);
    });

    it("runs the text graph once per prompt, and again when the embeddings change in place", async () => {
      const inp = input([5, 2, 11], 1);
      const runs = model.hostTraffic.runs;
      const first = await model.forward(inp);
      await model.forward({ ...inp, hiddenStates: input([5, 2, 11], 2).hiddenStates });
      assert.strictEqual(model.hostTraffic.runs - runs, 3, "text graph once, step graph twice");
      assert.ok(model.textCacheBytes > 0);
      inp.encoderHiddenStates.data[7] += 1; // a kept token of row 0
      const changed = await model.forward(inp);
      assert.strictEqual(model.hostTraffic.runs - runs, 5, "the changed prompt is projected again");
      assert.ok(maxDiff(changed.data, first.data) > 0);
      assert.ok(maxDiff(changed.data, await expected(inp)) <= 1e-6);
    });

    it("release() frees the cached keys and values", async () => {
      const m = await PixArtTransformer2DModel.fromPretrained(DIR, { inProcess: true });
      await m.forward(input([3, 3, 3]));
      assert.ok(m.textCacheBytes > 0);
      await m.release();
      assert.strictEqual(m.textCacheBytes, 0);
    });
  });
});
