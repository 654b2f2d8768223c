/**
 * Finding an already-downloaded Hugging Face repo offline. The hub cache stores a repo in
 * `<cache>/models--org--name/` with `refs/<revision>` (a file holding a commit hash),
 * `snapshots/<hash>/...` (the repo's tree, files being symlinks to `../../blobs/<sha>`) and `blobs/`.
 * We never download: a repo that is not there is a `RepoNotCachedError` that says how to get it.
 */
import * as os from "os";
import * as path from "path";
import { promises as fsp } from "fs";
import { ConfigError, InvalidRepoIdError, PathNotFoundError, RepoNotCachedError } from "./errors";

export interface HubCacheOptions {
  /** Branch, tag or full 40-hex commit hash; default "main". */
  revision?: string;
  /** Hub cache folder; default from the environment (see `hubCacheDir`). */
  cacheDir?: string;
  /** Environment to read the cache location from; default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

function expandHome(p: string): string {
  return p === "~" || p.startsWith("~/") ? path.join(os.homedir(), p.slice(1)) : p;
}

/**
 * The hub cache folder, as huggingface_hub picks it: `HF_HUB_CACHE`, else the legacy
 * `HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
 * `~/.cache/huggingface/hub`.
 */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env["HF_HUB_CACHE"] || env["HUGGINGFACE_HUB_CACHE"];
  if (explicit) return expandHome(explicit);
  const home = env["HF_HOME"] || path.join(env["XDG_CACHE_HOME"] || path.join(os.homedir(), ".cache"), "huggingface");
  return path.join(expandHome(home), "hub");
}

const REPO_ID = /^(?:\w(?:[\w.-]{0,94}\w)?\/)?\w(?:[\w.-]{0,94}\w)?$/;
const COMMIT = /^[0-9a-f]{40}$/;

/** True for `name` or `namespace/name` as the Hub allows them (ASCII letters, digits, `-_.`; no `--`/`..`). */
export function isRepoId(s: string): boolean {
  return s.length <= 96 && REPO_ID.test(s) && !s.includes("--") && !s.includes("..") && !s.endsWith(".git");
}

export function validateRepoId(repoId: string): void {
  if (!isRepoId(repoId)) {
    throw new InvalidRepoIdError(
      repoId,
      "repo_id",
      '"name" or "namespace/name" of at most 96 ASCII letters, digits, "-", "_", "." (not starting or ending with "-" or ".", no "--" or "..")',
    );
  }
}

/** `PixArt-alpha/PixArt-Sigma-XL-2-1024-MS` → `models--PixArt-alpha--PixArt-Sigma-XL-2-1024-MS`. */
export function repoFolderName(repoId: string): string {
  validateRepoId(repoId);
  return ["models", ...repoId.split("/")].join("--");
}

function checkRevision(revision: string): void {
  const parts = revision.split("/");
  if (revision.length > 255 || parts.some((p) => p === "" || p === "." || p === ".." || !/^[\w.-]+$/.test(p))) {
    throw new InvalidRepoIdError(revision, "revision", 'a branch or tag name (segments of letters, digits, "-", "_", ".") or a 40-hex commit hash');
  }
}

async function isDir(p: string): Promise<boolean> {
  return (await fsp.stat(p).catch(() => undefined))?.isDirectory() ?? false;
}

/** The snapshot folder of a cached repo at a revision; `RepoNotCachedError` when it is not there. */
export async function snapshotPath(repoId: string, options: HubCacheOptions = {}): Promise<string> {
  const repoDir = path.join(options.cacheDir ?? hubCacheDir(options.env), repoFolderName(repoId));
  const revision = options.revision ?? "main";
  checkRevision(revision);
  const notCached = (where: string, looked: string[], reason: string): never => {
    throw new RepoNotCachedError(repoId, revision, where, looked, reason);
  };
  if (!(await isDir(repoDir))) notCached(repoDir, [repoDir], "its cache folder does not exist");
  let commit = revision;
  if (!COMMIT.test(revision)) {
    const refFile = path.join(repoDir, "refs", revision);
    const ref = await fsp.readFile(refFile, "utf8").catch(() => undefined);
    if (ref === undefined) notCached(refFile, [refFile], `no ref "${revision}" in the cache`);
    commit = ref!.trim();
    if (!COMMIT.test(commit)) {
      throw new ConfigError(refFile, `expected a 40-hex commit hash, found ${JSON.stringify(commit.slice(0, 80))}`, { field: "ref" });
    }
  }
  const snapshot = path.join(repoDir, "snapshots", commit);
  if (!(await isDir(snapshot))) notCached(snapshot, [snapshot], `no snapshot for commit ${commit}`);
  return snapshot;
}

/**
 * A folder for `dirOrRepoId`: an existing local folder is returned as is (a leading `~/` is expanded);
 * otherwise a repo id is looked up in the hub cache. Local folders win, as in diffusers.
 */
export async function resolveModelPath(dirOrRepoId: string, options: HubCacheOptions = {}): Promise<string> {
  const local = expandHome(dirOrRepoId);
  const stat = await fsp.stat(local).catch(() => undefined);
  if (stat?.isDirectory()) return local;
  if (stat !== undefined) throw new PathNotFoundError(local, "a folder, not a file");
  if (!isRepoId(dirOrRepoId)) {
    throw new PathNotFoundError(dirOrRepoId, 'an existing folder or a Hugging Face repo id such as "PixArt-alpha/PixArt-Sigma-XL-2-1024-MS"');
  }
  return snapshotPath(dirOrRepoId, options);
}
