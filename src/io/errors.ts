/**
 * Typed errors for everything that reads checkpoints. Each one names the file (or folder) it is about and,
 * where it applies, the tensor or config field, and says what was expected. Model code throws
 * `TensorShapeError` and `ConfigError` too, so their constructors take plain values.
 */

export interface ErrorLocation {
  /** Config field (dotted path for nested ones, e.g. `weight_map.x`) the problem is about. */
  field?: string;
  /** Tensor name the problem is about. */
  tensor?: string;
  /** The underlying error, e.g. from `fs`. */
  cause?: unknown;
}

function where(loc: ErrorLocation): string {
  if (loc.tensor !== undefined) return `, tensor "${loc.tensor}"`;
  if (loc.field !== undefined) return `, field "${loc.field}"`;
  return "";
}

/** Base class: `file` is the file or folder the problem was found in. */
export class CheckpointError extends Error {
  override name = "CheckpointError";
  readonly file: string;
  declare readonly field?: string;
  declare readonly tensor?: string;

  /** Message: `<file>[, tensor "t" | , field "f"]: <problem>`. */
  constructor(file: string, problem: string, loc: ErrorLocation = {}) {
    super(`${file}${where(loc)}: ${problem}`, loc.cause === undefined ? undefined : { cause: loc.cause });
    this.file = file;
    if (loc.field !== undefined) this.field = loc.field;
    if (loc.tensor !== undefined) this.tensor = loc.tensor;
  }
}

/** The bytes of a .safetensors file break the format (header, dtype, offsets...). */
export class SafetensorsFormatError extends CheckpointError {
  override name = "SafetensorsFormatError";
}

/** A tensor that a model (or a shard index) needs is not in the weights. */
export class MissingTensorError extends CheckpointError {
  override name = "MissingTensorError";
  constructor(file: string, tensor: string, hint = "") {
    super(file, `tensor "${tensor}" is missing${hint ? ` (${hint})` : ""}`, { tensor });
  }
}

function shapeText(shape: readonly number[] | string): string {
  return typeof shape === "string" ? shape : `[${shape.join(", ")}]`;
}

/** A tensor has a shape (or dtype) other than the one the model needs. */
export class TensorShapeError extends CheckpointError {
  override name = "TensorShapeError";
  readonly expected: string;
  readonly actual: string;
  /** `expected` may be a shape or a description such as "[*, 1152]" or "F32 or F16". */
  constructor(file: string, tensor: string, expected: readonly number[] | string, actual: readonly number[] | string) {
    super(file, `expected ${shapeText(expected)}, found ${shapeText(actual)}`, { tensor });
    this.expected = shapeText(expected);
    this.actual = shapeText(actual);
  }
}

export interface ConfigLocation extends ErrorLocation {
  /** 1-based line and column of a syntax error. */
  line?: number;
  column?: number;
}

/**
 * A float weight holds NaN or ±Inf: found by the load-time scan (`index`, `value`: the first such element) or by
 * the quantizer (`row`: the row it could not quantize).
 */
export class NonFiniteWeightError extends CheckpointError {
  override name = "NonFiniteWeightError";
  declare readonly index?: number;
  declare readonly value?: number;
  declare readonly row?: number;
  constructor(file: string, tensor: string, problem: string, at: { index?: number; value?: number; row?: number } = {}) {
    super(file, problem, { tensor });
    if (at.index !== undefined) this.index = at.index;
    if (at.value !== undefined) this.value = at.value;
    if (at.row !== undefined) this.row = at.row;
  }
}

/** A config file (config.json, model_index.json, an index file) is missing, malformed or has a bad value. */
export class ConfigError extends CheckpointError {
  override name = "ConfigError";
  declare readonly line?: number;
  declare readonly column?: number;
  constructor(file: string, problem: string, loc: ConfigLocation = {}) {
    const at = loc.line !== undefined ? ` at line ${loc.line}, column ${loc.column ?? 0}` : "";
    super(file, `${problem}${at}`, loc);
    if (loc.line !== undefined) this.line = loc.line;
    if (loc.column !== undefined) this.column = loc.column;
  }
}

/** A path read from a checkpoint file points outside the checkpoint folder. */
export class PathEscapeError extends CheckpointError {
  override name = "PathEscapeError";
  readonly path: string;
  readonly root: string;
  /**
   * `file` holds the path `written` (in `field`); `root` is the folder it must stay inside; `detail` says
   * how it escapes when that is not obvious (e.g. through a symlink).
   */
  constructor(file: string, written: string, root: string, loc: ErrorLocation & { detail?: string } = {}) {
    const how = loc.detail ? ` (${loc.detail})` : "";
    super(file, `path "${written}" leaves the checkpoint folder ${root}${how}; only paths inside it are allowed`, loc);
    this.path = written;
    this.root = root;
  }
}

/** A component folder has no weights file (in the requested variant). */
export class WeightsNotFoundError extends CheckpointError {
  override name = "WeightsNotFoundError";
  constructor(dir: string, lookedFor: readonly string[], hint = "") {
    super(dir, `no weights found; expected one of ${lookedFor.join(", ")}${hint ? ` (${hint})` : ""}`);
  }
}

/** A folder given as a pipeline has no model_index.json. */
export class NotAPipelineError extends CheckpointError {
  override name = "NotAPipelineError";
  constructor(dir: string, detail = "") {
    super(dir, `not a diffusers pipeline folder: model_index.json not found${detail ? ` (${detail})` : ""}`, {
      field: "model_index.json",
    });
  }
}

/** A local path that does not exist (and does not look like a repo id). */
export class PathNotFoundError extends CheckpointError {
  override name = "PathNotFoundError";
  constructor(file: string, expected = "an existing folder") {
    super(file, `not found; expected ${expected}`);
  }
}

/** A string used as a Hugging Face repo id (or revision) is not a valid one. */
export class InvalidRepoIdError extends CheckpointError {
  override name = "InvalidRepoIdError";
  constructor(value: string, field: "repo_id" | "revision", expected: string) {
    super(value, `invalid ${field === "repo_id" ? "repo id" : "revision"}; expected ${expected}`, { field });
  }
}

/** A repo id has no usable snapshot in the local Hugging Face cache. */
export class RepoNotCachedError extends CheckpointError {
  override name = "RepoNotCachedError";
  readonly repoId: string;
  readonly revision: string;
  /** `file` is the folder where the snapshot was expected; `lookedAt` lists every path tried. */
  constructor(repoId: string, revision: string, file: string, lookedAt: readonly string[], reason: string) {
    // `hf` is the CLI of current huggingface_hub releases (older ones call it `huggingface-cli`).
    const download = `hf download ${repoId}${revision === "main" ? "" : ` --revision ${revision}`}`;
    super(
      file,
      `repo "${repoId}" (revision "${revision}") is not in the local Hugging Face cache: ${reason}. ` +
        `Looked at: ${lookedAt.join(", ")}. Download it first, e.g. \`${download}\` ` +
        "(or set HF_HUB_CACHE / HF_HOME to the cache that holds it), or pass a local folder.",
      { field: "repo_id" },
    );
    this.repoId = repoId;
    this.revision = revision;
  }
}
