/**
 * The diffusers folder layout: `model_index.json` at the top lists the components; each component folder
 * holds a config (`config.json`, `scheduler_config.json`, ...) and, for models, weights in one
 * .safetensors file or in shards listed by a `*.safetensors.index.json`. Every file is opened through the
 * path checks in `paths.ts`, so a checkpoint cannot make us read outside its folder.
 */
import * as fs from "fs";
import * as path from "path";
import { promises as fsp } from "fs";
import {
  ConfigError, MissingTensorError, NotAPipelineError, PathNotFoundError, WeightsNotFoundError,
} from "./errors";
import { JsonObject, isJsonObject, jsonTypeName, readJsonObject } from "./json";
import { WrittenPathContext, checkResolvesInside, containmentRoot, resolveWrittenPath } from "./paths";
import { SafetensorsFile, openSafetensors } from "./safetensors";
import type { TensorInfo, WeightSource } from "./types";
import type { WeightCheckOptions } from "./weight-scan";

export const MODEL_INDEX = "model_index.json";

/** One entry of model_index.json: `"vae": ["diffusers", "AutoencoderKL"]`; `[null, null]` marks an absent component. */
export interface ComponentSpec {
  readonly name: string;
  readonly library: string | null;
  readonly className: string | null;
}

export interface PipelineFolder {
  /** The folder as given. */
  readonly dir: string;
  /** Path of model_index.json. */
  readonly file: string;
  /** Real path every file must resolve into (the folder, or the cache repo folder `models--org--name`). */
  readonly root: string;
  /** `_class_name`, e.g. "PixArtSigmaPipeline". */
  readonly className: string;
  readonly diffusersVersion: string | undefined;
  /** Components in file order. */
  readonly components: ReadonlyMap<string, ComponentSpec>;
  /** The whole model_index.json, including pipeline config values that are not components. */
  readonly config: JsonObject;
}

async function checkIsFolder(dir: string): Promise<void> {
  const stat = await fsp.stat(dir).catch(() => undefined);
  if (!stat?.isDirectory()) throw new PathNotFoundError(dir, "an existing folder");
}

/** Reads `<dir>/model_index.json`. */
export async function openPipelineFolder(dir: string): Promise<PipelineFolder> {
  await checkIsFolder(dir);
  const root = await containmentRoot(dir);
  const file = path.join(dir, MODEL_INDEX);
  if (!fs.existsSync(file)) throw new NotAPipelineError(dir, `looked for ${file}`);
  await checkResolvesInside(file, MODEL_INDEX, { file, root });
  const config = await readJsonObject(file);
  const className = config["_class_name"];
  if (typeof className !== "string") {
    throw new ConfigError(file, `expected a string (the pipeline class), found ${jsonTypeName(className)}`, { field: "_class_name" });
  }
  const version = config["_diffusers_version"];
  const components = new Map<string, ComponentSpec>();
  for (const [name, value] of Object.entries(config)) {
    // Like diffusers: keys starting with "_" are metadata, [library, class] pairs are components,
    // anything else is a pipeline config value.
    if (name.startsWith("_") || !Array.isArray(value) || value.length !== 2) continue;
    const [library, cls] = value;
    if ((library !== null && typeof library !== "string") || (cls !== null && typeof cls !== "string")) {
      throw new ConfigError(file, `expected [library, class] strings (or nulls), found ${JSON.stringify(value)}`, { field: name });
    }
    components.set(name, { name, library, className: cls });
  }
  return { dir, file, root, className, diffusersVersion: typeof version === "string" ? version : undefined, components, config };
}

export interface WeightOptions extends WeightCheckOptions {
  /** Load `<name>.<variant>.safetensors` (e.g. "fp16") instead of the default files. */
  variant?: string;
  /** Accept symlinks that resolve outside the checkpoint root (folders assembled by hand). */
  allowSymlinksOutside?: boolean;
}

export interface ComponentOptions extends WeightOptions {
  /** Config file name; default `scheduler_config.json` for "scheduler", `tokenizer_config.json` for "tokenizer", else `config.json`. */
  configName?: string;
  /** Open the weights; default true when the config is `config.json` (a model). */
  weights?: boolean;
}

