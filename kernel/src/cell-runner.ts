/**
 * Runs converted cells; it takes the place of tslab's executor (createExecutor), whose run loop could not keep what
 * a failed cell declared, names every cell `evalmachine.<anonymous>`, and races top-level `for await` cells as if
 * they were synchronous. Like tslab's, cells share one `exports` object that holds every top-level name, and
 * `require` resolves from the notebook directory, with `import "tslab"` and local `.ts` modules hooked.
 *
 * Each cell runs as a vm script named `<cell N>` (N: a sequence number), so stack frames can be mapped back to the
 * cell's line and column (cell-locations.ts).
 */
import Module = require("module");
import * as path from "path";
import * as vm from "vm";
import { createRequire as tslabCreateRequire } from "tslab/dist/executor";
import { CellConverter, ConvertedCell } from "./cell-converter";
import { cellValueNames, keepWhatRan, withoutExportResets } from "./cell-declarations";
import { registerCellScript } from "./cell-locations";
import { usingHook } from "./cell-source";
import { pathToFileURL } from "url";
import { resolveForImport, resolveSelfReference } from "./module-paths";

export type RunResult =
  | { status: "ok"; converted: ConvertedCell | undefined; value?: { value: unknown } }
  | { status: "error"; converted: ConvertedCell; error: unknown }
  | { status: "compile-error"; converted: ConvertedCell };

/** Lines before the cell's first line in the script that runs it. */
const wrapperLines = 1;

/** Declarations every cell sees: Symbol.dispose / asyncDispose (Node has them; TypeScript 5.0's lib does not). */
const prelude = `declare global {
    interface SymbolConstructor {
        readonly dispose: unique symbol;
        readonly asyncDispose: unique symbol;
    }
}
`;

type Disposer = { values: unknown[]; isAsync: boolean };

/** Disposes `values` in reverse order; errors are collected and the first is rethrown at the end. */
function disposeSync(values: readonly unknown[]): void {
  const errors: unknown[] = [];
  for (const v of [...values].reverse()) {
    if (v === null || v === undefined) continue;
    try {
      const fn = (v as { [Symbol.dispose]?: () => void })[Symbol.dispose];
      if (typeof fn !== "function") throw new TypeError("a `using` value has no [Symbol.dispose]() method");
      fn.call(v);
    } catch (e) {
      errors.push(e);
    }
  }
  if (errors.length > 0) throw errors[0];
}

async function disposeAsync(values: readonly unknown[]): Promise<void> {
  const errors: unknown[] = [];
  for (const v of [...values].reverse()) {
    if (v === null || v === undefined) continue;
    try {
      const obj = v as { [Symbol.asyncDispose]?: () => Promise<void>; [Symbol.dispose]?: () => void };
      const fn = obj[Symbol.asyncDispose] ?? obj[Symbol.dispose];
      if (typeof fn !== "function") throw new TypeError("an `await using` value has no [Symbol.asyncDispose]() method");
      await fn.call(v);
    } catch (e) {
      errors.push(e);
    }
  }
  if (errors.length > 0) throw errors[0];
}

export class CellRunner {
  readonly converter: CellConverter;
  private declarations = "";
  private readonly store: Record<string, unknown> = {};
  /** Names assigned during the current cell (to keep the declarations of what ran). */
  private assigned = new Set<string>();
  readonly exports: Record<string, unknown>;
  private readonly require: NodeRequire;
  private readonly sideOutputs = new Map<string, string>();
  private readonly sideModules = new Map<string, Module>();
  /** ES modules `require` cannot load, imported before the cells that import them (by specifier). */
  private readonly esModules = new Map<string, unknown>();
  private cellUsings: Disposer[] = [];
  private seq = 0;
  private interruptReject: ((e: unknown) => void) | undefined;

