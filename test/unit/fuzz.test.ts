/**
 * A short fuzz run of every parser in `npm test` (the long one is `npm run fuzz`): mutated safetensors headers,
 * spiece.model files, tokenizer.json and config.json documents and kernel messages must parse or fail with the
 * parser's typed error, each within a second.
 */
import * as assert from "assert";
import { allTargets, fuzz } from "../fuzz/targets";

describe("fuzz (short run; npm run fuzz for 1,000,000 inputs per parser)", function () {
  this.timeout(120_000);
  for (const target of allTargets()) {
    it(`${target.name}: 1,000 mutated inputs, no untyped error, no hang`, () => {
      // A seed per day keeps the short runs covering new inputs while any failure stays reproducible from the log.
      const seed = Math.floor(Date.now() / 86_400_000);
      const r = fuzz(target, 1000, seed, 5000);
      assert.deepStrictEqual(r.untyped, [], `seed ${seed}`);
      assert.deepStrictEqual(r.hangs, [], `seed ${seed}`);
      assert.strictEqual(r.accepted + r.typedErrors, r.inputs);
    });
  }
});