export interface Component {
  readonly name: string;
  /** `<pipeline dir>/<name>`, not resolved. */
  readonly dir: string;
  readonly configFile: string;
  readonly config: JsonObject;
  /** The config's `_class_name`, when present. */
  readonly className: string | undefined;
  readonly weights: CheckpointWeights | null;
}

function defaultConfigName(name: string): string {
  if (name === "scheduler") return "scheduler_config.json";
  if (name === "tokenizer") return "tokenizer_config.json";
  return "config.json";
}

/** Opens `<dir>/<name>/`: reads its config and (for models) finds and opens its weights. */
export async function openComponent(dir: string, name: string, options: ComponentOptions = {}): Promise<Component> {
  await checkIsFolder(dir);
  const root = await containmentRoot(dir);
  const ctx: WrittenPathContext = { file: dir, field: "component", root, ...allow(options) };
  if (name.includes("/") || name.includes("\\")) {
    throw new ConfigError(dir, `component name ${JSON.stringify(name)} must be a single folder name`, { field: "component" });
  }
  const componentDir = await resolveWrittenPath(dir, name, ctx);
  await checkIsFolder(componentDir);
  const configName = options.configName ?? defaultConfigName(name);
  const configFile = await resolveWrittenPath(componentDir, configName, { ...ctx, file: componentDir, field: "config" });
  const config = await readJsonObject(configFile);
  const className = typeof config["_class_name"] === "string" ? config["_class_name"] : undefined;
  const wantWeights = options.weights ?? configName === "config.json";
  const weights = wantWeights ? await openWeightsIn(componentDir, root, options) : null;
  return { name, dir: componentDir, configFile, config, className, weights };
}

function allow(o: WeightOptions): { allowSymlinksOutside?: boolean } {
  return o.allowSymlinksOutside === undefined ? {} : { allowSymlinksOutside: o.allowSymlinksOutside };
}

/** The tensors of one component, merged over its shard files. */
export interface CheckpointWeights extends WeightSource {
  /** The .safetensors files (paths inside the folder, not resolved), in the order they were opened. */
  readonly files: readonly string[];
  /** The shard index that listed them, when sharded. */
  readonly indexFile: string | undefined;
}

class TensorMap implements CheckpointWeights {
  constructor(
    readonly dir: string,
    private readonly tensors: ReadonlyMap<string, TensorInfo>,
    readonly files: readonly string[],
    readonly indexFile: string | undefined,
  ) {}
  has(name: string): boolean {
    return this.tensors.has(name);
  }
  get(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (t === undefined) throw new MissingTensorError(this.dir, name, `not in ${this.files.map((f) => path.basename(f)).join(", ")}`);
    return t;
  }
  names(): string[] {
    return [...this.tensors.keys()];
  }
}

/** Weight file names tried in a component folder, in order of preference. */
export function weightFileCandidates(variant?: string): { single: string[]; index: string[] } {
  const bases = ["diffusion_pytorch_model", "model"];
  if (variant === undefined) {
    return { single: bases.map((b) => `${b}.safetensors`), index: bases.map((b) => `${b}.safetensors.index.json`) };
  }
  return {
    single: bases.map((b) => `${b}.${variant}.safetensors`),
    index: bases.map((b) => `${b}.safetensors.index.${variant}.json`),
  };
}

/** Opens the weights of a component folder (a standalone model folder works too). */
export async function openWeights(componentDir: string, options: WeightOptions = {}): Promise<CheckpointWeights> {
  await checkIsFolder(componentDir);
  return openWeightsIn(componentDir, await containmentRoot(componentDir), options);
}

async function openWeightsIn(componentDir: string, root: string, options: WeightOptions): Promise<CheckpointWeights> {
  const { variant } = options;
  if (variant !== undefined && !/^[A-Za-z0-9_-]+$/.test(variant)) {
    throw new ConfigError(componentDir, `variant ${JSON.stringify(variant)} must be letters, digits, "_" or "-"`, { field: "variant" });
  }
  const ctx: WrittenPathContext = { file: componentDir, root, ...allow(options) };
  const { single, index } = weightFileCandidates(variant);
  for (const name of single) {
    const file = path.join(componentDir, name);
    if (!fs.existsSync(file)) continue;
    await checkResolvesInside(file, name, ctx);
    const st = await openSafetensors(file);
    return new TensorMap(componentDir, st.tensors, [file], undefined);
  }
  for (const name of index) {
    const file = path.join(componentDir, name);
    if (!fs.existsSync(file)) continue;
    await checkResolvesInside(file, name, ctx);
    return openShardIndex(componentDir, file, ctx);
  }
  throw new WeightsNotFoundError(componentDir, [...single, ...index], variantHint(componentDir, variant));
}

