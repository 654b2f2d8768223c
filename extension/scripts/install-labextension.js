#!/usr/bin/env node
/**
 * Installs the built labextension the way a Python package does: labextension/ copied to
 * <prefix>/share/jupyter/labextensions/pixart-ts-jupyterlab with an install.json, where <prefix> is the chosen
 * Python's sys.prefix (a venv or conda env), or the user's Jupyter data dir with --user. JupyterLab finds it at
 * start; no rebuild of JupyterLab. Then checks that `jupyter labextension list` shows it enabled.
 * Usage: node scripts/install-labextension.js [--python PATH] [--user] [--uninstall]
 */
"use strict";
const fs = require("fs");
const path = require("path");
const { spawnSync } = require("child_process");
const { choosePython, run, fail } = require("./jupyter");

const root = path.resolve(__dirname, "..");
const pkg = require(path.join(root, "package.json"));
const built = path.join(root, pkg.jupyterlab.outputDir);
const python = choosePython();
const argv = process.argv.slice(2);

const dataDir = argv.includes("--user")
  ? run(python, ["-m", "jupyter", "--data-dir"], { capture: true }).trim()
  : path.join(run(python, ["-c", "import sys; print(sys.prefix)"], { capture: true }).trim(), "share", "jupyter");
const target = path.join(dataDir, "labextensions", pkg.name);

fs.rmSync(target, { recursive: true, force: true });
if (argv.includes("--uninstall")) {
  console.log(`Removed ${target}`);
  process.exit(0);
}
if (!fs.existsSync(path.join(built, "package.json"))) fail(`no built labextension in ${built}; run \`npm run build\` in extension/ first`);
fs.mkdirSync(path.dirname(target), { recursive: true });
fs.cpSync(built, target, { recursive: true });
fs.writeFileSync(
  path.join(target, "install.json"),
  JSON.stringify({ packageManager: "npm", packageName: pkg.name, uninstallInstructions: "node extension/scripts/install-labextension.js --uninstall (in the pixart-ts checkout)" }, null, 2) + "\n",
);

// `labextension list` writes to stderr and colours its words; read both streams without the colour codes.
const listed = spawnSync(python, ["-m", "jupyter", "labextension", "list"], { encoding: "utf8" });
const text = `${listed.stdout}${listed.stderr}`.replace(/\x1b\[[0-9;]*m/g, "");
const line = text.split("\n").find((l) => l.includes(pkg.name));
if (!line || !/enabled\s+OK/.test(line)) fail(`installed into ${target}, but \`jupyter labextension list\` does not show ${pkg.name} enabled:\n${text}`);
console.log(`Installed the JupyterLab extension into ${target}\n  ${line.trim()}`);
