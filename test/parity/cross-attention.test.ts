import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PixArtTransformer2DModel } from "../../src/models/pixart-transformer-2d";
import { CrossAttentionOptionError } from "../../src/models/pixart-transformer-2d-attention";
import type { Tensor } from "../../src/models/model";
import { describeDifference, firstColumns, loadReference, maxAbsDifference, tinyConfigs } from "../helpers/reference";

/** attention.json → tolerances: the probabilities recorded in diffusers, fp32 on both sides. */
const PROBS_TOLERANCE = 1e-5;
const SAMPLE_TOLERANCE = 1e-4;

/** Rows [from, to) of every layer of a [layers, rows, S, L] tensor. */
function rowsOf(t: { data: ArrayLike<number>; dims: readonly number[] }, from: number, to: number): Float32Array {
  const [layers, rows, s, l] = t.dims;
  const out = new Float32Array(layers * (to - from) * s * l);
  for (let layer = 0; layer < layers; layer++) {
    for (let r = from; r < to; r++) {
      const src = ((layer * rows + r) * s) * l;
      out.set(Array.from({ length: s * l }, (_, i) => t.data[src + i]), ((layer * (to - from) + r - from) * s) * l);
    }
  }
  return out;
}

describe("parity: cross-attention probabilities vs a diffusers attention processor", () => {
  // tools/reference/attention.py records the transformer stage where the fixture budget allows it.
  const configs = tinyConfigs().filter((c) => fs.existsSync(path.join(c.dir, "attention.json")) &&
    "attention.transformer.probs" in (JSON.parse(fs.readFileSync(path.join(c.dir, "attention.json"), "utf8")) as { tensors: object }).tensors);
  it("has tiny configs with attention references", () => assert.ok(configs.length >= 2, `found ${configs.length}`));

  for (const config of configs) {
    describe(config.name, () => {
      let model: PixArtTransformer2DModel;
      let input: Parameters<PixArtTransformer2DModel["forward"]>[0];
      let expected: Tensor;
      let expectedSample: Tensor;
      before(async () => {
        const ref = await loadReference(config.dir);
        const att = await loadReference(config.dir, "attention.safetensors");
        model = await PixArtTransformer2DModel.fromPretrained(path.join(config.pipeline, "transformer"));
        input = {
          hiddenStates: await ref("transformer.hidden_states") as Tensor,
          encoderHiddenStates: await ref("transformer.encoder_hidden_states") as Tensor,
          encoderAttentionMask: await ref("transformer.encoder_attention_mask") as Tensor<BigInt64Array>,
          timestep: (await ref("transformer.timestep")).data as BigInt64Array,
        };
        expected = await att("attention.transformer.probs") as Tensor;
        expectedSample = await ref("transformer.output") as Tensor;
      });
      after(async () => model?.release());

      it(`every block, both rows: head-mean probabilities within ${PROBS_TOLERANCE}, sample unchanged`, async () => {
        const layers = Array.from({ length: model.config.numLayers }, (_, i) => i);
        const out = await model.forwardWithCrossAttention(input, { layers });
        assert.deepStrictEqual(out.crossAttention.dims.slice(0, 3), expected.dims.slice(0, 3));
        const kept = firstColumns(out.crossAttention.data, out.crossAttention.dims, expected.dims[3]);
        assert.strictEqual(kept.restMaxAbs, 0, "masked text tokens have probability 0");
        const d = maxAbsDifference(kept.data, expected.data);
        assert.ok(d.maxAbs <= PROBS_TOLERANCE, describeDifference(d, expected.dims));
        const s = maxAbsDifference(out.sample.data, expectedSample.data);
        assert.ok(s.maxAbs <= SAMPLE_TOLERANCE, describeDifference(s, expectedSample.dims));
        // Probabilities: each query's row sums to 1 over the text tokens.
        const l = out.crossAttention.dims[3];
        for (let q = 0; q < out.crossAttention.data.length / l; q++) {
          const sum = out.crossAttention.data.subarray(q * l, (q + 1) * l).reduce((a, b) => a + b, 0);
          assert.ok(Math.abs(sum - 1) < 1e-5, `row ${q} sums to ${sum}`);
        }
      });

      it("rowStart 1 and one block: that block's probabilities of the second row only", async () => {
        const last = model.config.numLayers - 1;
        const out = await model.forwardWithCrossAttention(input, { layers: [last], rowStart: 1 });
        const [, , s, l] = expected.dims;
        assert.deepStrictEqual(out.crossAttention.dims.slice(0, 3), [1, 1, s]);
        const want = rowsOf(expected, 1, 2).subarray(last * s * l, (last + 1) * s * l);
        const d = maxAbsDifference(firstColumns(out.crossAttention.data, out.crossAttention.dims, l).data, want);
        assert.ok(d.maxAbs <= PROBS_TOLERANCE, describeDifference(d, [1, 1, s, l]));
      });

      it("refuses bad blocks and rows with a typed error naming the option", async () => {
        const n = model.config.numLayers;
        await assert.rejects(model.forwardWithCrossAttention(input, { layers: [n] }), (e: Error) =>
          e instanceof CrossAttentionOptionError && /layers: .*\[0, 2\)/.test(e.message));
        await assert.rejects(model.forwardWithCrossAttention(input, { layers: [] }), CrossAttentionOptionError);
        await assert.rejects(model.forwardWithCrossAttention(input, { layers: [0, 0] }), /listed twice/);
        await assert.rejects(model.forwardWithCrossAttention(input, { layers: [0], rowStart: 2 }), /rowStart: .*\[0, 2\)/);
      });
    });
  }

  it("an int8-quantized transformer's variant is built with the same quantized linears (probabilities close to fp32)", async () => {
    const config = configs.find((c) => c.name === "tiny-square")!;
    const ref = await loadReference(config.dir);
    const expected = await (await loadReference(config.dir, "attention.safetensors"))("attention.transformer.probs");
    const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-attn-int8-"));
    const model = await PixArtTransformer2DModel.fromPretrained(path.join(config.pipeline, "transformer"), { quantize: "int8", cacheDir });
    try {
      const out = await model.forwardWithCrossAttention({
        hiddenStates: await ref("transformer.hidden_states") as Tensor,
        encoderHiddenStates: await ref("transformer.encoder_hidden_states") as Tensor,
        encoderAttentionMask: await ref("transformer.encoder_attention_mask") as Tensor<BigInt64Array>,
        timestep: (await ref("transformer.timestep")).data as BigInt64Array,
      }, { layers: [0, 1] });
      const d = maxAbsDifference(firstColumns(out.crossAttention.data, out.crossAttention.dims, expected.dims[3]).data, expected.data as Float32Array);
      // int8 weights move the scores a little: close to fp32, but not equal (so the quantized linears were used).
      assert.ok(d.maxAbs > 0 && d.maxAbs < 0.05, `int8 vs fp32 probabilities: ${d.maxAbs}`);
    } finally {
      await model.release();
      fs.rmSync(cacheDir, { recursive: true, force: true });
    }
  });

  it("the default graph has no probability path (no Softmax, no row-start input, one output)", async () => {
    const config = configs[0];
    const model = await PixArtTransformer2DModel.fromPretrained(path.join(config.pipeline, "transformer"));
    try {
      assert.deepStrictEqual(model.built.outputNames, ["sample"]);
      assert.ok(!model.built.inputNames.includes("attention_row_start"));
      assert.ok(!Buffer.from(model.built.bytes).includes(Buffer.from("Softmax")), "Softmax in the default graph");
    } finally {
      await model.release();
    }
  });
});
