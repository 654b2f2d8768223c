/**
 * Keeping file reads inside the checkpoint. Paths written in checkpoint files (shard names in an index,
 * component names in model_index.json) are checked as written: no absolute paths, no `..` that climbs out.
 * Then the resolved file (symlinks followed) must lie inside the checkpoint's root: the pipeline folder,
 * or, in the Hugging Face cache, the repo folder `models--org--name`, since snapshot files are symlinks
 * into its `blobs/`.
 *
 * The one rule for every file read from a checkpoint (configs, tokenizer files, weights, shards, indexes):
 * it must resolve, symlinks followed, inside the containment root of the folder it is looked up in, i.e.
 * the real path of that folder, or the cache repo folder when that folder is in a Hugging Face snapshot.
 * So a component folder that is itself a symlink (the 512 px and 2K checkpoints reuse the 1024 px repo's
 * T5) is fine: its files are checked against where the folder really is. A single file linked out of its
 * folder (a config.json linked to /etc/passwd) is a `PathEscapeError`. Paths *named inside* files (shards,
 * components) must also be relative without a climbing `..`. Weights alone can opt out of the symlink check
 * with `allowSymlinksOutside` (folders assembled by hand from files on other disks).
 */
import * as path from "path";
import { promises as fsp } from "fs";
import { ConfigError, PathEscapeError } from "./errors";

/** True when `child` is `parent` or below it (both absolute, already resolved). */
export function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/** The cache repo folder (`.../models--org--name`) that `realDir` is a snapshot (or below one) of, if any. */
export function cacheRepoFolder(realDir: string): string | undefined {
  for (let dir = realDir; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const parent = path.dirname(dir);
    if (path.basename(dir) === "snapshots" && /^(models|datasets|spaces)--/.test(path.basename(parent))) return parent;
  }
  return undefined;
}

/** The folder that every file of the checkpoint at `dir` must resolve into (a real path). */
export async function containmentRoot(dir: string): Promise<string> {
  const real = await fsp.realpath(dir);
  return cacheRepoFolder(real) ?? real;
}

export interface WrittenPathContext {
  /** The file the path was read from (for messages). */
  file: string;
  /** The field holding it, e.g. `weight_map.shared.weight`. */
  field?: string;
  /** Real path of the checkpoint root (see `containmentRoot`). */
  root: string;
  /** Skip the check that symlinks resolve inside `root` (for folders the user assembled with links). */
  allowSymlinksOutside?: boolean;
}

/**
 * Checks a relative path as written (no absolute path, no escaping `..`, no NUL) and returns it
 * normalized with `/` separators. Backslashes count as separators, so Windows-style names are checked too.
 */
export function checkWrittenPath(written: string, ctx: WrittenPathContext): string {
  const loc = ctx.field === undefined ? {} : { field: ctx.field };
  if (written === "" || written.includes("\0")) throw new ConfigError(ctx.file, `invalid path ${JSON.stringify(written)}`, loc);
  if (path.posix.isAbsolute(written) || path.win32.isAbsolute(written) || /^[A-Za-z]:/.test(written)) {
    throw new PathEscapeError(ctx.file, written, ctx.root, { ...loc, detail: "absolute paths are not allowed" });
  }
  const normalized = path.posix.normalize(written.replace(/\\/g, "/"));
  if (normalized === ".." || normalized.startsWith("../")) {
    throw new PathEscapeError(ctx.file, written, ctx.root, { ...loc, detail: "it climbs out with .." });
  }
  return normalized;
}

/**
 * Joins a written relative path onto `base` after `checkWrittenPath`, then checks that the target (if it
 * exists; a missing file is left for the caller to report) resolves inside the root.
 */
export async function resolveWrittenPath(base: string, written: string, ctx: WrittenPathContext): Promise<string> {
  const full = path.join(base, checkWrittenPath(written, ctx));
  await checkResolvesInside(full, written, ctx);
  return full;
}

/** Throws `PathEscapeError` when `full` exists and its real path is outside `ctx.root`. */
export async function checkResolvesInside(full: string, written: string, ctx: WrittenPathContext): Promise<void> {
  if (ctx.allowSymlinksOutside) return;
  let real: string;
  try {
    real = await fsp.realpath(full);
  } catch {
    return; // absent (or a dangling link): the caller's open reports it with the right error
  }
  if (!isInside(real, ctx.root)) {
    throw new PathEscapeError(ctx.file, written, ctx.root, {
      ...(ctx.field === undefined ? {} : { field: ctx.field }),
      detail: `it resolves through a symlink to ${real}; pass allowSymlinksOutside to accept that`,
    });
  }
}

/**
 * Applies the rule above to a file about to be read: throws `PathEscapeError` when `file` exists and resolves
 * outside the containment root of its own folder. A missing file is left for the read to report.
 */
export async function checkFileContained(file: string): Promise<void> {
  let root: string;
  try {
    root = await containmentRoot(path.dirname(file));
  } catch {
    return; // no such folder: the read reports it
  }
  await checkResolvesInside(file, path.basename(file), { file, root });
}
