import * as assert from "assert";
import * as path from "path";
import { PixArtTransformer2DModel } from "../../src/models/pixart-transformer-2d";
import { describeDifference, loadReference, maxAbsDifference, tinyConfigs } from "../helpers/reference";

/** fp32 on both sides: differences are summation-order rounding only (spec §8: ε ≈ 1e-4). */
const TOLERANCE = 1e-4;

describe("parity: PixArtTransformer2DModel vs diffusers", () => {
  const configs = tinyConfigs();
  it("has tiny configs to compare against", () => assert.ok(configs.length >= 3, `found ${configs.length} configs`));

  for (const config of configs) {
    it(`${config.name}: CFG batch of 2, encoder mask, int64 timesteps → max-abs ≤ ${TOLERANCE}`, async () => {
      const ref = await loadReference(config.dir);
      const model = await PixArtTransformer2DModel.fromPretrained(path.join(config.pipeline, "transformer"));
      try {
        const hiddenStates = await ref("transformer.hidden_states");
        const expected = await ref("transformer.output");
        const out = await model.forward({
          hiddenStates: { data: hiddenStates.data as Float32Array, dims: hiddenStates.dims },
          encoderHiddenStates: await ref("transformer.encoder_hidden_states") as { data: Float32Array; dims: number[] },
          encoderAttentionMask: await ref("transformer.encoder_attention_mask") as { data: BigInt64Array; dims: number[] },
          timestep: (await ref("transformer.timestep")).data as BigInt64Array,
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
