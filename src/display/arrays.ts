/**
 * Large arrays in display payloads travel as base64 of their little-endian bytes (a third bigger than the bytes,
 * against ~10 characters per float as JSON numbers): float32 as is, or uint8 quantised with the scale stated, or
 * raw uint8 (RGB pixels). The form is the `array-1.json` schema; every custom MIME type uses it.
 */

export interface EncodedArray {
  dtype: "float32" | "uint8";
  dims: number[];
  encoding: "base64";
  /** Base64 of the little-endian element bytes. */
  data: string;
  /** Quantised uint8 only: value = offset + q * scale. */
  scale?: number;
  offset?: number;
}

/** A payload array that does not decode: wrong length for its dims, unknown dtype or encoding. */
export class EncodedArrayError extends Error {
  override name = "EncodedArrayError";
}

const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function count(dims: readonly number[]): number {
  return dims.reduce((a, d) => a * d, 1);
}

function checkDims(dims: readonly number[], length: number, what: string): void {
  if (!dims.every((d) => Number.isInteger(d) && d >= 0)) throw new EncodedArrayError(`${what}: dims must be non-negative integers, got [${dims.join(", ")}]`);
  if (count(dims) !== length) throw new EncodedArrayError(`${what}: dims [${dims.join(", ")}] hold ${count(dims)} elements, the data has ${length}`);
}

/** float32 → base64 of little-endian bytes (lossless). */
export function encodeFloat32(data: Float32Array, dims: readonly number[]): EncodedArray {
  checkDims(dims, data.length, "encodeFloat32");
  const bytes = Buffer.alloc(data.length * 4);
  if (littleEndian) Buffer.from(data.buffer, data.byteOffset, data.byteLength).copy(bytes);
  else data.forEach((v, i) => bytes.writeFloatLE(v, i * 4));
  return { dtype: "float32", dims: [...dims], encoding: "base64", data: bytes.toString("base64") };
}

/** Raw bytes (e.g. RGB pixels) as they are. */
export function encodeUint8(data: Uint8Array, dims: readonly number[]): EncodedArray {
  checkDims(dims, data.length, "encodeUint8");
  return { dtype: "uint8", dims: [...dims], encoding: "base64", data: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64") };
}

/**
 * float32 → uint8 over [min, max] of the data (or the range given): q = round((v - offset) / scale), a quarter of
 * float32's size with an error of at most scale / 2 per element. Non-finite values clamp to the range.
 */
export function quantizeUint8(data: Float32Array, dims: readonly number[], range?: { min: number; max: number }): EncodedArray {
  checkDims(dims, data.length, "quantizeUint8");
  let { min, max } = range ?? { min: Infinity, max: -Infinity };
  if (!range) for (const v of data) if (Number.isFinite(v)) [min, max] = [Math.min(min, v), Math.max(max, v)];
  if (!Number.isFinite(min) || !Number.isFinite(max)) [min, max] = [0, 0];
  const scale = max > min ? (max - min) / 255 : 1;
  const q = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = Number.isNaN(data[i]) ? min : data[i];
    q[i] = Math.min(255, Math.max(0, Math.round((v - min) / scale)));
  }
  return { ...encodeUint8(q, dims), scale, offset: min };
}

/** The values of an encoded array: float32 and quantised uint8 → Float32Array, raw uint8 → Uint8Array. */
export function decodeArray(encoded: EncodedArray): Float32Array | Uint8Array {
  if (encoded.encoding !== "base64") throw new EncodedArrayError(`decodeArray: encoding must be "base64", got ${JSON.stringify(encoded.encoding)}`);
  const bytes = Buffer.from(encoded.data, "base64");
  if (encoded.dtype === "float32") {
    if (bytes.length % 4 !== 0) throw new EncodedArrayError(`decodeArray: float32 data has ${bytes.length} bytes, not a multiple of 4`);
    const out = new Float32Array(bytes.length / 4);
    for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
    checkDims(encoded.dims, out.length, "decodeArray");
    return out;
  }
  if (encoded.dtype !== "uint8") throw new EncodedArrayError(`decodeArray: dtype must be "float32" or "uint8", got ${JSON.stringify(encoded.dtype)}`);
  const q = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
  checkDims(encoded.dims, q.length, "decodeArray");
  if (encoded.scale === undefined) return Uint8Array.from(q);
  const { scale, offset = 0 } = encoded;
  return Float32Array.from(q, (v) => offset + v * scale);
}
