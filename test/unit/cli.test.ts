import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { loadImage } from "canvas";
import { fixturesDir, repoRoot } from "../helpers/paths";

const cli = path.join(__dirname, "..", "..", "src", "cli", "main.js");
const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { cwd: repoRoot(), encoding: "utf8" });

describe("pixart CLI", function () {
  this.timeout(120_000);
  let dir: string;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-cli-")); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("generate writes a PNG of the requested size (binned, then resized back) with a progress line per step", async () => {
    const out = path.join(dir, "wide.png");
    const r = run(["generate", "two children flying over green hills", "--model", path.join(fixturesDir, "tiny-wide", "pipeline"),
      "--steps", "2", "--height", "78", "--width", "50", "--seed", "7", "--scheduler", "euler", "--out", out]);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /wrote .*wide\.png \(50×78\)/);
    assert.match(r.stderr, /denoising .* 2\/2 \[.*it\/s|s\/it\]/);
    const img = await loadImage(fs.readFileSync(out));
    assert.deepStrictEqual([img.width, img.height], [50, 78]);
  });

  it("--num-images writes one file per image", () => {
    const out = path.join(dir, "sq.png");
    const r = run(["generate", "a cat", "--model", path.join(fixturesDir, "tiny-square", "pipeline"), "--steps", "1", "--no-binning",
      "--num-images", "2", "--out", out]);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.ok(fs.existsSync(path.join(dir, "sq-0.png")) && fs.existsSync(path.join(dir, "sq-1.png")));
  });

  for (const [args, pattern] of [
    [["generate", "a cat"], /--model is required/],
    [["generate", "a cat", "--model", "x", "--steps", "two"], /--steps expects an integer/],
    [["generate", "a cat", "--model", "x", "--bogus"], /Unknown option '--bogus'/],
    [["paint", "a cat"], /unknown command "paint"/],
  ] as const) {
    it(`usage error: ${args.join(" ")}`, () => {
      const r = run([...args]);
      assert.strictEqual(r.status, 2);
      assert.match(r.stderr, pattern);
    });
  }

  it("an unknown scheduler and a missing model folder fail with a named error (exit 1)", () => {
    const bad = run(["generate", "a cat", "--model", path.join(fixturesDir, "tiny-square", "pipeline"), "--scheduler", "heun", "--no-binning"]);
    assert.strictEqual(bad.status, 1);
    assert.match(bad.stderr, /UnknownSchedulerError: .*heun/);
    const missing = run(["generate", "a cat", "--model", path.join(dir, "nope")]);
    assert.strictEqual(missing.status, 1);
    assert.match(missing.stderr, /nope/);
  });
});