  constructor(private readonly rootDir: string) {
    this.converter = new CellConverter(rootDir);
    this.exports = this.createExports();
    this.require = this.wrapRequire(tslabCreateRequire(rootDir), rootDir);
    (globalThis as Record<string, unknown>)["__pixartCell__"] = { exports: this.exports, require: this.require };
    (globalThis as Record<string, unknown>)[usingHook] = {
      cell: (values: unknown[], isAsync: boolean) => void this.cellUsings.push({ values, isAsync }),
      dispose: (values: unknown[], isAsync: boolean) => (isAsync ? disposeAsync(values) : disposeSync(values)),
    };
  }

  /** The declarations later cells are checked against (for completion and inspection too). */
  get prevDecl(): string {
    return this.declarations + prelude;
  }

  private createExports(): Record<string, unknown> {
    const store = this.store;
    const record = (prop: string | symbol): void => {
      if (typeof prop === "string") this.assigned.add(prop);
    };
    return new Proxy(store, {
      // TypeScript turns named imports into defineProperty getters; the values are copied so names stay rewritable.
      defineProperty: (_target, prop, attrs) => {
        if (prop === "__esModule") return true;
        store[prop as string] = attrs.get ? attrs.get() : attrs.value;
        record(prop);
        return true;
      },
      set: (_target, prop, value) => {
        store[prop as string] = value;
        record(prop);
        return true;
      },
    });
  }

  private wrapRequire(req: NodeRequire, dirname: string): NodeRequire {
    const pkg = this.converter.enclosingPackage;
    const load = (id: string): unknown => {
      if (id === "tslab") return require("tslab");
      if (this.esModules.has(id)) return this.esModules.get(id);
      const side = this.requireSideOutput(id, dirname);
      if (side !== undefined) return side;
      try {
        return req(id);
      } catch (e) {
        const self = (e as { code?: string }).code === "MODULE_NOT_FOUND" ? resolveSelfReference(id, pkg) : undefined;
        if (self === undefined) throw e;
        return req(self);
      }
    };
    return Object.assign(load, { resolve: req.resolve, cache: req.cache, main: req.main, extensions: req.extensions }) as NodeRequire;
  }

  /** Local .ts modules compiled by the converter (tslab's side outputs), loaded like CommonJS files. */
  private requireSideOutput(id: string, dirname: string): unknown {
    if (!id.startsWith(".") && !path.isAbsolute(id)) return undefined;
    let filename = path.resolve(dirname, id);
    if (path.extname(filename) === "") filename += ".js";
    const cached = this.sideModules.get(filename);
    if (cached) return cached.exports;
    const code = this.sideOutputs.get(filename);
    if (code === undefined) return undefined;
    const mod = new Module(filename, module);
    mod.filename = filename;
    mod.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(path.dirname(filename));
    mod.require = this.wrapRequire(mod.require.bind(mod) as NodeRequire, path.dirname(filename));
    (mod as unknown as { _compile(code: string, filename: string): void })._compile(code, filename);
    this.sideModules.set(filename, mod);
    return mod.exports;
  }

  /** Stops waiting for the running async cell (its promise is abandoned, not cancelled). */
  interrupt(): void {
    this.interruptReject?.(new Error("Interrupted asynchronously"));
  }

  /**
   * Converts and runs `src`. `onSync` is told when the cell's synchronous part starts and ends (the part SIGINT can
   * stop). The value of a last expression comes back in `value`.
   */
  async run(src: string, executionCount: number | null, onSync?: (running: boolean) => void): Promise<RunResult> {
    const converted = this.converter.convert(this.prevDecl, src);
    for (const out of converted.sideOutputs ?? []) {
      this.sideModules.delete(out.path);
      this.sideOutputs.set(out.path, out.data);
    }
    if (converted.diagnostics.length > 0) return { status: "compile-error", converted };
    if (!converted.output) {
      this.declarations = stripPrelude(converted.declOutput ?? "");
      return { status: "ok", converted };
    }
    await this.importEsModules(src);
    const filename = `<cell ${++this.seq}>`;
    registerCellScript(filename, { executionCount, source: src, locate: converted.locate, firstLine: wrapperLines });
    const js = withoutExportResets(converted.output);
    const wrapped =
      (converted.hasToplevelAwait ? "(async function (exports, require) {\n" : "(function (exports, require) {\n") +
      js +
      "\n})(__pixartCell__.exports, __pixartCell__.require)";
    this.assigned = new Set();
    this.cellUsings = [];
    let error: { e: unknown } | undefined;
    try {
      onSync?.(true);
      let ret: unknown;
      try {
        ret = vm.runInThisContext(wrapped, { filename, breakOnSigint: true });
      } finally {
        onSync?.(false);
      }
      if (converted.hasToplevelAwait) await this.raceInterrupt(ret as Promise<unknown>);
    } catch (e) {
      error = { e };
    }
    try {
      await this.disposeCellUsings();
    } catch (e) {
      error ??= { e };
    }
    const declOutput = stripPrelude(converted.declOutput ?? "");
    if (error) {
      this.declarations = keepWhatRan(this.declarations, declOutput, cellValueNames(converted.output), this.assigned);
      this.dropLastExpression(converted);
      return { status: "error", converted, error: error.e };
    }
    this.declarations = declOutput;
    const value = this.dropLastExpression(converted);
    return { status: "ok", converted, value };
  }

