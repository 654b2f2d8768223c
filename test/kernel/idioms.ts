/**
 * TypeScript idioms a notebook user writes, each a cell with the output it must give, in the order they run
 * (later cells use earlier ones). Shared by the protocol test (kernel-idioms.test.ts) and the notebook test
 * (notebook-idioms.test.ts), which runs them as one notebook with `jupyter execute`.
 *
 * The workspace they run in looks like the repository: a package named "pixart-ts" whose dist/ is this build, the
 * cells in its notebooks/ folder, and an ESM-only package (typings only through its exports map) in node_modules.
 */
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { repoRoot } from "../helpers/paths";
import { buildRoot } from "./kernel-client";

export interface Idiom {
  title: string;
  code: string;
  /** The execute_result's text/plain; undefined: no execute_result. */
  result?: string;
  /** All stdout of the cell. */
  stdout?: string;
  /** The cell fails with this ename; `traceback` lines must match in order (`{n}`: the cell's execution count, `{n-1}`: the one before). */
  error?: { ename: string; evalue?: RegExp; traceback?: string[] };
}

export const idioms: Idiom[] = [
  { title: "a const for the next cells", code: 'const prompt = "a red fox"' },
  { title: "shorthand property of an earlier cell's const", code: "const opts = { prompt, steps: 2 }\nopts", result: "{ prompt: 'a red fox', steps: 2 }" },
  { title: "shorthand in a destructuring default", code: "function pick({ text = prompt }: { text?: string } = {}) { return text }\npick()", result: "'a red fox'" },
  { title: "destructuring default in a const", code: "const { missing = prompt } = {} as { missing?: string }\nmissing", result: "'a red fox'" },
  { title: "shorthand inside a callback", code: "[{ prompt }].map(({ prompt: p }) => p.length)", result: "[ 9 ]" },
  { title: "shorthand of several earlier names", code: "const seed = 7\nconst job = { prompt, seed, opts }\nObject.keys(job)", result: "[ 'prompt', 'seed', 'opts' ]" },
  { title: "shorthand in a destructuring assignment", code: "let w = 0, h = 0\n;({ w, h } = { w: 512, h: 768 })\nw * h", result: "393216" },
  { title: "re-declare a const", code: 'const prompt = "a blue bird"\nprompt', result: "'a blue bird'" },
  { title: "re-declare as let with another type", code: "let prompt = 42\nprompt + 1", result: "43" },
  { title: "a function", code: "function area(r: number) { return 3 * r * r }\narea(2)", result: "12" },
  { title: "re-declare the function with other parameters", code: "function area(w: number, h: number) { return w * h }\narea(2, 3)", result: "6" },
  { title: "a class", code: "class Point { constructor(public x: number) {} }\nnew Point(1)", result: "Point { x: 1 }" },
  { title: "re-declare the class", code: "class Point { constructor(public x: number, public y: number) {} }\nnew Point(1, 2)", result: "Point { x: 1, y: 2 }" },
  {
    title: "a cell that throws after declarations",
    code: 'const steps = 20\nconst guidance = 4.5\nthrow new Error("stop here")\nconst notReached = 1',
    error: { ename: "Error", evalue: /^stop here$/, traceback: ["cell [{n}], line 3:7"] },
  },
  { title: "what ran before the throw is defined", code: "[steps, guidance]", result: "[ 20, 4.5 ]" },
  { title: "what did not run is not declared", code: "notReached", error: { ename: "TSError", evalue: /Cannot find name 'notReached'/ } },
  { title: "a let for the next cells", code: "let counter = 1" },
  {
    title: "a failed cell re-declares one name and not another",
    code: 'let counter = "two"\nawait Promise.reject(new RangeError("async stop"))\nlet counterNever = 3',
    error: { ename: "RangeError", traceback: ["cell [{n}], line 2:22"] },
  },
  { title: "the re-declaration that ran holds, with its type", code: "counter.toUpperCase()", result: "'TWO'" },
  { title: "for await at the top level", code: "async function* countTo(n: number) { for (let i = 1; i <= n; i++) yield i }\nlet total = 0\nfor await (const i of countTo(4)) total += i\ntotal", result: "10" },
  { title: "await in a template literal", code: "`${await Promise.resolve(3)} foxes`", result: "'3 foxes'" },
  { title: "await in a const with object destructuring", code: "const { width, height } = await Promise.resolve({ width: 512, height: 768 })\nwidth * height", result: "393216" },
  { title: "await in a const with array destructuring and rest", code: "const [head, ...tail] = await Promise.all([1, 2, 3])\ntail", result: "[ 2, 3 ]" },
  { title: "await in call arguments", code: "Math.max(await Promise.resolve(2), 1)", result: "2" },
  { title: "async arrow and Promise.all", code: "const double = async (n: number) => n * 2\nawait Promise.all([1, 2, 3].map(double))", result: "[ 2, 4, 6 ]" },
  { title: "an enum", code: 'enum Sampler { DPM = "dpm", Euler = "euler" }\nSampler.Euler', result: "'euler'" },
  { title: "the enum in a later cell", code: "Object.values(Sampler)", result: "[ 'dpm', 'euler' ]" },
  { title: "a numeric enum with reverse mapping", code: "enum Level { Low, High }\nLevel[Level.High]", result: "'High'" },
  { title: "a namespace", code: "namespace Geometry {\n  export const unit = 8\n  export function px(n: number) { return n * unit }\n}\nGeometry.px(3)", result: "24" },
  { title: "the namespace in a later cell", code: "Geometry.unit", result: "8" },
  { title: "a generic arrow function", code: "const first = <T,>(xs: T[]): T | undefined => xs[0]\nfirst([\"a\", \"b\"])", result: "'a'" },
  { title: "a generic arrow with a constraint", code: "const longest = <T extends { length: number }>(a: T, b: T) => (a.length >= b.length ? a : b)\nlongest(\"fox\", \"bird\")", result: "'bird'" },
  {
    title: "labelled loops with continue and break",
    code: "const found: number[][] = []\nouter: for (let i = 0; i < 4; i++) {\n  for (let j = 0; j < 4; j++) {\n    if (j > i) continue outer\n    if (i + j > 4) break outer\n    found.push([i, j])\n  }\n}\nfound.length",
    result: "8",
  },
  {
    title: "getters and setters in a class",
    code: "class Temperature {\n  private c = 0\n  get fahrenheit() { return (this.c * 9) / 5 + 32 }\n  set fahrenheit(f: number) { this.c = ((f - 32) * 5) / 9 }\n}\nconst temp = new Temperature()\ntemp.fahrenheit = 212\ntemp.fahrenheit",
    result: "212",
  },
  { title: "a getter in an object literal", code: "const square = { side: 3, get area() { return this.side * this.side } }\nsquare.area", result: "9" },
  {
    title: "a disposable class",
    code: "class Handle {\n  constructor(readonly name: string) {}\n  [Symbol.dispose]() { console.log(`closed ${this.name}`) }\n}",
  },
  { title: "using in a block", code: '{\n  using h = new Handle("inner")\n  console.log("using", h.name)\n}\nconsole.log("after block")', stdout: "using inner\nclosed inner\nafter block\n" },
  { title: "using at the top level of a cell", code: 'using top = new Handle("top")\nconsole.log("body")', stdout: "body\nclosed top\n" },
  {
    title: "await using in an async function",
    code: 'async function job2() {\n  await using r = { async [Symbol.asyncDispose]() { console.log("released") } }\n  console.log("working")\n  return 1\n}\nawait job2()',
    stdout: "working\nreleased\n",
    result: "1",
  },
  { title: "using disposes when the block throws", code: 'try {\n  using h = new Handle("failing")\n  throw new Error("inside")\n} catch (e) {\n  console.log("caught", (e as Error).message)\n}', stdout: "closed failing\ncaught inside\n" },
  { title: "import the project by its package name", code: 'import { PixArtSigmaPipeline } from "pixart-ts"\ntypeof PixArtSigmaPipeline.fromPretrained', result: "'function'" },
  { title: "import a subpath of the project's exports map", code: 'import { newDisplayId } from "pixart-ts/display"\ntypeof newDisplayId', result: "'function'" },
  { title: "import an ESM-only package (types through its exports map)", code: 'import { shout } from "esm-only"\nshout("hi")', result: "'HI!'" },
  { title: "import a Node built-in", code: 'import * as path from "path"\npath.extname("fox.png")', result: "'.png'" },
  { title: "default import with esModuleInterop", code: 'import os from "os"\ntypeof os.cpus', result: "'function'" },
  { title: "optional chaining and nullish coalescing", code: "const cfg: { size?: { w?: number } } = {}\ncfg.size?.w ?? 1024", result: "1024" },
  { title: "object spread", code: "const base = { steps: 20, cfg: 4.5 }\nconst merged = { ...base, steps: 30 }\nmerged", result: "{ steps: 30, cfg: 4.5 }" },
  { title: "satisfies", code: "const sizes = { small: 512, large: 1024 } satisfies Record<string, number>\nsizes.large", result: "1024" },
  { title: "as const tuple", code: 'const pair = [1, "a"] as const\npair[1]', result: "'a'" },
  { title: "an interface used in a later cell", code: "interface Job { id: number; text: string }" },
  { title: "the interface, with a shorthand property", code: 'const text = "later"\nconst typed: Job = { id: 1, text }\ntyped', result: "{ id: 1, text: 'later' }" },
  { title: "type alias and generic function", code: "type Pair<T> = [T, T]\nfunction swap<T>(p: Pair<T>): Pair<T> { return [p[1], p[0]] }\nswap([1, 2])", result: "[ 2, 1 ]" },
  {
    title: "private fields and inheritance",
    code: "class Animal {\n  #name: string\n  constructor(n: string) { this.#name = n }\n  get name() { return this.#name }\n}\nclass Fox extends Animal { speak() { return `${this.name} yips` } }\nnew Fox(\"Vix\").speak()",
    result: "'Vix yips'",
  },
  { title: "static members", code: "class Counter { static count = 0; static inc() { return ++Counter.count } }\nCounter.inc()\nCounter.inc()", result: "2" },
  { title: "a generator", code: "function* range(n: number) { for (let i = 0; i < n; i++) yield i }\n[...range(4)]", result: "[ 0, 1, 2, 3 ]" },
  { title: "a Map", code: 'new Map([["a", 1]])', result: "Map(1) { 'a' => 1 }" },
  { title: "BigInt", code: "2n ** 64n", result: "18446744073709551616n" },
  { title: "regex named groups", code: '/(?<w>\\d+)x(?<h>\\d+)/.exec("512x768")!.groups!.h', result: "'768'" },
  { title: "try/catch with a typed error", code: 'let kind = ""\ntry { JSON.parse("{") } catch (e) { kind = (e as Error).name }\nkind', result: "'SyntaxError'" },
  { title: "decorators", code: 'function logged(_t: object, key: string) { console.log("decorated " + key) }\nclass Svc { @logged run() {} }', stdout: "decorated run\n" },
  { title: "abstract class", code: "abstract class Shape { abstract area(): number; describe() { return `area ${this.area()}` } }\nclass Sq extends Shape { area() { return 4 } }\nnew Sq().describe()", result: "'area 4'" },
  { title: "function overloads", code: "function fmt(x: number): string\nfunction fmt(x: string): string\nfunction fmt(x: number | string) { return `<${x}>` }\nfmt(3)", result: "'<3>'" },
  { title: "assign to an earlier cell's let", code: "counter += \"!\"\ncounter", result: "'two!'" },
  {
    title: "a throw in a nested function names each frame's cell line and column",
    code: 'function validate(n: number) {\n  if (n < 0) {\n    throw new RangeError("negative")\n  }\n}\nfunction check() { validate(-1) }\ncheck()',
    error: {
      ename: "RangeError",
      traceback: ["at validate (cell [{n}], line 3:11)", "at check (cell [{n}], line 6:20)", "at cell [{n}], line 7:1"],
    },
  },
  { title: "a function that throws, for a later cell", code: 'function failLater(x: number) {\n  return x.toFixed(-1)\n}' },
  {
    title: "a frame in an earlier cell names that cell",
    code: "const arg = 2\nfailLater(arg)",
    error: { ename: "RangeError", traceback: ["at failLater (cell [{n-1}], line 2:12)", "at cell [{n}], line 2:1"] },
  },
  { title: "the kernel keeps going after errors", code: "[prompt, steps, total]", result: "[ 42, 20, 10 ]" },
];

