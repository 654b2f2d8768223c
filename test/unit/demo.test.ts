import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { loadImage, createCanvas } from "canvas";
import { readDefaults } from "../../src/cli/defaults";
import { repoRoot, fixturesDir } from "../helpers/paths";
import { loadReference } from "../helpers/reference";

describe("npm run demo", function () {
  this.timeout(120_000);

  it("prints the prompt next to the PNG it wrote, diffusers' image enlarged for display (within 1/255)", async () => {
    const defaults = await readDefaults();
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pixart-demo-")), "demo.png");
    const demo = path.join(__dirname, "..", "..", "src", "cli", "demo.js");
    const stdout = execFileSync(process.execPath, ["--expose-gc", demo, "--out", out], { cwd: repoRoot(), encoding: "utf8" });
    assert.ok(stdout.includes(`prompt: "${defaults.prompt}"\nwrote ${out} (`), stdout);
    assert.match(stdout, /where the memory went/);
    // diffusers' image for the same call (tools/shapes/evaluate.py), drawn at the model's native size.
    const expected = await loadReference(path.join(fixturesDir, "shapes")).then((ref) => ref("image.DPMSolverMultistepScheduler"));
    const [, h, w] = expected.dims;
    const img = await loadImage(fs.readFileSync(out));
    const k = Math.ceil(defaults.displaySize / Math.min(h, w));
    assert.deepStrictEqual([img.width, img.height], [w * k, h * k]);
    assert.ok(img.width >= defaults.displaySize && img.height >= defaults.displaySize);
    const ctx = createCanvas(img.width, img.height).getContext("2d");
    ctx.drawImage(img, 0, 0);
    const rgba = ctx.getImageData(0, 0, img.width, img.height).data;
    let worst = 0;
    for (let y = 0; y < img.height; y++) {
      for (let x = 0; x < img.width; x++) {
        const p = Math.floor(y / k) * w + Math.floor(x / k);
        for (let c = 0; c < 3; c++) worst = Math.max(worst, Math.abs(rgba[(y * img.width + x) * 4 + c] / 255 - (expected.data as Float32Array)[p * 3 + c]));
      }
    }
    assert.ok(worst <= 1 / 255 + 1e-6, `max per-channel difference ${worst * 255} levels`);
  });
});
