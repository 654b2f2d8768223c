/**
 * Executes the tutorial notebooks (notebooks/01-quickstart, 02-under-8gb, 03-attention-maps,
 * 04-memory-profiling) with
 * `jupyter execute` against this build's kernel, on the tiny checkpoint, and checks what a reader sees: every cell
 * ran in order, images, live progress and memory reports rendered as rich outputs (custom types valid against their
 * schemas, every PNG decodable), and deleted models really gave their memory back.
 * The notebooks run from a temporary copy whose ../dist, ../test and ../models link to the build, the fixtures and the
 * default model (models/default.json) under test.
 * The committed notebooks are checked too: they carry their outputs, and those are valid.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { loadImage } from "canvas";
import { readDefaults } from "../../src/cli/defaults";
import type { AttentionPayload, LatentsPayload } from "../../src/display/payloads";
import { assertValidPayload, ATTENTION_MIME, LATENTS_MIME, payloadMimeTypes } from "../../src/display/schemas";
import { repoRoot } from "../helpers/paths";
import { buildRoot } from "../kernel/kernel-client";
import { run, tempJupyterPath, venvBin } from "../kernel/jupyter-env";

interface Output { output_type: string; data?: Record<string, unknown>; ename?: string; evalue?: string }
interface Cell { cell_type: string; source: string | string[]; execution_count?: number | null; outputs?: Output[] }

const text = (v: unknown): string => (Array.isArray(v) ? v.join("") : String(v ?? ""));

async function execute(name: string): Promise<Cell[]> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-tutorial-"));
  const jupyterPath = tempJupyterPath("pixart-ts");
  try {
    fs.mkdirSync(path.join(work, "notebooks"));
    fs.symlinkSync(buildRoot, path.join(work, "dist"));
    // The notebooks import the project by its package name ("pixart-ts"), found from this package.json.
    fs.copyFileSync(path.join(repoRoot(), "package.json"), path.join(work, "package.json"));
    fs.symlinkSync(path.join(repoRoot(), "test"), path.join(work, "test"));
    fs.symlinkSync(path.join(repoRoot(), "models"), path.join(work, "models")); // the default model (models/default.json)
    const notebook = path.join(work, "notebooks", name);
    fs.copyFileSync(path.join(repoRoot(), "notebooks", name), notebook);
    const env: NodeJS.ProcessEnv = { ...process.env, JUPYTER_PATH: jupyterPath, PIXART_TS_CACHE: path.join(work, "cache") };
    delete env["PIXART_MODEL"]; // the tiny checkpoint, whatever the caller's environment names
    const { code, output } = await run(venvBin("jupyter"), ["execute", "--inplace", "--timeout=240", notebook], {
      env,
      timeoutMs: 300_000,
    });
    assert.strictEqual(code, 0, `jupyter execute ${name} failed:\n${output}`);
    return (JSON.parse(fs.readFileSync(notebook, "utf8")) as { cells: Cell[] }).cells.filter((c) => c.cell_type === "code");
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(jupyterPath, { recursive: true, force: true });
  }
}

function resultOf(cells: Cell[], snippet: string): Output {
  const cell = cells.find((c) => text(c.source).includes(snippet));
  assert.ok(cell, `no cell contains ${snippet}`);
  const result = cell.outputs!.find((o) => o.output_type === "execute_result");
  assert.ok(result, `cell "${snippet}" has no execute_result: ${JSON.stringify(cell.outputs)}`);
  return result;
}

/** Every custom payload validates against its schema and every PNG decodes; returns how many of each. */
async function checkRichOutputs(cells: Cell[]): Promise<{ pngs: number; payloads: number }> {
  let pngs = 0;
  let payloads = 0;
  for (const out of cells.flatMap((c) => c.outputs ?? [])) {
    for (const [mime, value] of Object.entries(out.data ?? {})) {
      if (payloadMimeTypes().includes(mime)) {
        assertValidPayload(mime, value);
        payloads++;
      } else if (mime === "image/png") {
        const img = await loadImage(Buffer.from(text(value), "base64"));
        assert.ok(img.width > 0 && img.height > 0);
        pngs++;
      }
    }
  }
  return { pngs, payloads };
}

