/** Kernel spec installation: kernel.json contents, install into a prefix checked by jupyter, and each refusal. */
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { choosePython, install, InstallError, kernelSpec, parseArgs } from "../../kernel/src/install";
import { kernelMain } from "./kernel-client";
import { run, venvBin } from "./jupyter-env";

const isInstallError = (pattern: RegExp) => (e: Error) => e instanceof InstallError && pattern.test(e.message);

describe("kernel install", function () {
  this.timeout(120000);
  let tmp: string;

  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-install-test-"));
  });

  afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("writes absolute node and main.js paths with the kernel's node flags and environment", () => {
    const spec = kernelSpec({ main: kernelMain });
    assert.deepStrictEqual(spec.argv, [process.execPath, "--expose-gc", "--enable-source-maps", "--min-semi-space-size=16", kernelMain, "{connection_file}"]);
    assert.deepStrictEqual(spec.env, { MALLOC_ARENA_MAX: "2" });
    assert.strictEqual(spec.language, "typescript");
    assert.strictEqual(spec.interrupt_mode, "message");
    assert.ok(spec.argv.slice(0, 4).every((p) => p.startsWith("--") || path.isAbsolute(p)));
  });

  it("the node flags are ones this node accepts, and they start V8's young generation at its largest size", async () => {
    const spec = kernelSpec({ main: kernelMain });
    const flags = spec.argv.slice(1, spec.argv.indexOf(kernelMain));
    const probe = "const v8 = require('v8'); const s = v8.getHeapSpaceStatistics().find((x) => x.space_name === 'new_space');" +
      "console.log(JSON.stringify({ gc: typeof gc, newSpace: s.space_size }))";
    const plain = await run(process.execPath, ["-e", probe], { timeoutMs: 20_000 });
    const kernel = await run(process.execPath, [...flags, "-e", probe], { env: { ...process.env, ...spec.env }, timeoutMs: 20_000 });
    assert.strictEqual(kernel.code, 0, kernel.output);
    const a = JSON.parse(plain.output.trim()) as { newSpace: number };
    const b = JSON.parse(kernel.output.trim()) as { gc: string; newSpace: number };
    assert.strictEqual(b.gc, "function");
    assert.ok(b.newSpace >= 16 * 2 ** 20 && a.newSpace < b.newSpace, `new space ${a.newSpace} → ${b.newSpace}`);
  });

  it("installs into a prefix and `jupyter kernelspec list` shows it", async () => {
    const python = venvBin("python");
    const result = install({ python, location: { kind: "prefix", prefix: tmp }, name: "pixart-ts-install-test", main: kernelMain });
    const file = path.join(tmp, "share", "jupyter", "kernels", "pixart-ts-install-test", "kernel.json");
    assert.strictEqual(path.join(result.resourceDir, "kernel.json"), file);
    assert.deepStrictEqual(JSON.parse(fs.readFileSync(file, "utf8")).argv, result.spec.argv);
    const listed = await run(python, ["-m", "jupyter", "kernelspec", "list"], {
      env: { ...process.env, JUPYTER_PATH: path.join(tmp, "share", "jupyter") },
      timeoutMs: 60000,
    });
    assert.match(listed.output, /pixart-ts-install-test/);
    // The launcher card: Jupyter serves logo-64x64.png and logo-svg.svg from the kernel's resource directory.
    const png = fs.readFileSync(path.join(result.resourceDir, "logo-64x64.png"));
    assert.deepStrictEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [64, 64], "a 64×64 PNG");
    assert.match(fs.readFileSync(path.join(result.resourceDir, "logo-svg.svg"), "utf8"), /^<svg [^>]*viewBox="0 0 64 64"/);
  });

  it("installs from the command line", async () => {
    const cli = path.join(path.dirname(kernelMain), "install.js");
    const { code, output } = await run(process.execPath, [cli, "--prefix", tmp, "--name", "pixart-ts-cli", "--python", venvBin("python")], {
      timeoutMs: 60000,
    });
    assert.strictEqual(code, 0, output);
    assert.match(output, /Installed Jupyter kernel "pixart-ts-cli"/);
    assert.ok(fs.existsSync(path.join(tmp, "share", "jupyter", "kernels", "pixart-ts-cli", "kernel.json")));
  });

  it("uses the active virtual environment's Python and installs into it by default", () => {
    const venv = path.join(tmp, "venv");
    fs.mkdirSync(path.join(venv, "bin"), { recursive: true });
    fs.writeFileSync(path.join(venv, "bin", "python"), "");
    assert.deepStrictEqual(choosePython(undefined, { VIRTUAL_ENV: venv }), { python: path.join(venv, "bin", "python"), isEnv: true });
    assert.deepStrictEqual(choosePython(undefined, { CONDA_PREFIX: venv }), { python: path.join(venv, "bin", "python"), isEnv: true });
    assert.deepStrictEqual(choosePython("/opt/py", { VIRTUAL_ENV: venv }), { python: "/opt/py", isEnv: false });
  });

  it("refuses a Python that cannot be run, naming it", () => {
    assert.throws(() => install({ python: "/nonexistent/python", location: { kind: "prefix", prefix: tmp }, main: kernelMain }), isInstallError(/\/nonexistent\/python/));
  });

  it("refuses a Python without Jupyter", () => {
    const fake = path.join(tmp, "python");
    fs.writeFileSync(fake, "#!/bin/sh\necho 'No module named jupyter' >&2\nexit 1\n", { mode: 0o755 });
    assert.throws(() => install({ python: fake, location: { kind: "prefix", prefix: tmp }, main: kernelMain }), isInstallError(/is Jupyter installed/));
  });

  it("refuses a kernel name Jupyter cannot use", () => {
    assert.throws(() => install({ name: "bad name!", main: kernelMain }), isInstallError(/--name/));
  });

  it("refuses a relative or missing main.js", () => {
    assert.throws(() => kernelSpec({ main: "main.js" }), isInstallError(/absolute/));
    assert.throws(() => kernelSpec({ main: path.join(tmp, "main.js") }), isInstallError(/not found/));
  });

  it("parses the command line and refuses unknown arguments", () => {
    assert.deepStrictEqual(parseArgs(["--user", "--name", "k"]), { location: { kind: "user" }, name: "k" });
    assert.deepStrictEqual(parseArgs(["--prefix", "/p"]), { location: { kind: "prefix", prefix: "/p" } });
    assert.throws(() => parseArgs(["--global"]), isInstallError(/unknown argument --global/));
    assert.throws(() => parseArgs(["--name"]), isInstallError(/--name needs a value/));
  });
});
