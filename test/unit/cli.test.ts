import * as assert from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { createCanvas, loadImage } from "canvas";
import { PixArtSigmaPipeline, type CallOptions } from "../../src";
import { ProgressBar, StageProgress } from "../../src/cli/progress";
import { fixturesDir, repoRoot } from "../helpers/paths";

const cli = path.join(__dirname, "..", "..", "src", "cli", "main.js");
const square = path.join(fixturesDir, "tiny-square", "pipeline");
const wide = path.join(fixturesDir, "tiny-wide", "pipeline");
/** The stage lines of a run with classifier-free guidance, from the pipeline's progress events. */
const STAGES = ["load tokenizer", "load textEncoder", "load transformer", "load vae", "encode prompt", "encode negative prompt",
  "denoise \\(2 steps\\)", "decode"];

function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [cli, ...args], { cwd: repoRoot(), encoding: "utf8", env: { ...process.env, ...env } });
}

async function rgb(file: string): Promise<Uint8ClampedArray> {
  const img = await loadImage(fs.readFileSync(file));
  const ctx = createCanvas(img.width, img.height).getContext("2d");
  ctx.drawImage(img, 0, 0);
  return ctx.getImageData(0, 0, img.width, img.height).data;
}

function maxLevels(a: Uint8ClampedArray, b: Uint8ClampedArray | Uint8Array, bChannels = 4): number {
  let worst = 0;
  for (let p = 0; p < a.length / 4; p++) {
    for (let c = 0; c < 3; c++) worst = Math.max(worst, Math.abs(a[p * 4 + c] - b[p * bChannels + c]));
  }
  return worst;
}

/** A fake terminal or pipe that records what is written. */
function sink(isTTY: boolean): { isTTY: boolean; text: string; write(s: string): boolean } {
  return { isTTY, text: "", write(s: string) { this.text += s; return true; } };
}

