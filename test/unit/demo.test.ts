import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { loadImage, createCanvas } from "canvas";
import { repoRoot, fixturesDir } from "../helpers/paths";
import { loadReference } from "../helpers/reference";

describe("npm run demo", function () {
  this.timeout(120_000);

  it("writes a PNG equal to diffusers' image for the same call (within 1/255)", async () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pixart-demo-")), "demo.png");
    const demo = path.join(__dirname, "..", "..", "src", "cli", "demo.js");
    const stdout = execFileSync(process.execPath, ["--expose-gc", demo, "--out", out], { cwd: repoRoot(), encoding: "utf8" });
    assert.match(stdout, /wrote .*demo\.png \(64×64\)/);
    assert.match(stdout, /where the memory went/);
    const img = await loadImage(fs.readFileSync(out));
    assert.deepStrictEqual([img.width, img.height], [64, 64]);
    const ctx = createCanvas(64, 64).getContext("2d");
    ctx.drawImage(img, 0, 0);
    const rgba = ctx.getImageData(0, 0, 64, 64).data;
    // The fixture's call made 2 images from one generator; the first image's noise is the same as the demo's.
    const ref = await loadReference(path.join(fixturesDir, "tiny-square"));
    const expected = (await ref("pipeline.image")).data as Float32Array;
    let worst = 0;
    for (let p = 0; p < 64 * 64; p++) {
      for (let c = 0; c < 3; c++) worst = Math.max(worst, Math.abs(rgba[p * 4 + c] / 255 - expected[p * 3 + c]));
    }
    assert.ok(worst <= 1 / 255 + 1e-6, `max per-channel difference ${worst * 255} levels`);
  });
});
