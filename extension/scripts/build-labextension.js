#!/usr/bin/env node
/**
 * Builds the prebuilt (federated) labextension into labextension/ with @jupyterlab/builder (this package's
 * devDependency) against the core packages of the installed JupyterLab (its staging/package.json), so the shared
 * modules (lumino, @jupyterlab/*) come from JupyterLab at run time and are not bundled. This is what
 * `jupyter labextension build` did before JupyterLab 4.6 handed that command to the separate jupyter-builder tool.
 * Usage: node scripts/build-labextension.js [--python PATH] [--development]
 */
"use strict";
const fs = require("fs");
const path = require("path");
const { choosePython, run, fail } = require("./jupyter");

const root = path.resolve(__dirname, "..");
const python = choosePython();
const corePath = run(python, ["-c", "import jupyterlab, os; print(os.path.join(os.path.dirname(jupyterlab.__file__), 'staging'))"], { capture: true }).trim();
if (!fs.existsSync(path.join(corePath, "package.json"))) fail(`JupyterLab's core packages are not at ${corePath}; is jupyterlab 4 installed in ${python}?`);
const builder = require.resolve("@jupyterlab/builder/lib/build-labextension.js", { paths: [root] });
const args = [builder, "--core-path", corePath];
if (process.argv.includes("--development")) args.push("--development");
args.push(root);
run(process.execPath, args);
