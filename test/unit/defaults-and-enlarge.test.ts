import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { readDefaults } from "../../src/cli/defaults";
import { ConfigError } from "../../src/io/errors";
import { PixArtImage } from "../../src/pipeline/image";

describe("models/default.json", () => {
  it("names a checkpoint folder inside the repository and a complete call", async () => {
    const d = await readDefaults();
    assert.ok(fs.existsSync(path.join(d.model, "model_index.json")), `${d.model} has no model_index.json`);
    assert.ok(d.prompt.length > 0 && d.numInferenceSteps > 0 && d.displaySize >= 128);
  });

  it("names the field and what was expected when one is wrong", async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pixart-defaults-")), "default.json");
    fs.writeFileSync(file, JSON.stringify({ model: "models/x", prompt: "p", numInferenceSteps: "20" }));
    await assert.rejects(readDefaults(file), (e: Error) => e instanceof ConfigError && /"numInferenceSteps" should be a number, got str/.test(e.message));
    fs.writeFileSync(file, JSON.stringify({ model: "/etc" }));
    await assert.rejects(readDefaults(file), (e: Error) => e instanceof ConfigError && /relative to the repository root/.test(e.message));
  });
});

describe("PixArtImage.enlarged", () => {
  const image = new PixArtImage(2, 1, Uint8Array.from([1, 2, 3, 4, 5, 6]));

  it("repeats every pixel as a k×k block, k the smallest whole factor reaching the size", () => {
    const big = image.enlarged(3);
    assert.deepStrictEqual([big.width, big.height], [6, 3]);
    const row = [1, 2, 3, 1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6, 4, 5, 6];
    assert.deepStrictEqual([...big.rgb], [...row, ...row, ...row]);
  });

  it("keeps an image already large enough, and rejects a size that is not a number >= 1", () => {
    assert.strictEqual(image.enlarged(1), image);
    assert.throws(() => image.enlarged(0), /minSide must be a number >= 1, got 0/);
    assert.throws(() => image.enlarged(NaN), RangeError);
  });
});
