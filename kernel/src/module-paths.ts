/**
 * What tslab's fixed `moduleResolution: node10` cannot find, made findable without touching its compiler options:
 *
 * - The enclosing project by its package name (`import { PixArtSigmaPipeline } from "pixart-ts"` in the repository's
 *   notebooks): node10 has no self-reference, so `<dir>/node_modules/<name>/...` under the project is served from
 *   the project itself, for the compiler (reads through `ts.sys`) and for `require` (see `resolveSelfReference`).
 * - Typings reachable only through an `exports` map (ESM-only packages, subpaths such as `pkg/sub`): the compiler
 *   is shown a `package.json` with the `types` entry the exports map names.
 *
 * tslab's converter reads real files through the shared `ts.sys` of its TypeScript fork, so these are hooks on that
 * object; they change only what the cell compiler sees, never files on disk.
 */
import * as fs from "fs";
import * as path from "path";
import * as ts from "@tslab/typescript-for-tslab";

export interface EnclosingPackage {
  name: string;
  root: string;
}

/** The nearest package.json at or above `dir` that has a name. */
export function findEnclosingPackage(dir: string): EnclosingPackage | undefined {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const file = path.join(d, "package.json");
    try {
      const name = (JSON.parse(fs.readFileSync(file, "utf8")) as { name?: unknown }).name;
      if (typeof name === "string" && name) return { name, root: d };
    } catch {
      // no package.json here, or not JSON: keep walking up
    }
    if (path.dirname(d) === d) return undefined;
  }
}

/** `<anything>/node_modules/<name>/<rest>` → `<root>/<rest>` for the enclosing package; otherwise undefined. */
function selfPath(pkg: EnclosingPackage, p: string): string | undefined {
  const marker = `${path.sep}node_modules${path.sep}${pkg.name}`;
  const at = p.lastIndexOf(marker);
  if (at < 0) return undefined;
  const rest = p.slice(at + marker.length);
  if (rest !== "" && !rest.startsWith(path.sep)) return undefined; // e.g. node_modules/pixart-ts-other
  // Only lookups made from inside the package itself are redirected (its notebooks, tests, docs).
  if (!(p.slice(0, at) + path.sep).startsWith(pkg.root + path.sep) && p.slice(0, at) !== pkg.root) return undefined;
  return path.join(pkg.root, rest);
}

type ExportTarget = string | null | { [condition: string]: ExportTarget } | ExportTarget[];

/** The `types` file an exports-map entry names (conditions types, then import/require/default, nested). */
function typesOf(target: ExportTarget | undefined): string | undefined {
  if (target === null || target === undefined) return undefined;
  if (typeof target === "string") return target.endsWith(".d.ts") || target.endsWith(".d.mts") || target.endsWith(".d.cts") ? target : undefined;
  if (Array.isArray(target)) {
    for (const t of target) {
      const found = typesOf(t);
      if (found) return found;
    }
    return undefined;
  }
  for (const key of ["types", "import", "require", "node", "default"]) {
    const found = typesOf(target[key]);
    if (found) return found;
  }
  return undefined;
}

interface PackageJson {
  types?: unknown;
  typings?: unknown;
  exports?: ExportTarget | { [subpath: string]: ExportTarget };
}

function readJson(file: string): PackageJson | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as PackageJson;
  } catch {
    return undefined;
  }
}

/** The exports entry for `subpath` ("." or "./sub"), whether the map is keyed by subpath or is a bare condition map. */
function exportEntry(pkg: PackageJson, subpath: string): ExportTarget | undefined {
  const exp = pkg.exports;
  if (exp === undefined || exp === null) return undefined;
  if (typeof exp === "string" || Array.isArray(exp)) return subpath === "." ? exp : undefined;
  const keyed = Object.keys(exp).some((k) => k.startsWith("."));
  if (!keyed) return subpath === "." ? exp : undefined;
  return (exp as Record<string, ExportTarget>)[subpath];
}

/**
 * For `<...>/node_modules/<pkg>/package.json` (or `<pkg>/<sub>/package.json`) whose typings only an exports map
 * names: the JSON text node10 needs (`types` relative to that folder). Undefined when nothing needs to change.
 */
function packageJsonWithTypes(file: string, realFile: (p: string) => string): string | undefined {
  const m = /^(.*[\\/]node_modules[\\/])((?:@[^\\/]+[\\/])?[^\\/]+)((?:[\\/][^\\/]+)*)[\\/]package\.json$/.exec(file);
  if (!m) return undefined;
  const pkgDir = m[1]! + m[2]!;
  const sub = m[3]!.replace(/\\/g, "/");
  const pkg = readJson(realFile(path.join(pkgDir, "package.json")));
  if (!pkg) return undefined;
  if (sub === "") {
    if (pkg.types !== undefined || pkg.typings !== undefined) return undefined;
    const types = typesOf(exportEntry(pkg, "."));
    return types ? JSON.stringify({ ...pkg, types }) : undefined;
  }
  const types = typesOf(exportEntry(pkg, "." + sub));
  return types ? JSON.stringify({ types: path.posix.relative("." + sub, types) }) : undefined;
}

