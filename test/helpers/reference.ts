/**
 * Reading the reference tensors written by tools/reference/make_fixtures.py, and comparing against them.
 */
import * as fs from "fs";
import * as path from "path";
import { openSafetensors, readTensorData, toTypedArray } from "../../src/io/safetensors";
import { fixturesDir } from "./paths";

export interface RefTensor {
  data: Float32Array | BigInt64Array | Int32Array | Uint8Array | Float64Array;
  dims: number[];
}

/** Every tiny pipeline config committed under test/fixtures (folders holding pipeline/ and reference.safetensors). */
export function tinyConfigs(): { name: string; dir: string; pipeline: string }[] {
  if (!fs.existsSync(fixturesDir)) return [];
  return fs.readdirSync(fixturesDir)
    .map((name) => ({ name, dir: path.join(fixturesDir, name), pipeline: path.join(fixturesDir, name, "pipeline") }))
    .filter((c) => fs.existsSync(path.join(c.dir, "reference.safetensors")) && fs.existsSync(c.pipeline));
}

export async function loadReference(configDir: string, fileName = "reference.safetensors"): Promise<(name: string) => Promise<RefTensor>> {
  const file = await openSafetensors(path.join(configDir, fileName));
  return async (name: string) => {
    const info = file.tensors.get(name);
    if (!info) throw new Error(`${file.path}: no reference tensor "${name}"`);
    return { data: toTypedArray(info, await readTensorData(info)) as RefTensor["data"], dims: [...info.shape] };
  };
}

export function referenceJson(configDir: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(configDir, "reference.json"), "utf8"));
}

export interface Difference {
  maxAbs: number;
  /** Flat index of the largest difference, and the values there. */
  at: number;
  actual: number;
  expected: number;
}

export function maxAbsDifference(actual: ArrayLike<number>, expected: ArrayLike<number>): Difference {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != expected ${expected.length}`);
  let d: Difference = { maxAbs: 0, at: -1, actual: NaN, expected: NaN };
  for (let i = 0; i < actual.length; i++) {
    const diff = Math.abs(actual[i] - expected[i]);
    // NaN anywhere must fail, so it counts as infinitely far.
    const v = Number.isNaN(diff) ? Infinity : diff;
    if (v > d.maxAbs || d.at < 0) d = { maxAbs: v, at: i, actual: actual[i], expected: expected[i] };
  }
  return d;
}

/** Index → "[b, c, y, x]" for messages. */
export function unravel(index: number, dims: readonly number[]): string {
  const out: number[] = [];
  for (let i = dims.length - 1; i >= 0; i--) {
    out.unshift(index % dims[i]);
    index = Math.floor(index / dims[i]);
  }
  return `[${out.join(", ")}]`;
}

export function describeDifference(d: Difference, dims: readonly number[]): string {
  return `max |actual − expected| = ${d.maxAbs.toExponential(3)} at ${unravel(d.at, dims)} (actual ${d.actual}, expected ${d.expected})`;
}

/**
 * The first `width` entries of the last axis of a row-major tensor, and the largest magnitude among the rest (the
 * attention references store only the text tokens inside the longest mask: past it probabilities are exactly 0).
 */
export function firstColumns(data: ArrayLike<number>, dims: readonly number[], width: number): { data: Float32Array; restMaxAbs: number } {
  const last = dims[dims.length - 1];
  const rows = data.length / last;
  const out = new Float32Array(rows * width);
  let restMaxAbs = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < last; c++) {
      const v = data[r * last + c];
      if (c < width) out[r * width + c] = v;
      else restMaxAbs = Math.max(restMaxAbs, Math.abs(v));
    }
  }
  return { data: out, restMaxAbs };
}
