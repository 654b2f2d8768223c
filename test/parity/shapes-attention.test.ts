/**
 * Cross-attention maps of the trained tiny shapes checkpoint (models/default.json) say where the shape is: for the
 * held-out captions with a corner position ("a red circle at the top left on a blue background"), the centroid of
 * the shape word's map falls in the quadrant the caption names. Held-out scenes were never trained on
 * (tools/shapes/scenes.py); the list and the call come from test/fixtures/shapes/reference.json.
 */
import * as assert from "assert";
import * as path from "path";
import { readDefaults } from "../../src/cli/defaults";
import type { ImageAttentionMaps } from "../../src/pipeline/attention-maps";
import { PixArtSigmaPipeline } from "../../src/pipeline/pixart-sigma";
import { fixturesDir } from "../helpers/paths";
import { referenceJson } from "../helpers/reference";

/** [caption, shape, colour, position, background] */
type HeldOut = [string, string, string, string, string];
interface Semantic {
  call: { num_inference_steps: number; guidance_scale: number; seed: number; max_sequence_length: number };
  held_out: HeldOut[];
}

/** Centroid (row, column) of a word's map as fractions of the image height and width. */
function centroid(maps: ImageAttentionMaps, word: number, height: number, width: number): [number, number] {
  const m = maps.wordMaps.data.subarray(word * height * width, (word + 1) * height * width) as Float32Array;
  let sum = 0;
  let y = 0;
  let x = 0;
  m.forEach((v, p) => {
    sum += v;
    y += v * (Math.floor(p / width) + 0.5);
    x += v * ((p % width) + 0.5);
  });
  return [y / sum / height, x / sum / width];
}

describe("attention maps of the trained tiny shapes checkpoint", function () {
  this.timeout(600_000);

  it("the shape word's map is centred in the caption's quadrant for >= 90% of >= 50 held-out corner captions", async () => {
    const { semantic } = referenceJson(path.join(fixturesDir, "shapes")) as unknown as { semantic: Semantic };
    const cases = semantic.held_out.filter(([, , , position]) => /^(top|bottom) (left|right)$/.test(position));
    assert.ok(cases.length >= 50, `only ${cases.length} held-out corner captions`);
    const pipe = await PixArtSigmaPipeline.fromPretrained((await readDefaults()).model, { progress: false });
    try {
      const { call } = semantic;
      const out = await pipe.call({
        prompt: cases.map(([caption]) => caption), negativePrompt: "", numInferenceSteps: call.num_inference_steps,
        guidanceScale: call.guidance_scale, seed: call.seed, maxSequenceLength: call.max_sequence_length,
        useResolutionBinning: false, attention: true, outputType: "latent",
      });
      const { height, width, images } = out.attention!;
      assert.strictEqual(images.length, cases.length);
      const misses: string[] = [];
      images.forEach((maps, i) => {
        const [caption, shape, , position] = cases[i];
        const word = maps.words.findIndex((w) => w.text === shape);
        assert.ok(word >= 0, `"${caption}": no word "${shape}" in ${JSON.stringify(maps.words.map((w) => w.text))}`);
        const [cy, cx] = centroid(maps, word, height, width);
        const quadrant = `${cy < 0.5 ? "top" : "bottom"} ${cx < 0.5 ? "left" : "right"}`;
        if (quadrant !== position) misses.push(`"${caption}": centroid (${cy.toFixed(2)}, ${cx.toFixed(2)})`);
      });
      const right = cases.length - misses.length;
      console.log(`      shape-word centroid in the named quadrant: ${right}/${cases.length}`);
      assert.ok(right >= 0.9 * cases.length, `${right}/${cases.length}; misses: ${misses.join("; ")}`);
    } finally {
      await pipe.dispose();
    }
  });
});