let installed: EnclosingPackage | null | undefined;

/**
 * Hooks `ts.sys` of tslab's TypeScript fork once per process. `rootDir` is the notebook directory; its enclosing
 * package becomes importable by name.
 */
export function installModulePaths(rootDir: string): EnclosingPackage | undefined {
  if (installed !== undefined) return installed ?? undefined;
  const pkg = findEnclosingPackage(rootDir);
  installed = pkg ?? null;
  const sys = ts.sys;
  const orig = {
    readFile: sys.readFile.bind(sys),
    fileExists: sys.fileExists.bind(sys),
    directoryExists: sys.directoryExists.bind(sys),
    realpath: sys.realpath?.bind(sys),
  };
  const real = (p: string): string => (pkg && selfPath(pkg, p)) || p;
  sys.readFile = (p, encoding) => {
    if (p.endsWith("package.json")) {
      const patched = packageJsonWithTypes(p, real);
      if (patched !== undefined) return patched;
    }
    return orig.readFile(real(p), encoding);
  };
  sys.fileExists = (p) => {
    if (orig.fileExists(real(p))) return true;
    return p.endsWith("package.json") && packageJsonWithTypes(p, real) !== undefined;
  };
  sys.directoryExists = (p) => orig.directoryExists(real(p)) || (p.includes("node_modules") && subpathDirectoryExists(p, real));
  if (orig.realpath) {
    const realpath = orig.realpath;
    // Redirected files get their real path, so `pixart-ts` and `../dist/src` imports share one declaration of each
    // class (separate copies would not be assignable to each other: TS2345 on private members).
    sys.realpath = (p) => realpath(real(p));
  }
  return pkg;
}

/** `node_modules/<pkg>/<sub>` folders that exist only as exports-map subpaths. */
function subpathDirectoryExists(dir: string, real: (p: string) => string): boolean {
  return packageJsonWithTypes(path.join(dir, "package.json"), real) !== undefined;
}

/**
 * `require` for the enclosing package by name, for Node versions and package.json files where Node's own
 * self-reference does not apply (it needs an `exports` map). Undefined when `request` is not that package.
 */
export function resolveSelfReference(request: string, pkg: EnclosingPackage | undefined): string | undefined {
  if (!pkg || (request !== pkg.name && !request.startsWith(pkg.name + "/"))) return undefined;
  const req = require("module").createRequire(path.join(pkg.root, "package.json")) as NodeRequire;
  try {
    return req.resolve(request); // Node's self-reference (the package has an exports map)
  } catch {
    return req.resolve(path.join(pkg.root, request.slice(pkg.name.length))); // main, or a file path inside
  }
}

/** The export target for Node's `import` (conditions import, node, default), nested and in arrays. */
function importTarget(target: ExportTarget | undefined): string | undefined {
  if (target === null || target === undefined) return undefined;
  if (typeof target === "string") return target;
  if (Array.isArray(target)) {
    for (const t of target) {
      const found = importTarget(t);
      if (found) return found;
    }
    return undefined;
  }
  for (const key of ["import", "node", "default"]) {
    const found = importTarget(target[key]);
    if (found) return found;
  }
  return undefined;
}

/**
 * The file `import(request)` would load from `fromDir`, for packages `require` cannot load (exports with only an
 * `import` condition, or ES modules with top-level await). Undefined for anything else.
 */
export function resolveForImport(request: string, fromDir: string): string | undefined {
  const m = /^((?:@[^/]+\/)?[^/.][^/]*)(\/.*)?$/.exec(request);
  if (!m) return undefined;
  const [, name, sub] = m;
  const req = require("module").createRequire(path.join(fromDir, "noop.js")) as NodeRequire;
  for (const dir of req.resolve.paths(name!) ?? []) {
    const pkgDir = path.join(dir, name!);
    const pkg = readJson(path.join(pkgDir, "package.json")) as (PackageJson & { main?: string }) | undefined;
    if (!pkg) continue;
    const entry = pkg.exports !== undefined ? importTarget(exportEntry(pkg, "." + (sub ?? ""))) : sub ? `.${sub}` : pkg.main ?? "index.js";
    return entry ? path.join(pkgDir, entry) : undefined;
  }
  return undefined;
}