describe("pixart CLI", function () {
  this.timeout(300_000);
  let dir: string;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-cli-")); });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("generate writes a PNG of the requested size (binned, then resized back), with stage lines and a step bar", async () => {
    const out = path.join(dir, "wide.png");
    const r = run(["generate", "two children flying over green hills", "--model", wide,
      "--steps", "2", "--height", "78", "--width", "50", "--seed", "7", "--scheduler", "euler", "--out", out]);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stdout, /wrote .*wide\.png \(50×78\)/);
    for (const stage of STAGES) assert.match(r.stderr, new RegExp(`^${stage} \\d+\\.\\d+s$`, "m"), r.stderr);
    assert.match(r.stderr, /^denoise .* 2\/2 \[.*(it\/s|s\/it)\]$/m);
    assert.deepStrictEqual(fs.readFileSync(out).subarray(0, 4), Buffer.from([0x89, 0x50, 0x4e, 0x47]));
    const img = await loadImage(fs.readFileSync(out));
    assert.deepStrictEqual([img.width, img.height], [50, 78]);
  });

  it("--num-images writes one file per image; a .jpg --out writes JPEG", () => {
    const out = path.join(dir, "sq.jpg");
    const r = run(["generate", "a cat", "--model", square, "--steps", "1", "--no-binning", "--num-images", "2", "--out", out]);
    assert.strictEqual(r.status, 0, r.stderr);
    for (const f of ["sq-0.jpg", "sq-1.jpg"]) {
      assert.deepStrictEqual(fs.readFileSync(path.join(dir, f)).subarray(0, 3), Buffer.from([0xff, 0xd8, 0xff]), `${f} is a JPEG`);
    }
  });

  it("--version prints the package's version", () => {
    const r = run(["--version"]);
    assert.strictEqual(r.status, 0);
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot(), "package.json"), "utf8")) as { version: string };
    assert.strictEqual(r.stdout.trim(), pkg.version);
  });

  const missingFolderOut = path.join(os.tmpdir(), "pixart-no-such-folder", "x.png");
  for (const [args, pattern] of [
    [["generate", "a cat"], /--model <dir\|repo id>' not specified/],
    [["generate", "a cat", "-m", square, "--steps", "two"], /--steps two: expects an integer /],
    [["generate", "a cat", "-m", square, "--steps", "-3"], /--steps -3: must be a positive integer /],
    [["generate", "a cat", "-m", square, "--steps", "0"], /--steps 0: must be a positive integer /],
    [["generate", "a cat", "-m", square, "--guidance", "lots"], /--guidance lots: expects a number /],
    [["generate", "a cat", "-m", square, "--max-sequence-length", "0"], /--max-sequence-length 0: must be a positive integer /],
    [["generate", "a cat", "-m", square, "--bogus"], /unknown option '--bogus'/],
    [["generate", "a cat", "-m", square, "--stpes", "3"], /unknown option '--stpes' \(Did you mean --steps\?\)/],
    [["generate", "a cat", "-m", square, "--scheduler", "heun"], /--scheduler heun: unknown scheduler; choose one of dpm, ddim, euler, euler-a, unipc/],
    [["generate", "a cat", "-m", square, "--quantize-text-encoder", "int3"], /--quantize-text-encoder int3: Allowed choices are int8, int4, none/],
    [["generate", "a cat", "-m", square, "--out", path.join(os.tmpdir(), "x.webp")], /extension must be \.png, \.jpg or \.jpeg/],
    [["generate", "a cat", "-m", square, "--no-binning", "--steps", "2000"], /--steps 2000: at most 1000 \(the scheduler's num_train_timesteps\)/],
    [["generate", "a cat", "-m", square, "--steps", "2"], /has no aspect-ratio table .*; pass --no-binning$/m],
    [["generate", "a cat", "-m", square, "--no-binning", "--height", "40"], /--height 40: must be a multiple of 16 .* with --no-binning/],
    // The output folder is checked before the model is even looked at.
    [["generate", "a cat", "-m", path.join(os.tmpdir(), "no-such-model"), "--out", missingFolderOut], /--out .*x\.png: the folder .* does not exist/],
    [["paint", "a cat"], /unknown command 'paint'/],
  ] as const) {
    it(`usage error, one line, exit 2, nothing loaded: ${args.filter((a) => a !== square).join(" ")}`, () => {
      const r = run([...args]);
      assert.strictEqual(r.status, 2, r.stderr);
      assert.match(r.stderr, /^pixart: [^\n]+\n$/, "exactly one line");
      assert.match(r.stderr, pattern);
      assert.doesNotMatch(r.stderr, /TypeError|at .*\.js/);
      assert.strictEqual(r.stdout, "");
    });
  }

  it("--out into a missing folder fails before loading a valid model", () => {
    const r = run(["generate", "a cat", "-m", square, "--no-binning", "--out", missingFolderOut]);
    assert.strictEqual(r.status, 2);
    assert.doesNotMatch(r.stderr, /^load/m);
    assert.ok(!fs.existsSync(path.dirname(missingFolderOut)));
  });

  it("a failure while running is one line with the error's name, exit 1", () => {
    const missing = run(["generate", "a cat", "--model", path.join(dir, "nope"), "--out", path.join(dir, "n.png")]);
    assert.strictEqual(missing.status, 1);
    assert.match(missing.stderr, /^pixart: PathNotFoundError: [^\n]*nope[^\n]*\n$/);
  });

  it("--max-sequence-length and --no-clean-caption give the images the library gives for maxSequenceLength and cleanCaption: false", async () => {
    const prompt = "Visit https://example.com for A Small Cactus with a happy face, in the Sahara desert at noon";
    const base: CallOptions<"image"> = { prompt, numInferenceSteps: 2, seed: 3, useResolutionBinning: false };
    const cases = [
      { flags: ["--max-sequence-length", "4"], options: { maxSequenceLength: 4 } },
      { flags: ["--no-clean-caption"], options: { cleanCaption: false } },
      { flags: [], options: {} },
    ];
    const pipe = await PixArtSigmaPipeline.fromPretrained(square);
    try {
      const got: Uint8ClampedArray[] = [];
      for (const [i, c] of cases.entries()) {
        const out = path.join(dir, `opt-${i}.png`);
        const r = run(["generate", prompt, "-m", square, "--steps", "2", "--seed", "3", "--no-binning", "--out", out, ...c.flags]);
        assert.strictEqual(r.status, 0, r.stderr);
        got.push(await rgb(out));
        const { images } = await pipe.call({ ...base, ...c.options });
        assert.ok(maxLevels(got[i], images[0].rgb, 3) <= 1, `${c.flags.join(" ") || "default"}: CLI and library images differ`);
      }
      // Each flag changes the picture (so the comparisons above would catch a flag that is ignored).
      assert.ok(maxLevels(got[0], got[2]) > 0, "--max-sequence-length 4 changed nothing");
      assert.ok(maxLevels(got[1], got[2]) > 0, "--no-clean-caption changed nothing");
    } finally {
      await pipe.dispose();
    }
  });

  it("--low-memory (staged: encode, delete, denoise, delete, decode) gives the default path's image within 1/255 (fp32 text encoder)", async () => {
    const args = ["generate", "a lighthouse on a cliff at dusk", "-m", wide, "--steps", "3", "--seed", "11", "--height", "78", "--width", "50"];
    const plain = run([...args, "--out", path.join(dir, "plain.png")]);
    assert.strictEqual(plain.status, 0, plain.stderr);
    const low = run([...args, "--low-memory", "--quantize-text-encoder", "none", "--out", path.join(dir, "low.png")]);
    assert.strictEqual(low.status, 0, low.stderr);
    for (const stage of STAGES) assert.match(low.stderr, new RegExp(`^${stage.replace("2 steps", "3 steps")} \\d+\\.\\d+s$`, "m"), low.stderr);
    // Staged: the text encoder is removed before the transformer loads, the transformer before the VAE loads.
    const order = ["encode prompt", "load transformer", "denoise", "load vae", "decode"].map((s) => low.stderr.search(new RegExp(`^${s}`, "m")));
    assert.deepStrictEqual([...order].sort((a, b) => a - b), order, low.stderr);
    assert.ok(maxLevels(await rgb(path.join(dir, "plain.png")), await rgb(path.join(dir, "low.png"))) <= 1);
  });

  it("--low-memory quantizes the text encoder to int8 by default", () => {
    const cache = path.join(dir, "qcache");
    const r = run(["generate", "a cat", "-m", square, "--steps", "1", "--no-binning", "--low-memory", "--out", path.join(dir, "q.png")],
      { PIXART_TS_CACHE: cache });
    assert.strictEqual(r.status, 0, r.stderr);
    assert.match(r.stderr, /^load textEncoder \d+\.\d+s$/m);
    assert.ok(fs.readdirSync(cache, { recursive: true }).length > 0, "the int8 weights went to the quantized cache");
  });
});

describe("CLI progress", () => {
  it("on a terminal the bar redraws in place, clears the end of its line, and finish() ends the line", () => {
    const tty = sink(true);
    const bar = new ProgressBar(10, "denoise", tty);
    for (let k = 1; k <= 10; k++) bar.update(k);
    bar.finish();
    bar.finish();
    const redraws = tty.text.split("\r").filter(Boolean);
    assert.strictEqual(redraws.length, 10);
    for (const r of redraws) assert.match(r, /\x1b\[K(\n)?$/);
    assert.ok(tty.text.endsWith("\x1b[K\n") && !tty.text.endsWith("\n\n"), "one newline at the end");
  });

  it("off a terminal it is throttled: a line at most every interval, and always the last step", () => {
    const pipe = sink(false);
    const bar = new ProgressBar(100, "denoise", pipe, 2000);
    const t0 = Date.now();
    for (let k = 1; k <= 100; k++) bar.update(k, t0 + k * 10); // 100 steps in one second
    bar.finish();
    const lines = pipe.text.trimEnd().split("\n");
    assert.strictEqual(lines.length, 2, pipe.text);
    assert.match(lines[0], / 1\/100 /);
    assert.match(lines[1], / 100\/100 /);
    assert.doesNotMatch(pipe.text, /\r|\x1b/);
  });

  it("a run that stops early off a terminal still prints the step it stopped at", () => {
    const pipe = sink(false);
    const bar = new ProgressBar(100, "denoise", pipe, 2000);
    const t0 = Date.now();
    for (let k = 1; k <= 37; k++) bar.update(k, t0 + k);
    bar.finish();
    assert.match(pipe.text.trimEnd().split("\n").pop()!, / 37\/100 /);
  });

  it("stage lines from progress events; a failing stage finishes the bar first, then says it failed, each on its own line", () => {
    const tty = sink(true);
    const progress = new StageProgress(tty);
    const base = { operation: "call" as const, elapsedMs: 0 };
    progress.listener({ ...base, type: "stage-start", stage: "encode", label: "encode prompt" });
    progress.listener({ ...base, type: "stage-end", stage: "encode", label: "encode prompt", durationMs: 1200 });
    progress.listener({ ...base, type: "stage-start", stage: "denoise", label: "denoise (5 steps)", totalSteps: 5 });
    const latents = { data: new Float32Array(1), dims: [1] };
    progress.listener({ ...base, type: "step", stage: "denoise", step: 2, totalSteps: 5, timestep: 500, stageElapsedMs: 10, itPerSec: 1, etaMs: 3, latents });
    progress.listener({ ...base, type: "stage-end", stage: "denoise", label: "denoise (5 steps)", durationMs: 3400, error: "boom" });
    const lines = tty.text.split("\n");
    assert.match(lines[0], /^encode prompt …\x1b\[K\r\x1b\[Kencode prompt 1\.2s$/);
    assert.match(lines[1], /^\rdenoise .* 2\/5 .*\x1b\[K$/);
    assert.strictEqual(lines[2], "\r\x1b[Kdenoise (5 steps) failed after 3.4s");
    assert.strictEqual(lines[3], "");
  });
});
