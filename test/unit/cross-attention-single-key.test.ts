/**
 * Cross-attention for rows whose mask keeps a single key (pixart-transformer-2d.ts, crossAttention): the leading such
 * rows skip to_q and the attention, and run to_out on one row. Checked against the same graph with the shortcut off
 * (every row on the ordinary path, the computation diffusers does; test/parity/pixart-transformer-2d.test.ts
 * compares the model itself with diffusers on batches whose first row keeps one token, and one whose rows keep 5 and
 * 23).
 */
import * as assert from "assert";
import * as path from "path";
import * as ort from "onnxruntime-node";
import { openWeights } from "../../src/io/checkpoint";
import { readJsonObject } from "../../src/io/json";
import { buildPixArtTransformerGraph, leadingSingleKeyRows, parsePixArtTransformerConfig, PixArtTransformer2DModel } from "../../src/models/pixart-transformer-2d";
import { GraphBuilder } from "../../src/onnx/graph";
import { createSession } from "../../src/onnx/session";
import { fixturesDir } from "../helpers/paths";
import { maxAbsDiff, runStepGraph, transformerInput } from "../helpers/transformer-inputs";

const DIR = path.join(fixturesDir, "tiny-square", "pipeline", "transformer");

function maskTensor(rows: string[]): ort.Tensor {
  return new ort.Tensor("int64", BigInt64Array.from(rows.join(""), (c) => BigInt(c)), [rows.length, rows[0].length]);
}

describe("cross-attention: rows that keep a single key", () => {
  describe("leadingSingleKeyRows", () => {
    let session: ort.InferenceSession;
    before(async () => {
      const g = new GraphBuilder("single_key_rows");
      g.output(leadingSingleKeyRows(g, g.input("mask", "int64", ["batch", "len"])), "rows", "int64", [1]);
      session = await ort.InferenceSession.create(g.build().bytes);
    });
    after(() => session?.release());
    const count = async (rows: string[]) => Number((await session.run({ mask: maskTensor(rows) })).rows.data[0]);

    it("counts the leading rows that keep exactly their first token", async () => {
      assert.strictEqual(await count(["1000", "1110"]), 1, "guidance with an empty negative prompt");
      assert.strictEqual(await count(["1000", "1000", "1100", "1000"]), 2, "a later single row is not leading");
      assert.strictEqual(await count(["1100", "1000"]), 0);
    });
    it("does not count a row whose one kept token is not the first, nor a row that keeps none", async () => {
      assert.strictEqual(await count(["0100", "1110"]), 0);
      assert.strictEqual(await count(["0000", "1110"]), 0, "diffusers attends to every key of an all-masked row");
    });
    it("leaves at least one row to the ordinary path", async () => {
      assert.strictEqual(await count(["1000", "1000"]), 1);
      assert.strictEqual(await count(["1000"]), 0);
    });
  });

  describe("the model against the graph without the shortcut", () => {
    let model: PixArtTransformer2DModel;
    let plain: ort.InferenceSession;
    const [len, latent] = [24, 8];
    before(async () => {
      const config = parsePixArtTransformerConfig(await readJsonObject(path.join(DIR, "config.json")), "config.json");
      model = await PixArtTransformer2DModel.fromPretrained(DIR, { inProcess: true });
      plain = await createSession(buildPixArtTransformerGraph(config, await openWeights(DIR), { singleKeyShortcut: false }));
    });
    after(async () => {
      await model?.release();
      await plain?.release();
    });

    const input = (keep: number[]) => transformerInput(model, keep, len, latent, [999, 999, 999]);
    const maxDiff = maxAbsDiff;

    for (const keep of [[1, 17, 9], [1, 1, 9], [1, 1, 1], [1, 9, 1], [9, 1, 17]]) {
      it(`rows keeping ${keep.join(", ")} of ${len} tokens: the same sample`, async () => {
        const inp = input(keep);
        const [got, want] = [await model.forward(inp), await runStepGraph(plain, model, inp)];
        assert.ok(maxDiff(got.data, want) <= 1e-6, `max diff ${maxDiff(got.data, want)}`);
      });
    }
  });
});
