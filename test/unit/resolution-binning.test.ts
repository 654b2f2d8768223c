import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { binTableFor, classifyHeightWidthBin, resizeAndCrop, ResolutionBinningError } from "../../src/pipeline/resolution-binning";
import { PixArtImage, postprocessToNhwc } from "../../src/pipeline/image";
import { fixturesDir } from "../helpers/paths";
import { describeDifference, loadReference, maxAbsDifference } from "../helpers/reference";

const dir = path.join(fixturesDir, "binning");
const cases = JSON.parse(fs.readFileSync(path.join(dir, "cases.json"), "utf8")) as {
  classify: { sample_size: number; height: number; width: number; bin: [number, number] }[];
  resize: { name: string; new_height: number; new_width: number }[];
};

describe("resolution binning vs diffusers", () => {
  it("picks diffusers' bin for every (sample size, height, width) case", () => {
    for (const c of cases.classify) {
      const bin = classifyHeightWidthBin(c.height, c.width, binTableFor(c.sample_size));
      assert.deepStrictEqual([bin.height, bin.width], c.bin, `sample_size ${c.sample_size}, ${c.height}×${c.width}`);
    }
  });

  it("refuses a sample size without a table", () => {
    assert.throws(() => binTableFor(48), (e: unknown) => e instanceof ResolutionBinningError && /sample_size 48/.test(e.message));
  });

  // Bilinear weights in float32 as torch computes them; the image tolerance downstream is 1/255.
  const TOLERANCE = 1e-6;
  for (const c of cases.resize) {
    it(`${c.name}: resize and centre-crop matches torch within ${TOLERANCE}`, async () => {
      const ref = await loadReference(dir, "binning.safetensors");
      const input = await ref(`${c.name}.in`);
      const expected = await ref(`${c.name}.out`);
      const out = resizeAndCrop(input.data as Float32Array, input.dims, c.new_height, c.new_width);
      assert.deepStrictEqual(out.dims, expected.dims);
      const d = maxAbsDifference(out.data, expected.data as Float32Array);
      assert.ok(d.maxAbs <= TOLERANCE, describeDifference(d, expected.dims));
    });
  }

  it("post-processes like VaeImageProcessor (clamp, NHWC) and rounds halves to even like numpy", async () => {
    const ref = await loadReference(dir, "binning.safetensors");
    const input = await ref("post.in");
    const np = await ref("post.np");
    const u8 = await ref("post.uint8");
    const out = postprocessToNhwc({ data: input.data as Float32Array, dims: input.dims });
    assert.deepStrictEqual(out.dims, np.dims);
    assert.strictEqual(maxAbsDifference(out.data, np.data as Float32Array).maxAbs, 0);
    const [n, h, w] = np.dims;
    for (let i = 0; i < n; i++) {
      const img = PixArtImage.fromFloat(out.data, i, h, w);
      assert.deepStrictEqual(Array.from(img.rgb), Array.from((u8.data as Uint8Array).subarray(i * h * w * 3, (i + 1) * h * w * 3)));
    }
  });
});