const plain = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, "");

/** Checks one executed idiom (the protocol test and the notebook test use the same expectations). */
export interface IdiomOutcome {
  count: number;
  result?: string;
  stdout: string;
  error?: { ename: string; evalue: string; traceback: string[] };
}

export function checkIdiom(idiom: Idiom, got: IdiomOutcome): void {
  if (idiom.error) {
    assert.ok(got.error, `expected ${idiom.error.ename}, got result ${got.result}`);
    assert.strictEqual(got.error.ename, idiom.error.ename, got.error.evalue);
    if (idiom.error.evalue) assert.match(got.error.evalue, idiom.error.evalue);
    const tb = got.error.traceback.map(plain);
    let from = 0;
    for (const expected of idiom.error.traceback ?? []) {
      const want = expected.replace(/\{n\}/g, String(got.count)).replace(/\{n-1\}/g, String(got.count - 1));
      const at = tb.findIndex((l, i) => i >= from && l.includes(want));
      assert.ok(at >= 0, `traceback lacks "${want}" (in order):\n${tb.join("\n")}`);
      from = at + 1;
    }
    return;
  }
  assert.strictEqual(got.error, undefined, `unexpected ${got.error?.ename}: ${got.error?.evalue}\n${got.error?.traceback.map(plain).join("\n")}`);
  assert.strictEqual(got.result, idiom.result);
  if (idiom.stdout !== undefined) assert.strictEqual(got.stdout, idiom.stdout);
}

