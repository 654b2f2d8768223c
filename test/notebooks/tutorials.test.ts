/**
 * Executes the tutorial notebooks (notebooks/01-quickstart, 02-under-8gb) with `jupyter execute` against this
 * build's kernel, on the tiny checkpoint, and checks what a reader sees: every cell ran in order, images and
 * memory reports rendered as rich outputs, and the staged recipe really removed the models it deleted.
 * The notebooks run from a temporary copy whose ../dist and ../test link to the build and fixtures under test.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
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
    fs.symlinkSync(path.join(repoRoot(), "test"), path.join(work, "test"));
    const notebook = path.join(work, "notebooks", name);
    fs.copyFileSync(path.join(repoRoot(), "notebooks", name), notebook);
    const { code, output } = await run(venvBin("jupyter"), ["execute", "--inplace", "--timeout=240", notebook], {
      env: { ...process.env, JUPYTER_PATH: jupyterPath, PIXART_TS_CACHE: path.join(work, "cache") },
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

function assertPng(out: Output): void {
  const png = Buffer.from(text(out.data!["image/png"]), "base64");
  assert.deepStrictEqual([...png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join(""), "PNG");
  assert.match(text(out.data!["text/plain"]), /PixArtImage 64×64/);
}

describe("tutorial notebooks (jupyter execute, tiny checkpoint)", function () {
  this.timeout(600_000);

  it("01-quickstart: runs every cell, shows the image and the memory report", async () => {
    const cells = await execute("01-quickstart.ipynb");
    assert.deepStrictEqual(cells.map((c) => c.execution_count), cells.map((_, i) => i + 1));
    assert.ok(cells.every((c) => !c.outputs!.some((o) => o.output_type === "error")));
    assertPng(resultOf(cells, "const { images }"));
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
    assertPng(resultOf(cells, "decodeLatents"));
    const timeline = (resultOf(cells, "pipe.memoryReport()").data!["application/vnd.pixart.memory+json"] as { timeline: { label: string }[] }).timeline;
    const labels = timeline.map((e) => e.label);
    for (const label of ["load textEncoder", "delete textEncoder", "load transformer", "delete transformer", "load vae", "decode"]) {
      assert.ok(labels.includes(label), `timeline lacks "${label}": ${labels.join(", ")}`);
    }
    assert.ok(labels.indexOf("delete textEncoder") < labels.indexOf("load transformer"));
  });
});