/** The live-progress output of the cell containing `snippet` (its final state, as nbclient saved it). */
function progressOf(cells: Cell[], snippet: string): LatentsPayload {
  const cell = cells.find((c) => text(c.source).includes(snippet));
  assert.ok(cell, `no cell contains ${snippet}`);
  const shown = cell.outputs!.find((o) => o.output_type === "display_data" && o.data?.[LATENTS_MIME]);
  assert.ok(shown, `cell "${snippet}" has no progress output: ${JSON.stringify(cell.outputs?.map((o) => Object.keys(o.data ?? {})))}`);
  return shown.data![LATENTS_MIME] as LatentsPayload;
}

/** A picture of the default model, shown enlarged to models/default.json's displaySize. */
async function assertPng(out: Output): Promise<void> {
  const png = Buffer.from(text(out.data!["image/png"]), "base64");
  assert.deepStrictEqual([...png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join(""), "PNG");
  const { displaySize } = await readDefaults();
  assert.strictEqual(text(out.data!["text/plain"]), `PixArtImage ${displaySize}×${displaySize}`);
}

describe("tutorial notebooks (jupyter execute, tiny checkpoint)", function () {
  this.timeout(600_000);

  it("01-quickstart: runs every cell, shows the image and the memory report", async () => {
    const cells = await execute("01-quickstart.ipynb");
    assert.deepStrictEqual(cells.map((c) => c.execution_count), cells.map((_, i) => i + 1));
    assert.ok(cells.every((c) => !c.outputs!.some((o) => o.output_type === "error")));
    await assertPng(resultOf(cells, "const { images }"));
    const progress = progressOf(cells, "const { images }");
    assert.strictEqual(progress.done, true);
    assert.deepStrictEqual(progress.steps.map((s) => s.step), Array.from({ length: 12 }, (_, i) => i + 1));
    const load = cells[0].outputs!.find((o) => o.output_type === "display_data")!;
    assert.match(text(load.data!["text/plain"]), /^fromPretrained done in .*\n  ✓ load tokenizer/);
    const seen = cells.find((c) => text(c.source).includes("const seen"))!;
    assert.ok(!seen.outputs!.some((o) => o.output_type === "display_data"), "progress: false still showed progress");
    const checked = await checkRichOutputs(cells);
    assert.ok(checked.pngs >= 4 && checked.payloads >= 3, JSON.stringify(checked));
    assert.match(text(resultOf(cells, "const seen").data!["text/plain"]), /timesteps: \[ 999, 749, 500, 250 \]/);
    const lastReport = cells.filter((c) => text(c.source).trim() === "pipe.memoryReport()").pop()!;
    const report = lastReport.outputs!.find((o) => o.output_type === "execute_result")!.data!["application/vnd.pixart.memory+json"] as { components: { name: string; loaded: boolean }[] };
    assert.deepStrictEqual(report.components.map((c) => c.loaded), [true, true, true]);
  });

  it("02-under-8gb: each delete + flush shows the model gone; the VAE decodes the latents", async () => {
    const cells = await execute("02-under-8gb.ipynb");
    assert.ok(cells.every((c) => !c.outputs!.some((o) => o.output_type === "error")));
    const loaded = (snippet: string) =>
      (resultOf(cells, snippet).data!["application/vnd.pixart.memory+json"] as { components: { loaded: boolean }[] }).components.map((c) => c.loaded);
    assert.deepStrictEqual(loaded("delete pipe.textEncoder"), [false, false, false]);
    assert.deepStrictEqual(loaded("delete pipe.transformer"), [false, false, false]);
    await assertPng(resultOf(cells, "decodeLatents"));
    const timeline = (resultOf(cells, "pipe.memoryReport()").data!["application/vnd.pixart.memory+json"] as { timeline: { label: string }[] }).timeline;
    const labels = timeline.map((e) => e.label);
    for (const label of ["load textEncoder", "delete textEncoder", "load transformer", "delete transformer", "load vae", "decode"]) {
      assert.ok(labels.includes(label), `timeline lacks "${label}": ${labels.join(", ")}`);
    }
    assert.ok(labels.indexOf("delete textEncoder") < labels.indexOf("load transformer"));
    assert.strictEqual(progressOf(cells, "await pipe.load(\"transformer\")").numInferenceSteps, 8);
    await checkRichOutputs(cells);
  });

  it("04-memory-profiling: stage and quantization tables, and every delete + flush gives memory back", async () => {
    const cells = await execute("04-memory-profiling.ipynb");
    assert.deepStrictEqual(cells.map((c) => c.execution_count), cells.map((_, i) => i + 1));
    assert.ok(cells.every((c) => !c.outputs!.some((o) => o.output_type === "error")));
    const markdown = (snippet: string) => {
      const cell = cells.find((c) => text(c.source).includes(snippet))!;
      return text(cell.outputs!.find((o) => o.data?.["text/markdown"])!.data!["text/markdown"]);
    };
    assert.match(markdown("const rows"), /\| denoise \(10 steps\) \| [\d.]+ s \|/);
    const quant = markdown("const quantRows");
    for (const variant of ["fp32", "int8", "int4"]) assert.match(quant, new RegExp(`\\| ${variant} \\|`));
    const cyclesCell = cells.find((c) => text(c.source).includes("const cycles"))!;
    const cycles = cyclesCell.outputs!.find((o) => o.data?.["application/json"])!.data!["application/json"] as
      { weightsLoaded: number; weightsAfterFlush: number; rssLoaded: number; rssAfterFlush: number }[];
    assert.strictEqual(cycles.length, 5);
    for (const c of cycles) {
      assert.ok(c.weightsLoaded > 0 && c.weightsAfterFlush === 0, JSON.stringify(c));
      assert.ok(c.rssAfterFlush < c.rssLoaded, `RSS did not drop after delete + flush: ${JSON.stringify(c)}`);
    }
    const checked = await checkRichOutputs(cells);
    assert.ok(checked.pngs >= 4 && checked.payloads >= 4, JSON.stringify(checked));
  });

  it("03-attention-maps: a heat map per word (valid payloads, decodable PNGs), centroids, a steps subset with raw probabilities", async () => {
    const cells = await execute("03-attention-maps.ipynb");
    assert.deepStrictEqual(cells.map((c) => c.execution_count), cells.map((_, i) => i + 1));
    assert.ok(cells.every((c) => !c.outputs!.some((o) => o.output_type === "error")));
    const bundles = cells.flatMap((c) => c.outputs!.filter((o) => o.data?.[ATTENTION_MIME]));
    assert.strictEqual(bundles.length, 2);
    for (const out of bundles) {
      const payload = out.data![ATTENTION_MIME] as AttentionPayload;
      assert.deepStrictEqual(payload.images[0].words.map((w) => w.text), ["a", "red", "circle", "at", "the", "top", "left", "on", "a", "blue", "background"]);
      assert.deepStrictEqual(payload.images[0].wordMaps.dims.slice(0, 1), [11]);
      assert.match(text(out.data!["text/plain"]), /Cross-attention maps/);
    }
    assert.deepStrictEqual((bundles[1].data![ATTENTION_MIME] as AttentionPayload).steps, [0, 1]);
    assert.strictEqual(text(resultOf(cells, "const { height, width }").data!["text/plain"]).match(/ y \d\.\d\d {2}x \d\.\d\d/g)?.length, 11);
    const stream = cells.flatMap((c) => c.outputs!.filter((o) => o.output_type === "stream")).map((o) => text((o as { text?: unknown }).text)).join("");
    assert.match(stream, /step 0: [\d.]+% of attention on <\/s> .*\nstep 1: /);
    const checked = await checkRichOutputs(cells);
    assert.ok(checked.pngs >= 2 && checked.payloads >= 2, JSON.stringify(checked));
  });

  it("the committed notebooks carry their outputs: valid payloads, decodable PNGs", async () => {
    for (const name of ["01-quickstart.ipynb", "02-under-8gb.ipynb", "03-attention-maps.ipynb", "04-memory-profiling.ipynb"]) {
      const nb = JSON.parse(fs.readFileSync(path.join(repoRoot(), "notebooks", name), "utf8")) as { cells: Cell[] };
      const code = nb.cells.filter((c) => c.cell_type === "code");
      assert.ok(code.every((c) => c.execution_count !== null), `${name} was not committed executed (run make_tutorials.py --execute)`);
      assert.ok(code.every((c) => !c.outputs!.some((o) => o.output_type === "error")), `${name} has an error output`);
      const checked = await checkRichOutputs(code);
      assert.ok(checked.pngs >= 2, `${name}: ${JSON.stringify(checked)}`);
    }
  });
});
