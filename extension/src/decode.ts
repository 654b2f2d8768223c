/**
 * Encoded arrays (src/display/schemas/array.schema.json) in the browser: base64 little-endian bytes through atob,
 * with a size limit, since the library's own decoder (src/display/arrays.ts) is built on Node's Buffer.
 */
import type { EncodedArray } from "../../src/display/payloads";

/** Largest array a renderer decodes, in elements (a 4096×4096 RGB image is 50 M). */
export const MAX_ELEMENTS = 64 * 1024 * 1024;

/** An encoded array that cannot be decoded; the message names the field. */
export class ArrayDataError extends Error {
  override name = "ArrayDataError";
}

function elementCount(dims: readonly number[], field: string): number {
  let n = 1;
  for (const d of dims) {
    n *= d;
    if (n > MAX_ELEMENTS) throw new ArrayDataError(`${field}: dims [${dims.join(", ")}] hold more than ${MAX_ELEMENTS} elements, more than this renderer draws`);
  }
  return n;
}

function bytesOf(encoded: EncodedArray, expected: number, field: string): Uint8Array {
  // Base64 is 4 characters per 3 bytes; refuse a mismatched size before decoding megabytes.
  const expectedChars = Math.ceil(expected / 3) * 4;
  if (encoded.data.length !== expectedChars) {
    throw new ArrayDataError(`${field}: ${encoded.data.length} base64 characters for dims [${encoded.dims.join(", ")}] of ${encoded.dtype}, expected ${expectedChars}`);
  }
  const text = atob(encoded.data);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  if (bytes.length !== expected) throw new ArrayDataError(`${field}: ${bytes.length} bytes for dims [${encoded.dims.join(", ")}], expected ${expected}`);
  return bytes;
}

/** float32 (exact) or quantised uint8 (offset + q·scale) as float values; non-finite float32 values stay as they are. */
export function decodeFloat(encoded: EncodedArray, field: string): Float32Array {
  const n = elementCount(encoded.dims, field);
  if (encoded.dtype === "float32") {
    const bytes = bytesOf(encoded, n * 4, field);
    const view = new DataView(bytes.buffer);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
    return out;
  }
  const q = bytesOf(encoded, n, field);
  const scale = encoded.scale ?? 1 / 255;
  const offset = encoded.offset ?? 0;
  return Float32Array.from(q, (v) => offset + v * scale);
}

/** Raw uint8 bytes (RGB pixels). */
export function decodeBytes(encoded: EncodedArray, field: string): Uint8Array {
  if (encoded.dtype !== "uint8" || encoded.scale !== undefined) throw new ArrayDataError(`${field}: expected raw uint8 bytes, got ${encoded.dtype}${encoded.scale !== undefined ? " (quantised)" : ""}`);
  return bytesOf(encoded, elementCount(encoded.dims, field), field);
}

/** Throws unless `dims` has `rank` entries and, where given, the expected sizes. */
export function expectDims(encoded: EncodedArray, field: string, rank: number, expected: (number | undefined)[] = []): number[] {
  const dims = encoded.dims;
  if (dims.length !== rank) throw new ArrayDataError(`${field}: expected ${rank} dims, got [${dims.join(", ")}]`);
  expected.forEach((want, i) => {
    if (want !== undefined && dims[i] !== want) throw new ArrayDataError(`${field}: dim ${i} is ${dims[i]}, expected ${want} (dims [${dims.join(", ")}])`);
  });
  return dims;
}
