/**
 * Runs notebooks/00-kernel-smoke.ipynb with `jupyter execute` (nbclient) against this build's kernel and checks the
 * executed notebook: execution counts, execute_result from the display symbol, an updated display, stream output,
 * a TSError in the cell tagged raises-exception, and the cell after it.
 *
 * The notebook imports "../dist/src/display/display"; it runs from a temporary copy whose ../dist links to the build
 * under test, so neither the repository's notebooks/ nor dist/ is touched.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { repoRoot } from "../helpers/paths";
import { buildRoot } from "./kernel-client";
import { run, tempJupyterPath, venvBin } from "./jupyter-env";

interface Output {
  output_type: string;
  data?: { [mime: string]: unknown };
  text?: string | string[];
  ename?: string;
  evalue?: string;
  execution_count?: number;
}

interface Cell {
  cell_type: string;
  source: string | string[];
  execution_count?: number | null;
  outputs?: Output[];
}

/** nbformat stores multi-line strings as lists of lines. */
const joined = (text: unknown): string => (Array.isArray(text) ? text.join("") : String(text ?? ""));

describe("kernel notebook (jupyter execute)", function () {
  this.timeout(300000);
  let work: string | undefined;
  let jupyterPath: string | undefined;
  let cells: Cell[];

  before(async () => {
    const jupyter = venvBin("jupyter");
    work = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-notebook-test-"));
    fs.mkdirSync(path.join(work, "notebooks"));
    fs.symlinkSync(buildRoot, path.join(work, "dist"));
    const notebook = path.join(work, "notebooks", "00-kernel-smoke.ipynb");
    fs.copyFileSync(path.join(repoRoot(), "notebooks", "00-kernel-smoke.ipynb"), notebook);
    jupyterPath = tempJupyterPath("pixart-ts"); // the name in the notebook's metadata
    const { code, output } = await run(jupyter, ["execute", "--inplace", "--timeout=120", notebook], {
      env: { ...process.env, JUPYTER_PATH: jupyterPath },
      timeoutMs: 280000,
    });
    assert.strictEqual(code, 0, `jupyter execute failed:\n${output}`);
    cells = (JSON.parse(fs.readFileSync(notebook, "utf8")) as { cells: Cell[] }).cells.filter((c) => c.cell_type === "code");
  });

  after(() => {
    for (const dir of [work, jupyterPath]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const cellWith = (snippet: string): Cell => {
    const cell = cells.find((c) => joined(c.source).includes(snippet));
    assert.ok(cell, `no cell contains ${snippet}`);
    return cell;
  };

  it("numbers every code cell 1..n in order", () => {
    assert.deepStrictEqual(
      cells.map((c) => c.execution_count),
      cells.map((_, i) => i + 1),
    );
  });

  it("stores the last expression as execute_result", () => {
    const [out] = cellWith('const greeting = "pixart-ts kernel"').outputs!;
    assert.strictEqual(out!.output_type, "execute_result");
    assert.deepStrictEqual(Object.keys(out!.data!), ["text/plain"]);
    assert.strictEqual(joined(out!.data!["text/plain"]), "'pixart-ts kernel'");
  });

  it("stores the bundle of an object with the display symbol", () => {
    const [out] = cellWith("class Swatch").outputs!;
    assert.strictEqual(out!.output_type, "execute_result");
    assert.strictEqual(joined(out!.data!["text/plain"]), "Swatch(#c85028)");
    assert.match(joined(out!.data!["image/svg+xml"]), /fill="#c85028"/);
    assert.match(joined(out!.data!["text/html"]), /background:#c85028/);
  });

  it("keeps one display output, updated to its last state", () => {
    const outputs = cellWith("progressId").outputs!;
    assert.strictEqual(outputs.length, 1);
    assert.strictEqual(outputs[0]!.output_type, "display_data");
    assert.strictEqual(joined(outputs[0]!.data!["text/plain"]), "step 3 of 3");
  });

  it("stores stream output", () => {
    const [out] = cellWith("console.log").outputs!;
    assert.strictEqual(out!.output_type, "stream");
    assert.strictEqual(joined(out!.text), "stdout from pixart-ts kernel\n");
  });

  it("stores the type error with its name, and runs the next cell", () => {
    const [error] = cellWith('"twenty"').outputs!;
    assert.strictEqual(error!.output_type, "error");
    assert.strictEqual(error!.ename, "TSError");
    assert.match(error!.evalue!, /^1:7 - error TS2322/);
    const [out] = cellWith("greeting.length").outputs!;
    assert.strictEqual(out!.output_type, "execute_result");
    assert.strictEqual(joined(out!.data!["text/plain"]), "16");
  });
});
