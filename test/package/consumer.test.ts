/**
 * The package as a consumer gets it: `npm pack` of a copy of this checkout (so the packing build never touches
 * the dist/ these tests run from), the tarball installed into a new project that has no .npmrc and no
 * ONNXRUNTIME_NODE_INSTALL (its package.json denies onnxruntime-node's CUDA download, as README says), then used
 * from CommonJS, ESM and strict TypeScript (lib ES2022, no DOM).
 *
 * Slow (the install compiles canvas from source here: ~1-3 min): one pack and one install are shared by all
 * the checks of a run, every step has its own time limit, and the temporary folders are removed afterwards.
 */
import * as assert from "assert";
import { execFileSync, spawnSync, type SpawnSyncReturns } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { fixturesDir, repoRoot } from "../helpers/paths";

const root = repoRoot();
const model = path.join(fixturesDir, "tiny-square", "pipeline");
const MINUTE = 60_000;

/** The environment of a consumer's shell: none of npm's variables from the `npm test` that runs us. */
function consumerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || k === "ONNXRUNTIME_NODE_INSTALL" || k === "INIT_CWD" || k === "NODE_OPTIONS") continue;
    env[k] = v;
  }
  return env;
}

function sh(cmd: string, args: string[], cwd: string, timeoutMs: number): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env: consumerEnv(), encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`${cmd} ${args.join(" ")} in ${cwd}: ${r.error.message}`);
  return r;
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  assert.strictEqual(r.status, 0, `${what} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: { path: string }[];
}

describe("package: pack, install into a new project, use from CJS, ESM and TypeScript", function () {
  this.timeout(20 * MINUTE);
  let work: string;
  let consumer: string;
  let pack: PackResult;
  let tarball: string;
  let install: SpawnSyncReturns<string>;

  before(function () {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-pack-"));
    // A copy of the checkout's files (tracked and not ignored), with this checkout's node_modules for the build.
    const src = path.join(work, "src-copy");
    const files = execFileSync("git", ["ls-files", "-co", "--exclude-standard", "-z"], { cwd: root, encoding: "utf8" }).split("\0").filter(Boolean);
    for (const f of files) {
      const from = path.join(root, f);
      if (!fs.existsSync(from) || fs.lstatSync(from).isDirectory()) continue;
      fs.mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
      fs.cpSync(from, path.join(src, f), { dereference: false, verbatimSymlinks: true });
    }
    fs.symlinkSync(path.join(root, "node_modules"), path.join(src, "node_modules"));
    const out = ok(sh("npm", ["pack", "--json", "--pack-destination", work], src, 10 * MINUTE), "npm pack");
    // npm prints the prepack script's banner on stdout too; the JSON starts at a line that is just "[".
    const json = out.search(/^\[\s*$/m);
    assert.ok(json >= 0, `no JSON in npm pack's output:\n${out}`);
    pack = (JSON.parse(out.slice(json)) as PackResult[])[0];
    tarball = path.join(work, pack.filename);
    console.log(`      tarball ${pack.filename}: ${(pack.size / 1024).toFixed(0)} KiB packed, ${(pack.unpackedSize / 1024).toFixed(0)} KiB ` +
      `unpacked, ${pack.entryCount} files`);

    consumer = path.join(work, "consumer");
    fs.mkdirSync(consumer);
    const rootPkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { devDependencies: Record<string, string> };
    fs.writeFileSync(path.join(consumer, "package.json"), JSON.stringify({
      name: "pixart-consumer", version: "1.0.0", private: true,
      dependencies: { "pixart-ts": `file:${tarball}` },
      devDependencies: { typescript: rootPkg.devDependencies["typescript"], "@types/node": rootPkg.devDependencies["@types/node"] },
      // What README's "Use it in your project" tells an npm >= 11.19 user to write: deny onnxruntime-node's postinstall
      // (a CUDA download from a host unreachable here), allow canvas's build. No .npmrc, no environment variable.
      allowScripts: { "onnxruntime-node": false, canvas: true },
    }, null, 2));
    install = sh("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline"], consumer, 15 * MINUTE);
  });

  after(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it("the tarball holds dist/, package.json, README and LICENSE only: nothing from test/, tools/, .ci/, no maps, no tarballs", () => {
    const paths = pack.files.map((f) => f.path);
    const stray = paths.filter((p) => !/^(dist\/(src|kernel\/src)\/|package\.json$|README\.md$|LICENSE$)/.test(p) || /\.map$|\.tgz$/.test(p));
    assert.deepStrictEqual(stray, []);
    for (const wanted of ["dist/src/index.js", "dist/src/index.d.ts", "dist/src/cli/main.js", "dist/kernel/src/index.js", "dist/src/schedulers/index.d.ts"]) {
      assert.ok(paths.includes(wanted), wanted);
    }
    assert.ok(!paths.some((p) => /(^|\/)(test|tools|\.ci|bench)\//.test(p)));
  });

  it("installs with no .npmrc and no ONNXRUNTIME_NODE_INSTALL; the kernel's tslab and zeromq are not installed", () => {
    ok(install, "npm install of the tarball");
    assert.ok(!fs.existsSync(path.join(consumer, ".npmrc")));
    assert.ok(fs.existsSync(path.join(consumer, "node_modules", "pixart-ts", "dist", "src", "index.js")));
    for (const peer of ["tslab", "zeromq"]) assert.ok(!fs.existsSync(path.join(consumer, "node_modules", peer)), `${peer} was installed`);
  });

  it("CommonJS: require the root and a subpath, generate an image; deep dist paths are not exported", () => {
    ok(install, "install");
    fs.writeFileSync(path.join(consumer, "use.cjs"), `
const assert = require("assert");
const { PixArtSigmaPipeline, SchedulerUsageError, PipelineBusyError } = require("pixart-ts");
const { DDIMScheduler } = require("pixart-ts/schedulers");
assert.strictEqual(typeof SchedulerUsageError, "function");
assert.strictEqual(typeof PipelineBusyError, "function");
assert.strictEqual(typeof DDIMScheduler, "function");
assert.throws(() => require("pixart-ts/dist/src/io/json"), { code: "ERR_PACKAGE_PATH_NOT_EXPORTED" });
(async () => {
  const pipe = await PixArtSigmaPipeline.fromPretrained(${JSON.stringify(model)});
  const { images } = await pipe.call({ prompt: "a cat", numInferenceSteps: 2, seed: 0, useResolutionBinning: false });
  await pipe.dispose();
  console.log("cjs", images[0].width, images[0].height, require("pixart-ts/package.json").version);
})().catch((e) => { console.error(e); process.exit(1); });
`);
    assert.match(ok(sh(process.execPath, ["use.cjs"], consumer, 3 * MINUTE), "CJS use"), /^cjs 64 64 \d+\.\d+\.\d+$/m);
  });

  it("ESM: named imports from the root and from subpaths, generate an image", () => {
    ok(install, "install");
    fs.writeFileSync(path.join(consumer, "use.mjs"), `
import assert from "node:assert";
import { PixArtSigmaPipeline, InterruptedError } from "pixart-ts";
import { EulerDiscreteScheduler } from "pixart-ts/schedulers";
import { T5Tokenizer } from "pixart-ts/tokenizer";
import { display } from "pixart-ts/display";
import { defaultKernelName } from "pixart-ts/kernel";
assert.strictEqual(typeof InterruptedError, "function");
assert.strictEqual(typeof display, "function");
assert.strictEqual(defaultKernelName, "pixart-ts");
const pipe = await PixArtSigmaPipeline.fromPretrained(${JSON.stringify(model)});
assert.ok(pipe.tokenizer instanceof T5Tokenizer);
const { images } = await pipe.call({ prompt: "a cat", numInferenceSteps: 2, seed: 0, useResolutionBinning: false });
await pipe.dispose();
console.log("esm", images[0].width, typeof EulerDiscreteScheduler);
`);
    assert.match(ok(sh(process.execPath, ["use.mjs"], consumer, 3 * MINUTE), "ESM use"), /^esm 64 function$/m);
  });

  it("strict TypeScript with lib [\"ES2022\"] and no skipLibCheck: await using, a subpath import, images without `!`", () => {
    ok(install, "install");
    fs.writeFileSync(path.join(consumer, "tsconfig.json"), JSON.stringify({
      compilerOptions: {
        target: "ES2022", module: "nodenext", moduleResolution: "nodenext", lib: ["ES2022"], types: ["node"],
        strict: true, skipLibCheck: false, outDir: "out",
      },
      files: ["use.ts"],
    }, null, 2));
    fs.writeFileSync(path.join(consumer, "use.ts"), `
import { PixArtSigmaPipeline, PipelineBusyError, type CallOptions } from "pixart-ts";
import { DPMSolverMultistepScheduler, type Scheduler } from "pixart-ts/schedulers";
import { T5Tokenizer } from "pixart-ts/tokenizer";

async function main(): Promise<void> {
  await using pipe = await PixArtSigmaPipeline.fromPretrained(${JSON.stringify(model)});
  const options: CallOptions<"image"> = { prompt: "a cat", numInferenceSteps: 2, seed: 0, useResolutionBinning: false };
  const { images } = await pipe.call(options);
  const { latents } = await pipe.call({ ...options, outputType: "latent" });
  const scheduler: Scheduler = pipe.scheduler;
  const tokenizer: T5Tokenizer | null = pipe.tokenizer;
  const busy: typeof PipelineBusyError = PipelineBusyError;
  console.log("ts", images[0].width, latents.dims.length, scheduler instanceof DPMSolverMultistepScheduler, tokenizer !== null, busy.name);
}
main().catch((e: unknown) => { console.error(e); process.exit(1); });
`);
    ok(sh(process.execPath, [path.join(consumer, "node_modules", "typescript", "bin", "tsc"), "-p", "."], consumer, 3 * MINUTE), "tsc");
    assert.match(ok(sh(process.execPath, ["out/use.js"], consumer, 3 * MINUTE), "compiled TS"), /^ts 64 4 (true|false) true PipelineBusyError$/m);
  });

  it("the pixart bin runs (--version), and the kernel installer says what to install without tslab and zeromq", () => {
    ok(install, "install");
    const version = ok(sh(path.join(consumer, "node_modules", ".bin", "pixart"), ["--version"], consumer, MINUTE), "pixart --version");
    assert.match(version, /^\d+\.\d+\.\d+\n$/);
    const kernel = sh(path.join(consumer, "node_modules", ".bin", "pixart-kernel-install"), ["--user"], consumer, MINUTE);
    assert.strictEqual(kernel.status, 1);
    assert.match(kernel.stderr, /needs tslab and zeromq .*npm install tslab zeromq/);
  });
});
