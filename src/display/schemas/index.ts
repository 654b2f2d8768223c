/**
 * The custom MIME types of pixart-ts outputs and their JSON Schemas: the one definition of each payload, used by the
 * tests, by `validatePayload`, and by the JupyterLab extension's renderers. Validation uses ajv (JSON Schema 2020-12),
 * the maintained reference validator, rather than a hand-written subset: the schemas use $ref across files,
 * if/then and dependentRequired, and the extension may want the same checks in the browser.
 */
import arraySchema from "./array.schema.json";
import attentionSchema from "./attention.schema.json";
import latentsSchema from "./latents.schema.json";
import memorySchema from "./memory.schema.json";
// Types only: ajv itself is required when the first payload is validated, so importing display/ does not load it.
import type { ValidateFunction } from "ajv";
import type Ajv2020 from "ajv/dist/2020";

export const LATENTS_MIME = "application/vnd.pixart.latents+json";
export const MEMORY_MIME = "application/vnd.pixart.memory+json";
export const ATTENTION_MIME = "application/vnd.pixart.attention+json";

/** MIME type → schema of its payload. Shared definitions (the encoded array) are registered beside them. */
const payloadSchemas = new Map<string, object>([
  [LATENTS_MIME, latentsSchema],
  [MEMORY_MIME, memorySchema],
  [ATTENTION_MIME, attentionSchema],
]);
const sharedSchemas: object[] = [arraySchema];

/** A payload that does not match the schema of its MIME type. */
export class PayloadSchemaError extends Error {
  override name = "PayloadSchemaError";
  constructor(readonly mimeType: string, readonly errors: string[]) {
    super(`${mimeType} payload does not match its schema: ${errors.join("; ")}`);
  }
}

let ajv: Ajv2020 | undefined;
const compiled = new Map<string, ValidateFunction>();

function validator(mimeType: string): ValidateFunction {
  let fn = compiled.get(mimeType);
  if (fn) return fn;
  const schema = payloadSchemas.get(mimeType);
  if (!schema) throw new PayloadSchemaError(mimeType, [`no schema is registered for this MIME type (known: ${[...payloadSchemas.keys()].join(", ")})`]);
  if (!ajv) {
    const Ajv = (require("ajv/dist/2020") as typeof import("ajv/dist/2020")).default;
    ajv = new Ajv({ allErrors: true, strict: true, schemas: sharedSchemas });
  }
  fn = ajv.compile(schema);
  compiled.set(mimeType, fn);
  return fn;
}

/** Adds the schema of another custom MIME type (e.g. the attention maps); shared schemas may be given with it. */
export function registerPayloadSchema(mimeType: string, schema: object, shared: object[] = []): void {
  if (ajv) for (const s of shared) ajv.addSchema(s);
  else sharedSchemas.push(...shared);
  payloadSchemas.set(mimeType, schema);
  compiled.delete(mimeType);
}

/** The MIME types that have a schema. */
export function payloadMimeTypes(): string[] {
  return [...payloadSchemas.keys()];
}

/** The schema errors of a payload (instance path and message each), empty when it is valid. */
export function payloadErrors(mimeType: string, payload: unknown): string[] {
  const fn = validator(mimeType);
  if (fn(payload)) return [];
  return (fn.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? "is invalid"}`);
}

export function assertValidPayload(mimeType: string, payload: unknown): void {
  const errors = payloadErrors(mimeType, payload);
  if (errors.length > 0) throw new PayloadSchemaError(mimeType, errors);
}