/** When the default files are missing but variant files exist (or the reverse), say so. */
function variantHint(componentDir: string, variant: string | undefined): string {
  const present = fs.readdirSync(componentDir).filter((f) => f.endsWith(".safetensors") || f.endsWith(".json"));
  if (variant === undefined) {
    const variants = present.filter((f) => /^(diffusion_pytorch_model|model)\.[^.]+\.safetensors$/.test(f));
    return variants.length ? `found only variant files ${variants.join(", ")}: pass the variant option` : "";
  }
  return present.length ? `found ${present.join(", ")}` : "the folder has no .safetensors or .json files";
}

async function openShardIndex(componentDir: string, indexFile: string, ctx: WrittenPathContext): Promise<CheckpointWeights> {
  const index = await readJsonObject(indexFile);
  const weightMap = index["weight_map"];
  if (!isJsonObject(weightMap)) {
    throw new ConfigError(indexFile, `expected an object {tensor: shard file}, found ${jsonTypeName(weightMap)}`, { field: "weight_map" });
  }
  const shards = new Map<string, SafetensorsFile>(); // written shard name → opened file, each opened once
  const tensors = new Map<string, TensorInfo>();
  for (const [tensor, shard] of Object.entries(weightMap)) {
    const field = `weight_map.${tensor}`;
    if (typeof shard !== "string") {
      throw new ConfigError(indexFile, `expected a shard file name, found ${jsonTypeName(shard)}`, { field });
    }
    let st = shards.get(shard);
    if (st === undefined) {
      const file = await resolveWrittenPath(componentDir, shard, { ...ctx, file: indexFile, field });
      st = await openSafetensors(file);
      shards.set(shard, st);
    }
    const info = st.tensors.get(tensor);
    if (info === undefined) throw new MissingTensorError(st.path, tensor, `${path.basename(indexFile)} maps it to this shard`);
    tensors.set(tensor, info);
  }
  if (tensors.size === 0) throw new ConfigError(indexFile, "weight_map lists no tensors", { field: "weight_map" });
  return new TensorMap(componentDir, tensors, [...shards.values()].map((s) => s.path), indexFile);
}

/**
 * A view of `source` where each alias name (key) also answers for its target tensor (value), unless the
 * source has a tensor of that name itself. For tied weights that are stored once, e.g. T5's
 * `{"encoder.embed_tokens.weight": "shared.weight"}`. The TensorInfo returned keeps the stored name.
 */
export function withAliases(source: WeightSource, aliases: Readonly<Record<string, string>>): WeightSource {
  const target = (name: string): string | undefined =>
    !source.has(name) && Object.prototype.hasOwnProperty.call(aliases, name) ? aliases[name] : undefined;
  return {
    dir: source.dir,
    has: (name) => source.has(name) || (target(name) !== undefined && source.has(target(name)!)),
    get: (name) => {
      const t = target(name);
      if (t === undefined || !source.has(t)) return source.get(name);
      return source.get(t);
    },
    names: () => {
      const own = source.names();
      const extra = Object.keys(aliases).filter((a) => !source.has(a) && source.has(aliases[a]!));
      return [...own, ...extra];
    },
  };
}

/** Throws unless `weights` holds every name in `names`; the error lists up to 5 missing names. */
export function requireTensors(weights: WeightSource, names: Iterable<string>): void {
  const missing = [...names].filter((n) => !weights.has(n));
  if (missing.length === 0) return;
  const more = missing.length > 1 ? `${missing.length - 1} more missing: ${missing.slice(1, 6).join(", ")}${missing.length > 6 ? ", ..." : ""}` : "";
  throw new MissingTensorError(weights.dir, missing[0]!, more);
}
