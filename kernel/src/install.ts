#!/usr/bin/env node
/**
 * Installs the kernel spec into the active Jupyter environment:
 *
 *   node dist/kernel/src/install.js [--user | --sys-prefix | --prefix DIR] [--name pixart-ts]
 *                                   [--display-name "TypeScript (pixart-ts)"] [--python PATH]
 *
 * kernel.json gets absolute paths (this node binary, this build's main.js), so nothing depends on PATH or
 * node_modules/.bin. The spec is placed with `<python> -m jupyter kernelspec install` of the chosen Python (--python,
 * else the active venv / conda env, else the repository's .venv, else python3), then checked with
 * `jupyter kernelspec list`.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export const defaultKernelName = "pixart-ts";
export const defaultDisplayName = "TypeScript (pixart-ts)";
/**
 * Node flags the product needs: --expose-gc lets memory reports force a collection before measuring;
 * --enable-source-maps shows library frames of tracebacks at their src/*.ts lines; --min-semi-space-size=16 starts
 * V8's young generation at its largest size (Node 20's default maximum for this heap), where it would otherwise
 * double once, a few hundred model loads into a session (cycles 200–300 of the soak): +16 MiB of RSS that looks like a leak
 * (bench/load-delete-soak.ts, docs/memory.md).
 */
export const kernelNodeFlags = ["--expose-gc", "--enable-source-maps", "--min-semi-space-size=16"];

/**
 * Environment the kernel starts with. MALLOC_ARENA_MAX=2: glibc gives every thread that allocates its own malloc
 * arena; a kernel starts a worker thread per model load (and onnxruntime its pool threads per session), and the
 * freed memory left scattered over those arenas wandered ±15–20 MiB over a load/delete soak. Two arenas keep RSS
 * flat and lower (docs/memory.md); the run-time cost is measured by bench/process-settings.ts.
 */
export const kernelEnv: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: "2" };

export class InstallError extends Error {
  override name = "InstallError";
}

export interface KernelSpecOptions {
  name?: string;
  displayName?: string;
  /** Absolute path of the node binary; defaults to the one running this script. */
  node?: string;
  /** Absolute path of the kernel's main.js; defaults to the one next to this file. */
  main?: string;
}

export interface KernelSpec {
  argv: string[];
  display_name: string;
  language: string;
  interrupt_mode: "signal" | "message";
  env: { [key: string]: string };
  metadata: { [key: string]: unknown };
}

export function kernelSpec(options: KernelSpecOptions = {}): KernelSpec {
  const node = options.node ?? process.execPath;
  const main = options.main ?? path.join(__dirname, "main.js");
  for (const [what, file] of [["node", node], ["main.js", main]] as const) {
    if (!path.isAbsolute(file)) throw new InstallError(`${what} path must be absolute, got ${file}`);
    if (!fs.existsSync(file)) throw new InstallError(`${what} not found at ${file} (build first: npm run build)`);
  }
  return {
    argv: [node, ...kernelNodeFlags, main, "{connection_file}"],
    display_name: options.displayName ?? defaultDisplayName,
    language: "typescript",
    // Jupyter sends interrupt_request on control; the kernel decides whether SIGINT is needed (kernel/src/io-worker.ts).
    // A raw SIGINT (signal mode, Ctrl-C in a terminal) works too, but can land between two vm calls.
    interrupt_mode: "message",
    env: { ...kernelEnv },
    metadata: { debugger: false },
  };
}

/** Writes `<dir>/kernel.json` (the layout `jupyter kernelspec install` and JUPYTER_PATH/kernels/<name> expect). */
/** The launcher's card images (kernel/logo in the repository), found from this file like the .venv. */
export const logoFiles = ["logo-64x64.png", "logo-svg.svg"];

function logoDir(): string | undefined {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const logos = path.join(dir, "kernel", "logo");
    if (logoFiles.every((f) => fs.existsSync(path.join(logos, f)))) return logos;
  }
  return undefined;
}

export function writeKernelSpec(dir: string, options: KernelSpecOptions = {}): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "kernel.json");
  fs.writeFileSync(file, JSON.stringify(kernelSpec(options), null, 2) + "\n");
  const logos = logoDir();
  if (logos) for (const f of logoFiles) fs.copyFileSync(path.join(logos, f), path.join(dir, f));
  return file;
}

export type Location = { kind: "user" } | { kind: "sys-prefix" } | { kind: "prefix"; prefix: string };

export interface InstallOptions extends KernelSpecOptions {
  python?: string;
  location?: Location;
}

/** The repository's .venv, found from this file (dist/kernel/src or .build/<name>/kernel/src). */
function repoVenvPython(): string | undefined {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const python = path.join(dir, ".venv", "bin", "python");
    if (fs.existsSync(path.join(dir, "package.json")) && fs.existsSync(python)) return python;
  }
  return undefined;
}

/** The Python whose Jupyter gets the kernel, and whether it is an environment (then --sys-prefix is the default). */
export function choosePython(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): { python: string; isEnv: boolean } {
  if (explicit) return { python: explicit, isEnv: false };
  for (const prefix of [env["VIRTUAL_ENV"], env["CONDA_PREFIX"]]) {
    if (prefix && fs.existsSync(path.join(prefix, "bin", "python"))) return { python: path.join(prefix, "bin", "python"), isEnv: true };
  }
  const venv = repoVenvPython();
  if (venv) return { python: venv, isEnv: true };
  return { python: "python3", isEnv: false };
}