  /**
   * `import` declarations are evaluated before the cell, as in an ES module. Packages `require` cannot load (only an
   * `import` export condition, or top-level await: tslab #72, ERR_REQUIRE_ESM / ERR_REQUIRE_ASYNC_MODULE) are
   * loaded here with `import()`, and `require` then returns their namespace. Cells that need none of this do not
   * wait (their synchronous part runs right away).
   */
  private async importEsModules(src: string): Promise<void> {
    for (const spec of importedSpecifiers(src)) {
      if (this.esModules.has(spec) || spec.startsWith(".") || spec.startsWith("node:") || Module.isBuiltin(spec) || spec === "tslab") continue;
      try {
        this.require(spec);
        continue;
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code !== "ERR_REQUIRE_ESM" && code !== "ERR_REQUIRE_ASYNC_MODULE" && code !== "ERR_PACKAGE_PATH_NOT_EXPORTED") continue;
      }
      const file = resolveForImport(spec, this.rootDir);
      if (!file) continue;
      try {
        const ns = (await importModule(pathToFileURL(file).href)) as Record<string, unknown>;
        this.esModules.set(spec, Object.freeze({ ...ns, __esModule: true }));
      } catch {
        // the cell's own require() reports the error where the import is
      }
    }
  }

  private dropLastExpression(converted: ConvertedCell): { value: unknown } | undefined {
    const name = converted.lastExpressionVar;
    if (!name || !(name in this.store)) return undefined;
    const value = this.store[name];
    delete this.store[name];
    return value === undefined || value === null ? undefined : { value };
  }

  private async raceInterrupt(promise: Promise<unknown>): Promise<void> {
    const interrupted = new Promise<never>((_, reject) => (this.interruptReject = reject));
    interrupted.catch(() => {});
    try {
      await Promise.race([promise, interrupted]);
    } finally {
      this.interruptReject = undefined;
    }
  }

  private async disposeCellUsings(): Promise<void> {
    const usings = this.cellUsings.reverse();
    this.cellUsings = [];
    let first: { e: unknown } | undefined;
    for (const u of usings) {
      try {
        if (u.isAsync) await disposeAsync(u.values);
        else disposeSync(u.values);
      } catch (e) {
        first ??= { e };
      }
    }
    if (first) throw first.e;
  }

  close(): void {
    this.converter.close();
  }
}

/** A real `import()`: TypeScript's CommonJS output would turn `import()` in this file into `require`. */
const importModule = new Function("url", "return import(url)") as (url: string) => Promise<unknown>;

/** Module specifiers of the cell's static `import` declarations. */
function importedSpecifiers(src: string): string[] {
  return [...src.matchAll(/^\s*import\s+(?:type\s+)?(?:[^'"\n]*?\sfrom\s+)?["']([^"']+)["']/gm)]
    .filter((m) => !/^\s*import\s+type\s/.test(m[0]))
    .map((m) => m[1]!);
}

/** tslab copies `declare global` blocks into its output only sometimes; the prelude is added back each time. */
function stripPrelude(decl: string): string {
  return decl.replace(prelude, "");
}
