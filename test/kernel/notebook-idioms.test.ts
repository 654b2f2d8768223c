/**
 * The idioms of idioms.ts as one notebook (67 code cells; the failing ones tagged raises-exception), run with
 * `jupyter execute` against this build's kernel in a workspace laid out like the repository; every cell's stored
 * outputs are checked against the same expectations as the protocol test.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { checkIdiom, idioms, IdiomOutcome, makeIdiomWorkspace } from "./idioms";
import { run, tempJupyterPath, venvBin } from "./jupyter-env";

interface Output {
  output_type: string;
  name?: string;
  data?: { [mime: string]: unknown };
  text?: string | string[];
  ename?: string;
  evalue?: string;
  traceback?: string[];
}

interface Cell {
  cell_type: string;
  execution_count?: number | null;
  outputs?: Output[];
}

const joined = (text: unknown): string => (Array.isArray(text) ? text.join("") : String(text ?? ""));

function notebook(): object {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: "pixart-ts", display_name: "TypeScript (pixart-ts)", language: "typescript" } },
    cells: idioms.map((idiom, i) => ({
      id: `idiom-${i}`,
      cell_type: "code",
      metadata: idiom.error ? { tags: ["raises-exception"] } : {},
      source: idiom.code,
      outputs: [],
      execution_count: null,
    })),
  };
}

function outcome(cell: Cell): IdiomOutcome {
  const outputs = cell.outputs ?? [];
  const result = outputs.find((o) => o.output_type === "execute_result");
  const error = outputs.find((o) => o.output_type === "error");
  return {
    count: Number(cell.execution_count),
    result: result ? joined(result.data?.["text/plain"]) : undefined,
    stdout: outputs.filter((o) => o.output_type === "stream" && o.name === "stdout").map((o) => joined(o.text)).join(""),
    error: error ? { ename: String(error.ename), evalue: String(error.evalue), traceback: error.traceback ?? [] } : undefined,
  };
}

describe("kernel: TypeScript idioms as a notebook (jupyter execute)", function () {
  this.timeout(300000);
  let root: string | undefined;
  let jupyterPath: string | undefined;
  let cells: Cell[] = [];

  before(async () => {
    const ws = makeIdiomWorkspace();
    root = ws.root;
    const file = path.join(ws.notebooks, "idioms.ipynb");
    fs.writeFileSync(file, JSON.stringify(notebook(), null, 1));
    jupyterPath = tempJupyterPath("pixart-ts");
    const { code, output } = await run(venvBin("jupyter"), ["execute", "--inplace", "--timeout=120", file], {
      env: { ...process.env, JUPYTER_PATH: jupyterPath },
      timeoutMs: 280000,
    });
    assert.strictEqual(code, 0, `jupyter execute failed:\n${output}`);
    cells = (JSON.parse(fs.readFileSync(file, "utf8")) as { cells: Cell[] }).cells;
  });

  after(() => {
    for (const dir of [root, jupyterPath]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("has at least 40 idiom cells, all run in order", () => {
    assert.ok(idioms.length >= 40, `${idioms.length} idioms`);
    assert.deepStrictEqual(
      cells.map((c) => c.execution_count),
      cells.map((_, i) => i + 1),
    );
  });

  idioms.forEach((idiom, i) => {
    it(idiom.title, () => checkIdiom(idiom, outcome(cells[i]!)));
  });
});
