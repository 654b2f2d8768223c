import * as assert from "assert";
import * as path from "path";
import { T5EncoderModel } from "../../src/models/t5-encoder";
import { describeDifference, loadReference, maxAbsDifference, tinyConfigs, type RefTensor } from "../helpers/reference";

/** fp32 on both sides: the differences are summation-order rounding only. */
const TOLERANCE = 1e-4;

const asI64 = (t: RefTensor) => ({ data: t.data as BigInt64Array, dims: t.dims });

describe("parity: T5EncoderModel vs transformers", () => {
  const configs = tinyConfigs();
  it("has tiny configs to compare against", () => assert.ok(configs.length >= 3, `found ${configs.length} configs`));

  for (const config of configs) {
    it(`${config.name}: last_hidden_state at every position, padding included → max-abs ≤ ${TOLERANCE}`, async () => {
      const ref = await loadReference(config.dir);
      const model = await T5EncoderModel.fromPretrained(path.join(config.pipeline, "text_encoder"));
      try {
        const expected = await ref("t5.last_hidden_state");
        const out = await model.forward({
          inputIds: asI64(await ref("t5.input_ids")),
          attentionMask: asI64(await ref("t5.attention_mask")),
        });
        assert.deepStrictEqual(out.dims, expected.dims);
        const d = maxAbsDifference(out.data, expected.data as Float32Array);
        assert.ok(d.maxAbs <= TOLERANCE, `${config.name}: ${describeDifference(d, expected.dims)}`);
      } finally {
        await model.release();
      }
    });
  }
});
