/** The Python/Jupyter side for kernel tests: the repository's .venv and kernel specs in a temporary JUPYTER_PATH. */
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { writeKernelSpec } from "../../kernel/src/install";
import { repoRoot } from "../helpers/paths";
import { kernelMain } from "./kernel-client";

/** A program in <repo>/.venv/bin; throws with the set-up command when the venv is missing. */
export function venvBin(name: string): string {
  const file = path.join(repoRoot(), ".venv", "bin", name);
  if (!fs.existsSync(file)) {
    throw new Error(
      `${file} is missing. Create the Jupyter environment first: ` +
        "python3 -m venv .venv && .venv/bin/pip install -r tools/requirements.txt",
    );
  }
  return file;
}

/** A temporary JUPYTER_PATH holding only a kernel spec for this build's kernel, under `kernelName`. */
export function tempJupyterPath(kernelName: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-jupyter-path-"));
  writeKernelSpec(path.join(dir, "kernels", kernelName), { main: kernelMain });
  return dir;
}

export interface RunResult {
  code: number | null;
  output: string;
}

/** Runs a program to its end (killed after `timeoutMs`), collecting stdout and stderr together. */
export function run(file: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs: number }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
