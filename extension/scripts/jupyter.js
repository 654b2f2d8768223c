/**
 * The Python that runs Jupyter for the extension's build and install: --python PATH, else the active venv / conda
 * env, else the repository's .venv, else python3 (the same order as the kernel installer, kernel/src/install.ts).
 */
"use strict";
const fs = require("fs");
const path = require("path");
const { spawnSync } = require("child_process");

function choosePython(argv = process.argv.slice(2), env = process.env) {
  const i = argv.indexOf("--python");
  if (i >= 0 && argv[i + 1]) return argv[i + 1];
  for (const prefix of [env.VIRTUAL_ENV, env.CONDA_PREFIX]) {
    if (prefix && fs.existsSync(path.join(prefix, "bin", "python"))) return path.join(prefix, "bin", "python");
  }
  const repoVenv = path.resolve(__dirname, "..", "..", ".venv", "bin", "python");
  return fs.existsSync(repoVenv) ? repoVenv : "python3";
}

/** Runs `python args...`; exits with its message when it fails. */
function run(python, args, options = {}) {
  const result = spawnSync(python, args, { encoding: "utf8", stdio: options.capture ? ["ignore", "pipe", "pipe"] : "inherit", ...options });
  if (result.error) fail(`cannot run ${python}: ${result.error.message} (pass --python /path/to/python)`);
  if (result.status !== 0) fail(`\`${python} ${args.join(" ")}\` failed (exit ${result.status})${options.capture ? `\n${result.stderr}` : ""}`);
  return result.stdout;
}

function fail(message) {
  console.error(`pixart-ts-jupyterlab: ${message}`);
  process.exit(1);
}

module.exports = { choosePython, run, fail };
