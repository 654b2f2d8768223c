/**
 * Runs jupyter_kernel_test (the upstream conformance suite, configured in test_conformance.py) against this build's
 * kernel through jupyter_client, with the kernel spec in a temporary JUPYTER_PATH. Every check the suite offers
 * must run and pass: none may be skipped.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { repoRoot } from "../helpers/paths";
import { displayModule } from "./kernel-client";
import { run, tempJupyterPath, venvBin } from "./jupyter-env";

describe("kernel conformance (jupyter_kernel_test)", function () {
  this.timeout(300000);
  let jupyterPath: string | undefined;

  after(() => {
    if (jupyterPath) fs.rmSync(jupyterPath, { recursive: true, force: true });
  });

  it("passes every check of the suite, none skipped", async () => {
    const python = venvBin("python");
    jupyterPath = tempJupyterPath("pixart-ts-conformance");
    const env = {
      ...process.env,
      JUPYTER_PATH: jupyterPath,
      PIXART_KERNEL_NAME: "pixart-ts-conformance",
      PIXART_DISPLAY_MODULE: displayModule,
    };
    const script = path.join(repoRoot(), "test", "kernel", "test_conformance.py");
    const { code, output } = await run(python, [script], { env, cwd: repoRoot(), timeoutMs: 280000 });
    assert.strictEqual(code, 0, `jupyter_kernel_test failed:\n${output}`);
    const results = output.split("\n").filter((l) => / \.\.\. /.test(l));
    assert.ok(results.length >= 13, `expected at least 13 checks, got:\n${output}`);
    const notOk = results.filter((l) => !/ \.\.\. ok$/.test(l));
    assert.deepStrictEqual(notOk, [], `checks that did not pass:\n${output}`);
  });
});
