/**
 * The repository's default model and call, from models/default.json: the one place the demo, the tutorial
 * notebooks (tools/notebooks/make_tutorials.py) and the reference tool (tools/shapes/evaluate.py) take them from.
 */
import * as fs from "fs";
import * as path from "path";
import { ConfigError } from "../io/errors";
import { jsonTypeName, readJsonObject } from "../io/json";

export interface DefaultCall {
  /** Absolute path of the default diffusers-format checkpoint folder. */
  model: string;
  prompt: string;
  numInferenceSteps: number;
  guidanceScale: number;
  seed: number;
  /** Shorter side, in pixels, the picture is enlarged to for display (the tiny model draws 32 px). */
  displaySize: number;
}

/** The repository root, from dist/src/cli or src/cli. */
export function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, "package.json")) && dir !== path.dirname(dir)) dir = path.dirname(dir);
  return dir;
}

export function defaultsFile(): string {
  return path.join(repoRoot(), "models", "default.json");
}

export async function readDefaults(file = defaultsFile()): Promise<DefaultCall> {
  const json = await readJsonObject(file);
  const field = <T extends "string" | "number">(key: string, type: T): T extends "string" ? string : number => {
    const v = json[key];
    if (typeof v !== type || (type === "number" && !Number.isFinite(v))) {
      throw new ConfigError(file, `"${key}" should be a ${type}, got ${jsonTypeName(v)}`);
    }
    return v as T extends "string" ? string : number;
  };
  const model = field("model", "string");
  if (path.isAbsolute(model)) throw new ConfigError(file, `"model" should be relative to the repository root, got ${model}`);
  return {
    model: path.join(repoRoot(), model),
    prompt: field("prompt", "string"),
    numInferenceSteps: field("numInferenceSteps", "number"),
    guidanceScale: field("guidanceScale", "number"),
    seed: field("seed", "number"),
    displaySize: field("displaySize", "number"),
  };
}
