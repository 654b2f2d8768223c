/**
 * Typed reads of `config.json` fields, so every model validates its config the same way and every
 * error names the file and the field. Unknown keys are ignored, as diffusers and transformers do.
 */
import { ConfigError } from "../io/errors";

export type RawConfig = Record<string, unknown>;

/** Larger than any size, count or dimension in a real config (T5-XXL's d_ff is 10,240; vocabularies ~250k). */
export const MAX_CONFIG_INT = 1 << 24;

export class ConfigReader {
  constructor(readonly raw: RawConfig, readonly file: string) {
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new ConfigError(file, "expected a JSON object");
  }

  has(field: string): boolean {
    return this.raw[field] !== undefined && this.raw[field] !== null;
  }

  /** A number; `fallback` applies when the field is absent or null (the constructor default). */
  number(field: string, fallback?: number, check?: { integer?: boolean; min?: number; max?: number }): number {
    const v = this.has(field) ? this.raw[field] : fallback;
    if (typeof v !== "number" || Number.isNaN(v)) this.fail(field, "a number", this.raw[field]);
    if (check?.integer && !Number.isInteger(v)) this.fail(field, "an integer", v);
    if (check?.min !== undefined && v < check.min) this.fail(field, `a number ≥ ${check.min}`, v);
    if (check?.max !== undefined && v > check.max) this.fail(field, `a number ≤ ${check.max}`, v);
    return v;
  }

  /** An integer in [min, max]; the default max keeps a hostile size (1e9) from reaching an allocation. */
  int(field: string, fallback?: number, min = 1, max = MAX_CONFIG_INT): number {
    return this.number(field, fallback, { integer: true, min, max });
  }

  string<T extends string>(field: string, fallback?: T, allowed?: readonly T[]): T {
    const v = this.has(field) ? this.raw[field] : fallback;
    if (typeof v !== "string") this.fail(field, "a string", this.raw[field]);
    if (allowed && !allowed.includes(v as T)) this.fail(field, `one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`, v);
    return v as T;
  }

  boolean(field: string, fallback?: boolean): boolean {
    const v = this.has(field) ? this.raw[field] : fallback;
    if (typeof v !== "boolean") this.fail(field, "true or false", this.raw[field]);
    return v;
  }

  intList(field: string, fallback?: readonly number[]): number[] {
    const v = this.has(field) ? this.raw[field] : fallback;
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => Number.isInteger(x) && x > 0)) {
      this.fail(field, "a non-empty list of positive integers", this.raw[field]);
    }
    return [...(v as number[])];
  }

  stringList(field: string, fallback?: readonly string[]): string[] {
    const v = this.has(field) ? this.raw[field] : fallback;
    if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) this.fail(field, "a list of strings", this.raw[field]);
    return [...(v as string[])];
  }

  /** A rule that involves several fields (e.g. cross_attention_dim = heads × head dim). */
  require(ok: boolean, field: string, problem: string): void {
    if (!ok) throw new ConfigError(this.file, problem, { field });
  }

  fail(field: string, expected: string, found: unknown): never {
    const got = found === undefined ? "it is missing" : `found ${JSON.stringify(found)}`;
    throw new ConfigError(this.file, `expected ${expected}, ${got}`, { field });
  }
}