/** The repository's exports map (subpaths such as pixart-ts/display), so the workspace offers the same imports. */
function repoExports(): unknown {
  return (JSON.parse(fs.readFileSync(path.join(repoRoot(), "package.json"), "utf8")) as { exports?: unknown }).exports;
}

/** A temporary workspace laid out like the repository (see the file comment); the cells run in its notebooks/. */
export function makeIdiomWorkspace(): { root: string; notebooks: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "pixart-idioms-"));
  fs.writeFileSync(
    path.join(root, "package.json"),
    JSON.stringify({ name: "pixart-ts", private: true, main: "dist/src/index.js", types: "dist/src/index.d.ts", exports: repoExports() }),
  );
  fs.symlinkSync(buildRoot, path.join(root, "dist"));
  const esm = path.join(root, "node_modules", "esm-only");
  fs.mkdirSync(esm, { recursive: true });
  fs.writeFileSync(
    path.join(esm, "package.json"),
    JSON.stringify({ name: "esm-only", version: "1.0.0", type: "module", exports: { ".": { types: "./index.d.ts", import: "./index.js" } } }),
  );
  // Top-level await as well: require(esm) cannot load it (ERR_REQUIRE_ASYNC_MODULE).
  fs.writeFileSync(path.join(esm, "index.js"), "await Promise.resolve();\nexport const shout = (s) => s.toUpperCase() + '!';\n");
  fs.writeFileSync(path.join(esm, "index.d.ts"), "export declare const shout: (s: string) => string;\n");
  const notebooks = path.join(root, "notebooks");
  fs.mkdirSync(notebooks);
  return { root, notebooks };
}