function locationArgs(location: Location): string[] {
  if (location.kind === "user") return ["--user"];
  if (location.kind === "sys-prefix") return ["--sys-prefix"];
  return ["--prefix", location.prefix];
}

function runJupyter(python: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  const result = spawnSync(python, ["-m", "jupyter", ...args], { encoding: "utf8", env });
  if (result.error) throw new InstallError(`cannot run ${python}: ${result.error.message} (pass --python /path/to/python)`);
  if (result.status !== 0) {
    throw new InstallError(
      `\`${python} -m jupyter ${args.join(" ")}\` failed (exit ${result.status}); is Jupyter installed in that Python? ` +
        `Set up the environment as the README says, or pass --python.\n${result.stderr.trim()}`,
    );
  }
  return result.stdout;
}

export interface InstallResult {
  name: string;
  python: string;
  resourceDir: string;
  spec: KernelSpec;
}

/**
 * The kernel's own dependencies. They are optional peer dependencies of pixart-ts (the library never loads
 * them), so a consumer who wants the kernel installs them next to it.
 */
export const KERNEL_PEER_DEPENDENCIES = ["tslab", "zeromq"] as const;

/** Throws InstallError naming what to install when tslab or zeromq cannot be loaded from here. */
export function checkKernelDependencies(resolve: (id: string) => string = require.resolve): void {
  const missing = KERNEL_PEER_DEPENDENCIES.filter((id) => {
    try {
      resolve(id);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) {
    throw new InstallError(`the pixart-ts kernel needs ${missing.join(" and ")} (optional peer dependencies of pixart-ts); ` +
      `install them next to it: npm install ${missing.join(" ")}`);
  }
}

/** Installs the spec and checks that `jupyter kernelspec list` shows it with this build's argv. */
export function install(options: InstallOptions = {}): InstallResult {
  checkKernelDependencies();
  const name = options.name ?? defaultKernelName;
  if (!/^[a-z0-9._-]+$/i.test(name)) throw new InstallError(`--name ${JSON.stringify(name)}: use letters, digits, '.', '_' or '-'`);
  const { python, isEnv } = choosePython(options.python);
  const location = options.location ?? (isEnv ? { kind: "sys-prefix" } : { kind: "user" });
  const staging = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-kernelspec-"));
  const specDir = path.join(staging, name);
  try {
    const spec = kernelSpec(options);
    writeKernelSpec(specDir, options);
    runJupyter(python, ["kernelspec", "install", specDir, "--name", name, "--replace", ...locationArgs(location)]);
    // A custom prefix is only searched when it is on JUPYTER_PATH; check with it there.
    const env = location.kind === "prefix" ? { ...process.env, JUPYTER_PATH: path.join(location.prefix, "share", "jupyter") } : process.env;
    const listed = JSON.parse(runJupyter(python, ["kernelspec", "list", "--json"], env)) as {
      kernelspecs: { [name: string]: { resource_dir: string; spec: KernelSpec } };
    };
    const found = listed.kernelspecs[name];
    if (!found) throw new InstallError(`kernel ${name} was installed but \`jupyter kernelspec list\` does not show it`);
    if (JSON.stringify(found.spec.argv) !== JSON.stringify(spec.argv)) {
      throw new InstallError(`\`jupyter kernelspec list\` shows another ${name} first (${found.resource_dir}); remove it or use --name`);
    }
    return { name, python, resourceDir: found.resource_dir, spec };
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

export function parseArgs(argv: string[]): InstallOptions {
  const options: InstallOptions = {};
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith("--")) throw new InstallError(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--user") options.location = { kind: "user" };
    else if (arg === "--sys-prefix") options.location = { kind: "sys-prefix" };
    else if (arg === "--prefix") options.location = { kind: "prefix", prefix: path.resolve(value(i++, arg)) };
    else if (arg === "--name") options.name = value(i++, arg);
    else if (arg === "--display-name") options.displayName = value(i++, arg);
    else if (arg === "--python") options.python = value(i++, arg);
    else throw new InstallError(`unknown argument ${arg}; usage: install.js [--user|--sys-prefix|--prefix DIR] [--name N] [--display-name D] [--python PATH]`);
  }
  return options;
}

if (require.main === module) {
  try {
    const result = install(parseArgs(process.argv.slice(2)));
    console.log(`Installed Jupyter kernel "${result.name}" for ${result.python}`);
    console.log(`  kernel spec: ${path.join(result.resourceDir, "kernel.json")}`);
    console.log(`  command:     ${result.spec.argv.join(" ")}`);
    console.log(`Checked with \`jupyter kernelspec list\`. Pick "${result.spec.display_name}" in JupyterLab.`);
    const prefix = path.resolve(result.resourceDir, "..", "..");
    if (!process.env["JUPYTER_PATH"]?.split(path.delimiter).includes(prefix) && process.argv.includes("--prefix")) {
      console.log(`Note: Jupyter finds kernels under a custom --prefix only with JUPYTER_PATH=${prefix}`);
    }
  } catch (e) {
    console.error(e instanceof InstallError ? `${e.name}: ${e.message}` : e);
    process.exit(1);
  }
}
