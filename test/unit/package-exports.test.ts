import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as ts from "typescript";
import { repoRoot } from "../helpers/paths";

const root = repoRoot();
const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as {
  exports: Record<string, string | { types: string; default: string }>;
  typesVersions: { "*": Record<string, string[]> };
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
};

/** Every `export class X extends ...Error` under a folder, by file. */
function errorClasses(dir: string): { name: string; file: string }[] {
  const found: { name: string; file: string }[] = [];
  for (const entry of fs.readdirSync(dir, { recursive: true, encoding: "utf8" })) {
    if (!entry.endsWith(".ts")) continue;
    const text = fs.readFileSync(path.join(dir, entry), "utf8");
    for (const m of text.matchAll(/^export class (\w+) extends (\w+)/gm)) {
      if (/Error$/.test(m[1])) found.push({ name: m[1], file: entry });
    }
  }
  return found;
}

describe("package: entry points and exports", () => {
  const rootModule = require(path.join(root, "dist", "src", "index.js")) as Record<string, unknown>;

  it("every error class of the library is exported from the root", () => {
    // cli/ is the command line's own; everything else is library API.
    const classes = errorClasses(path.join(root, "src")).filter((c) => !c.file.startsWith("cli"));
    assert.ok(classes.length >= 30, `found ${classes.length} error classes`);
    const missing = classes.filter((c) => typeof rootModule[c.name] !== "function").map((c) => `${c.name} (${c.file})`);
    assert.deepStrictEqual(missing, []);
  });

  it("every scheduler class is exported from the root and from pixart-ts/schedulers", () => {
    const schedulers = require(path.join(root, "dist", "src", "schedulers", "index.js")) as Record<string, unknown>;
    for (const name of rootModule["SCHEDULER_CLASS_NAMES"] as string[]) {
      assert.strictEqual(typeof rootModule[name], "function", name);
      assert.strictEqual(schedulers[name], rootModule[name], name);
    }
  });

  it("each subpath of the exports map has its JavaScript and its types, and typesVersions matches it", () => {
    for (const [subpath, target] of Object.entries(pkg.exports)) {
      if (subpath === "./package.json") continue;
      assert.ok(typeof target === "object", subpath);
      assert.ok(fs.existsSync(path.join(root, target.default)), `${subpath}: ${target.default}`);
      assert.ok(fs.existsSync(path.join(root, target.types)), `${subpath}: ${target.types}`);
      assert.strictEqual(target.types.replace(/\.d\.ts$/, ".js"), target.default, subpath);
      if (subpath !== ".") assert.deepStrictEqual(pkg.typesVersions["*"][subpath.slice(2)], [target.types.slice(2)], subpath);
    }
    for (const wanted of [".", "./schedulers", "./tokenizer", "./display", "./kernel"]) assert.ok(pkg.exports[wanted], wanted);
  });

  it("the kernel's tslab and zeromq are optional peer dependencies, not dependencies, and the library never loads them", () => {
    for (const name of ["tslab", "zeromq"]) {
      assert.strictEqual(pkg.dependencies[name], undefined, name);
      assert.ok(pkg.peerDependencies[name] && pkg.peerDependenciesMeta[name]?.optional, name);
    }
    const loaded = Object.keys(require.cache).filter((f) => f.includes(`${path.sep}dist${path.sep}src${path.sep}`));
    assert.ok(loaded.length > 0);
    const kernelDeps = Object.keys(require.cache).filter((f) => /node_modules[\\/](tslab|zeromq)[\\/]/.test(f));
    // Other test files may have loaded the kernel in this process; only the library's own imports count here.
    for (const f of kernelDeps) assert.ok(!require.cache[f]!.parent?.filename.includes(`${path.sep}dist${path.sep}src${path.sep}`), f);
  });

  it("the shipped declarations of every entry point compile with lib [\"ES2022\"], strict and no skipLibCheck", function () {
    this.timeout(120_000);
    // onnxruntime-common's declarations need DOM types (ImageData, WebGLTexture), so no entry point may reach them.
    const entries = Object.values(pkg.exports).flatMap((t) => (typeof t === "object" ? [path.join(root, t.types)] : []));
    const program = ts.createProgram(entries, {
      target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
      lib: ["lib.es2022.d.ts"], types: ["node"], typeRoots: [path.join(root, "node_modules", "@types")], strict: true,
      skipLibCheck: false, noEmit: true,
    });
    const errors = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n") +
      (d.file ? ` (${path.relative(root, d.file.fileName)})` : ""));
    assert.deepStrictEqual(errors, []);
    const reached = program.getSourceFiles().map((f) => f.fileName).filter((f) => /node_modules[\\/](onnxruntime|tslab|zeromq)/.test(f));
    assert.deepStrictEqual(reached, []);
  });

  it("every CallOptions field states its default (or that it is required) in its doc comment", () => {
    const file = path.join(root, "src", "pipeline", "pixart-sigma.ts");
    const source = ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.ES2022, true);
    const undocumented: string[] = [];
    let fields = 0;
    const visit = (node: ts.Node): void => {
      if (ts.isInterfaceDeclaration(node) && ["CallOptions", "EncodePromptOptions", "QueueOptions"].includes(node.name.text)) {
        for (const member of node.members) {
          if (!ts.isPropertySignature(member)) continue;
          fields++;
          const doc = ts.getJSDocCommentsAndTags(member).map((d) => d.getText(source)).join("\n");
          if (!/\bDefault\b|\bdefault\b|[Rr]equired/.test(doc)) undocumented.push(`${node.name.text}.${member.name.getText(source)}`);
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
    assert.ok(fields >= 20, `${fields} fields`);
    assert.deepStrictEqual(undocumented, []);
  });
});
