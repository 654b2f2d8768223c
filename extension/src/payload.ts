/**
 * Turning an output's raw data into a payload a renderer may draw: JSON text or object, the version it was written
 * with, and its JSON Schema (the same files the library validates with, src/display/schemas). Outputs are untrusted:
 * anything that is not exactly what the schema says is refused here, with the schema's own words, so renderers only
 * meet well-formed payloads.
 */
import Ajv2020 from "ajv/dist/2020";
import type { ValidateFunction } from "ajv";
import arraySchema from "../../src/display/schemas/array.schema.json";
import attentionSchema from "../../src/display/schemas/attention.schema.json";
import latentsSchema from "../../src/display/schemas/latents.schema.json";
import memorySchema from "../../src/display/schemas/memory.schema.json";

export const LATENTS_MIME = "application/vnd.pixart.latents+json";
export const ATTENTION_MIME = "application/vnd.pixart.attention+json";
export const MEMORY_MIME = "application/vnd.pixart.memory+json";
export type PixartMime = typeof LATENTS_MIME | typeof ATTENTION_MIME | typeof MEMORY_MIME;

const schemas: Record<PixartMime, object> = {
  [LATENTS_MIME]: latentsSchema,
  [ATTENTION_MIME]: attentionSchema,
  [MEMORY_MIME]: memorySchema,
};

/** The payload version each renderer was written for: the `const` of the schema's `version` property. */
export function supportedVersion(mime: PixartMime): number {
  return (schemas[mime] as { properties: { version: { const: number } } }).properties.version.const;
}

/** Longest JSON text a renderer parses (a 512-step run at 1024 px keeps 48 steps: a few MB). */
export const MAX_JSON_CHARS = 64 * 1024 * 1024;
/** At most this many errors are listed in a message. */
const MAX_LISTED_ERRORS = 5;

export type Parsed<T> =
  | { kind: "ok"; payload: T }
  /** A payload from a newer writer: show the bundle's PNG instead. */
  | { kind: "newer"; version: number; supported: number }
  | { kind: "invalid"; message: string };

let ajv: Ajv2020 | undefined;
const validators = new Map<PixartMime, ValidateFunction>();

function validator(mime: PixartMime): ValidateFunction {
  let fn = validators.get(mime);
  if (!fn) {
    ajv ??= new Ajv2020({ allErrors: false, strict: true, schemas: [arraySchema] });
    fn = ajv.compile(schemas[mime]);
    validators.set(mime, fn);
  }
  return fn;
}

/** The data of an output as a payload of `mime`, or why it cannot be drawn. Never throws. */
export function parsePayload<T>(mime: PixartMime, raw: unknown): Parsed<T> {
  let value = raw;
  if (typeof raw === "string") {
    // tslab's display.raw sends JSON as a string.
    if (raw.length > MAX_JSON_CHARS) return { kind: "invalid", message: `the data is ${raw.length} characters of text, more than the ${MAX_JSON_CHARS} this renderer reads` };
    try {
      value = JSON.parse(raw);
    } catch (e) {
      return { kind: "invalid", message: `the data is not valid JSON (${(e as Error).message})` };
    }
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { kind: "invalid", message: `the data must be a JSON object, got ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value}` };
  }
  const version = (value as { version?: unknown }).version;
  const supported = supportedVersion(mime);
  if (typeof version === "number" && Number.isInteger(version) && version > supported) return { kind: "newer", version, supported };
  const fn = validator(mime);
  if (!fn(value)) {
    const errors = (fn.errors ?? []).slice(0, MAX_LISTED_ERRORS).map((e) => `${e.instancePath || "/"} ${e.message ?? "is invalid"}`);
    return { kind: "invalid", message: `the data does not match the ${mime} version ${supported} schema: ${errors.join("; ")}` };
  }
  return { kind: "ok", payload: value as T };
}
