/**
 * Scheduler configs with diffusers' `from_config` semantics.
 *
 * A scheduler class declares its constructor parameters (the config keys it reads) with their defaults. Making
 * a scheduler from any config dict — its own, or another scheduler's — works as in diffusers:
 * - keys listed in the dict's `_use_default_values` (parameters that were defaults in the scheduler that wrote
 *   the dict) are dropped first, so the new class applies its own defaults for them;
 * - the class's own parameters are taken from the dict (or from explicit overrides) and validated; absent ones
 *   get the class default;
 * - every other key (another class's parameters, `_diffusers_version`, ...) is ignored for construction but
 *   kept in the resulting config, so a round trip through another scheduler class keeps them;
 * - the resulting config records `_class_name` and its own `_use_default_values`.
 */

import type { JsonObject, JsonValue } from "../io/json";
import { SchedulerConfigError } from "./errors";

export type SchedulerConfig = Readonly<Record<string, JsonValue>>;

/** "none": only null is accepted (options diffusers takes as Python objects, which pixart-ts does not have). */
type FieldType = "number" | "integer" | "boolean" | "string" | "number[]" | "integer[]" | "none";

export interface FieldSpec<V> {
  readonly type: FieldType;
  readonly default: V;
  /** null is allowed (besides values of `type`). */
  readonly nullable?: boolean;
  /** Allowed strings, for `type: "string"`. */
  readonly choices?: readonly string[];
  /** Smallest allowed number. */
  readonly min?: number;
}

/** Maps each config key of T to the description of its field. */
export type ConfigSchema<T> = { readonly [K in keyof T]: FieldSpec<T[K]> };

export interface ResolvedConfig<T> {
  /** The class's parameters, validated, defaults filled in. */
  readonly params: T;
  /** What `scheduler.config` holds: params, the kept foreign keys, `_class_name`, `_use_default_values`. */
  readonly config: SchedulerConfig;
}

function describe(v: JsonValue | undefined): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  return `${typeof v} ${JSON.stringify(v) ?? String(v)}`;
}

function checkField<V>(className: string, key: string, spec: FieldSpec<V>, value: JsonValue): V {
  const fail = (expected: string): never => {
    throw new SchedulerConfigError(className, key, `expected ${expected}${spec.nullable ? " or null" : ""}, got ${describe(value)}`);
  };
  if (value === null) return spec.nullable || spec.type === "none" ? (null as V) : fail(spec.type);
  switch (spec.type) {
    case "none":
      return fail("null (pixart-ts does not support this option)");
    case "boolean":
      if (typeof value !== "boolean") fail("a boolean");
      break;
    case "string":
      if (typeof value !== "string") fail(spec.choices ? `one of ${spec.choices.map((c) => `"${c}"`).join(", ")}` : "a string");
      if (spec.choices && !spec.choices.includes(value as string)) {
        fail(`one of ${spec.choices.map((c) => `"${c}"`).join(", ")}`);
      }
      break;
    case "number":
    case "integer": {
      const integer = spec.type === "integer";
      const min = spec.min === undefined ? "" : ` >= ${spec.min}`;
      if (typeof value !== "number" || Number.isNaN(value) || (integer && !Number.isSafeInteger(value))) {
        fail(integer ? `an integer${min}` : `a number${min}`);
      }
      if (spec.min !== undefined && (value as number) < spec.min) fail(integer ? `an integer${min}` : `a number${min}`);
      break;
    }
    case "number[]":
    case "integer[]": {
      const integer = spec.type === "integer[]";
      const ok = Array.isArray(value) && value.every((x) => typeof x === "number" && Number.isFinite(x) &&
        (!integer || Number.isSafeInteger(x)));
      if (!ok) fail(integer ? "an array of integers" : "an array of finite numbers");
      return [...(value as number[])] as V;
    }
  }
  return value as V;
}

/**
 * Builds a class's parameters and resulting config from `input` (any scheduler's config) and `overrides`
 * (diffusers' `from_config(config, **kwargs)`), as described at the top of this file.
 */
export function resolveConfig<T>(
  className: string,
  schema: ConfigSchema<T>,
  input: SchedulerConfig,
  overrides: SchedulerConfig = {},
): ResolvedConfig<T> {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new SchedulerConfigError(className, "(config)", `expected an object, got ${describe(input as JsonValue)}`);
  }
  const usedDefaults = input._use_default_values;
  const dropped = new Set(Array.isArray(usedDefaults) ? usedDefaults.filter((k) => typeof k === "string") as string[] : []);
  const given: Record<string, JsonValue> = {};
  for (const [key, value] of Object.entries(input)) {
    if (key !== "_use_default_values" && !dropped.has(key)) given[key] = value;
  }
  const params: Record<string, unknown> = {};
  const config: JsonObject = {};
  const defaulted: string[] = [];
  for (const key of Object.keys(schema) as (keyof T & string)[]) {
    const spec = schema[key] as FieldSpec<unknown>;
    const has = (o: SchedulerConfig): boolean => Object.prototype.hasOwnProperty.call(o, key);
    let value: unknown;
    if (has(overrides)) value = checkField(className, key, spec, overrides[key]);
    else if (has(given)) value = checkField(className, key, spec, given[key]);
    else {
      value = Array.isArray(spec.default) ? [...spec.default] : spec.default;
      defaulted.push(key);
    }
    params[key] = value;
    config[key] = value as JsonValue;
  }
  config._use_default_values = defaulted;
  for (const [key, value] of Object.entries(given)) {
    if (!Object.prototype.hasOwnProperty.call(schema, key)) config[key] = value;
  }
  config._class_name = className;
  return { params: params as T, config };
}
