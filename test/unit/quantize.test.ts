/**
 * Quantization math (round-trip bounds derived from the schemes) and the quantized linear functions run by
 * onnxruntime, against a float64 JS matmul with the dequantized weights.
 */
import * as assert from "assert";
import * as path from "path";
import * as ort from "onnxruntime-node";
import { openWeights } from "../../src/io/checkpoint";
import { writeSafetensors, type TensorToWrite } from "../../src/io/safetensors-writer";
import { GraphBuilder } from "../../src/onnx/graph";
import { createSession } from "../../src/onnx/session";
import {
  INT4_BLOCK_SIZE, NonFiniteRowError, QuantizeOptionError, allocInt8, collectLinears, dequantizeInt4, dequantizeInt8,
  int4Blocks, parseInt4AccuracyLevel, parseQuantizeMethod, quantizeInt4, quantizeInt8, quantizeInt8Rows, quantizedLinear,
  quantizedTensors, type Int4AccuracyLevel, type QuantizeMethod,
} from "../../src/models/quantize";
import { TorchGenerator } from "../../src/random";
import { makeTempDir, removeTempDir } from "../helpers/st-writer";

/** float32 unit roundoff. */
const U = 2 ** -24;

/** Weights with the awkward cases: a zero row, a row with one large outlier, a row of one sign. */
function testWeights(out: number, inp: number, seed: number): Float32Array {
  const w = new TorchGenerator(seed).randn([out, inp]).map((v) => v * 0.05);
  w.fill(0, 0, inp);
  if (out > 1) w[inp + 3] = 2.5;
  if (out > 2) for (let k = 0; k < inp; k++) w[2 * inp + k] = Math.abs(w[2 * inp + k]) + 0.01;
  return w;
}

const SHAPES: [number, number][] = [[5, 37], [16, 24], [48, 96], [7, 70]];

describe("quantize: int8 per output channel", () => {
  it("a hand-worked row: scale max|w|/127, round to nearest, stored as [in, out]", () => {
    const w = Float32Array.of(1, -0.3, 0.25, 0, 0, 0);
    const q = quantizeInt8(w, 2, 3);
    assert.strictEqual(q.scales[0], Math.fround(1 / 127));
    assert.strictEqual(q.scales[1], 0);
    // -0.3·127 = -38.1 → -38, 0.25·127 = 31.75 → 32; column 1 is the all-zero row.
    assert.deepStrictEqual([...q.q], [127, 0, -38, 0, 32, 0]);
  });

  for (const [out, inp] of SHAPES) {
    it(`[${out}, ${inp}]: |w − ŵ| ≤ scale/2 per element, |q| ≤ 127, the row maximum maps to ±127`, () => {
      const w = testWeights(out, inp, out * inp);
      const q = quantizeInt8(w, out, inp);
      const deq = dequantizeInt8(q, out, inp);
      for (let n = 0; n < out; n++) {
        let max = 0;
        for (let k = 0; k < inp; k++) max = Math.max(max, Math.abs(w[n * inp + k]));
        assert.strictEqual(q.scales[n], Math.fround(max / 127), `row ${n} scale`);
        for (let k = 0; k < inp; k++) {
          const i = n * inp + k;
          // Half a step, plus the float32 rounding of ŵ = q·scale.
          const bound = q.scales[n] / 2 + Math.abs(deq[i]) * U;
          assert.ok(Math.abs(w[i] - deq[i]) <= bound, `[${n}, ${k}]: |${w[i]} − ${deq[i]}| > ${bound}`);
          assert.ok(Math.abs(q.q[k * out + n]) <= 127);
        }
        if (max > 0) assert.ok([...Array(inp).keys()].some((k) => Math.abs(q.q[k * out + n]) === 127), `row ${n} never reaches 127`);
      }
    });
  }

  it("quantizing in row chunks gives the same bytes as all at once (the cache reads in chunks)", () => {
    const [out, inp] = [48, 96];
    const w = testWeights(out, inp, 3);
    const whole = quantizeInt8(w, out, inp);
    const chunked = allocInt8(out, inp);
    for (const [r0, r1] of [[0, 5], [5, 31], [31, 48]]) quantizeInt8Rows(w.subarray(r0 * inp, r1 * inp), r0, inp, chunked);
    assert.deepStrictEqual(chunked.q, whole.q);
    assert.deepStrictEqual(chunked.scales, whole.scales);
  });

  it("refuses inf/NaN weights, naming the row", () => {
    const w = testWeights(4, 8, 1);
    w[2 * 8 + 5] = NaN;
    assert.throws(() => quantizeInt8(w, 4, 8), (e: Error) => e instanceof NonFiniteRowError && e.row === 2);
  });
});

describe("quantize: int4 blocks of 32, asymmetric", () => {
  for (const [out, inp] of SHAPES) {
    it(`[${out}, ${inp}]: |w − ŵ| ≤ scale/2 per block, zero points in 0..15, padding holds the zero point`, () => {
      const w = testWeights(out, inp, 7 * out + inp);
      const q = quantizeInt4(w, out, inp);
      const deq = dequantizeInt4(q, out, inp);
      const kBlocks = int4Blocks(inp);
      assert.strictEqual(q.b.length, out * kBlocks * 16);
      assert.strictEqual(q.scales.length, out * kBlocks);
      assert.strictEqual(q.zeroPoints.length, out * Math.ceil(kBlocks / 2));
      for (let n = 0; n < out; n++) {
        for (let blk = 0; blk < kBlocks; blk++) {
          const scale = q.scales[n * kBlocks + blk];
          const zpByte = q.zeroPoints[n * Math.ceil(kBlocks / 2) + (blk >> 1)];
          const zp = blk & 1 ? zpByte >> 4 : zpByte & 15;
          for (let k = blk * INT4_BLOCK_SIZE; k < Math.min(inp, (blk + 1) * INT4_BLOCK_SIZE); k++) {
            const i = n * inp + k;
            const bound = scale / 2 + Math.abs(deq[i]) * U;
            assert.ok(Math.abs(w[i] - deq[i]) <= bound, `[${n}, ${k}]: |${w[i]} − ${deq[i]}| > ${bound}`);
          }
          for (let k = inp; k < (blk + 1) * INT4_BLOCK_SIZE; k++) {
            const i = k - blk * INT4_BLOCK_SIZE;
            const byte = q.b[(n * kBlocks + blk) * 16 + (i >> 1)];
            assert.strictEqual(i & 1 ? byte >> 4 : byte & 15, zp, `padding at k=${k}`);
          }
        }
      }
    });
  }

  it("a hand-worked block: range [min(w,0), max(w,0)] over 15 steps, zero point round(−min/scale)", () => {
    const w = new Float32Array(32);
    w.set([1.5, -0.75, 0.1]);
    const q = quantizeInt4(w, 1, 32);
    const scale = Math.fround(2.25 / 15); // 0.15
    assert.strictEqual(q.scales[0], scale);
    assert.strictEqual(q.zeroPoints[0], 5); // −(−0.75)/0.15 = 5
    // 1.5/0.15 + 5 = 15, −0.75/0.15 + 5 = 0, 0.1/0.15 + 5 = 5.67 → 6, zeros → 5; low nibble first.
    assert.strictEqual(q.b[0], 15 | (0 << 4));
    assert.strictEqual(q.b[1], 6 | (5 << 4));
    assert.ok(q.b.subarray(2).every((b) => b === (5 | (5 << 4))));
  });
});

describe("quantize: non-finite weights", () => {
  for (const [what, value] of [["NaN", NaN], ["+inf", Infinity], ["-inf", -Infinity]] as const) {
    it(`int4 refuses ${what}, naming the row`, () => {
      const w = testWeights(4, 40, 2);
      w[3 * 40 + 35] = value;
      assert.throws(() => quantizeInt4(w, 4, 40), (e: Error) => e instanceof NonFiniteRowError && e.row === 3);
    });
  }
});

describe("quantize: options", () => {
  it("unknown method → QuantizeOptionError naming the option and the allowed values", () => {
    assert.throws(() => parseQuantizeMethod("int16", "textEncoder.quantize"), (e: Error) =>
      e instanceof QuantizeOptionError && e.name === "QuantizeOptionError" && e.option === "textEncoder.quantize" &&
      /textEncoder\.quantize: expected one of "int8", "int4", got "int16"/.test(e.message));
  });

  it("int4 accuracy level other than 0 or 4 → QuantizeOptionError", () => {
    assert.throws(() => parseInt4AccuracyLevel(2), (e: Error) =>
      e instanceof QuantizeOptionError && /int4AccuracyLevel: expected one of 0, 4, got 2/.test(e.message));
  });
});

/** x [M, K] · ŵᵀ in float64, and Σ|x||ŵ| per output (for the rounding bounds). */
function reference(x: Float32Array, deq: Float32Array, m: number, k: number, n: number): { y: Float64Array; absSum: Float64Array } {
  const y = new Float64Array(m * n);
  const absSum = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      let abs = 0;
      for (let t = 0; t < k; t++) {
        acc += x[i * k + t] * deq[j * k + t];
        abs += Math.abs(x[i * k + t] * deq[j * k + t]);
      }
      y[i * n + j] = acc;
      absSum[i * n + j] = abs;
    }
  }
  return { y, absSum };
}

/** error / bound, where an exact result (e.g. the all-zero weight row, bound 0) counts as 0. */
function ratio(error: number, bound: number): number {
  return error === 0 ? 0 : error / bound;
}

interface LinearRun {
  y: Float32Array;
  deq: Float32Array;
  x: Float32Array;
}

/** One Linear [out, inp] (+ bias) on x [2, rows, inp] through the quantized linear function and onnxruntime. */
async function runLinear(method: QuantizeMethod, out: number, inp: number, rows: number, opts: { accuracyLevel?: Int4AccuracyLevel; xScale?: number } = {}): Promise<LinearRun> {
  const dir = makeTempDir("pixart-quant-");
  try {
    const w = testWeights(out, inp, out + 2 * inp);
    const bias = new TorchGenerator(5).randn([out]);
    const t = quantizedTensors(method, { prefix: "lin", shape: [out, inp] });
    const tensors: TensorToWrite[] = [{ name: "lin.bias", dtype: "F32", shape: [out], data: bias }];
    let deq: Float32Array;
    if (method === "int8") {
      const q = quantizeInt8(w, out, inp);
      deq = dequantizeInt8(q, out, inp);
      tensors.push({ ...t.q, data: q.q }, { ...t.scales, data: q.scales });
    } else {
      const q = quantizeInt4(w, out, inp);
      deq = dequantizeInt4(q, out, inp);
      tensors.push({ ...t.q, data: q.b }, { ...t.scales, data: q.scales }, { ...t.zeroPoints!, data: q.zeroPoints });
    }
    await writeSafetensors(path.join(dir, "model.safetensors"), tensors);
    const g = new GraphBuilder("linear", await openWeights(dir));
    const x = g.input("x", "float32", ["batch", "rows", inp]);
    g.output(quantizedLinear(method, { accuracyLevel: opts.accuracyLevel })(g, x, "lin", { shape: [out, inp] }), "y", "float32", ["batch", "rows", out]);
    const session = await createSession(g.build(), { prepack: opts.accuracyLevel === 4 });
    const xs = new TorchGenerator(11).randn([2 * rows * inp]).map((v) => v * (opts.xScale ?? 1));
    try {
      const res = await session.run({ x: new ort.Tensor("float32", xs, [2, rows, inp]) });
      // The graph adds the bias after the matmul; take it off again to compare the matmul alone.
      const y = (res.y.data as Float32Array).map((v, i) => v - bias[i % out]);
      return { y, deq, x: xs };
    } finally {
      await session.release();
    }
  } finally {
    removeTempDir(dir);
  }
}

describe("quantize: graph ops vs a JS matmul with the dequantized weights", () => {
  for (const [out, inp] of SHAPES) {
    it(`int4 MatMulNBits, accuracy level 0, [${out}, ${inp}]: only fp32 rounding, |Δ| ≤ (K+2)·u·Σ|x·ŵ|`, async () => {
      const { y, deq, x } = await runLinear("int4", out, inp, 9);
      const ref = reference(x, deq, 18, inp, out);
      // A dot product of K terms in any summation order is within γ_K·Σ|x·ŵ| (Higham); ŵ = (q − zp)·scale is
      // rounded once in float32 by both sides, and the bias add (subtracted again here) adds one more rounding.
      let worst = 0;
      for (let i = 0; i < y.length; i++) {
        const bound = (inp + 2) * U * ref.absSum[i] + 2 * U * Math.abs(ref.y[i]);
        worst = Math.max(worst, ratio(Math.abs(y[i] - ref.y[i]), bound));
      }
      assert.ok(worst <= 1, `error is ${worst.toFixed(2)}× the fp32 rounding bound`);
    });
  }

  it("int4 MatMulNBits, accuracy level 4 (int8 activations per block): |Δ| ≤ Σ_blocks (max|x_blk|/254)·Σ|ŵ_blk| + rounding", async () => {
    const [out, inp, rows] = [48, 96, 9];
    const { y, deq, x } = await runLinear("int4", out, inp, rows, { accuracyLevel: 4 });
    const ref = reference(x, deq, 2 * rows, inp, out);
    let worst = 0;
    let maxErr = 0;
    for (let i = 0; i < 2 * rows; i++) {
      for (let j = 0; j < out; j++) {
        // Each block of 32 activations is rounded to int8 with scale max|x_blk|/127: at most half a step each.
        let bound = 0;
        for (let blk = 0; blk < int4Blocks(inp); blk++) {
          let amax = 0;
          let wabs = 0;
          for (let k = blk * 32; k < Math.min(inp, blk * 32 + 32); k++) {
            amax = Math.max(amax, Math.abs(x[i * inp + k]));
            wabs += Math.abs(deq[j * inp + k]);
          }
          bound += (amax / 127 / 2) * wabs;
        }
        const e = Math.abs(y[i * out + j] - ref.y[i * out + j]);
        bound = bound * (1 + 1e-5) + (inp + 2) * U * ref.absSum[i * out + j];
        worst = Math.max(worst, ratio(e, bound));
        maxErr = Math.max(maxErr, e);
      }
    }
    assert.ok(worst <= 1, `error is ${worst.toFixed(2)}× the activation-rounding bound`);
    assert.ok(maxErr > 0, "accuracy level 4 should differ from the exact result (is the int8 path taken?)");
  });

  for (const [out, inp] of SHAPES) {
    it(`int8 DynamicQuantizeMatMul [${out}, ${inp}]: activation rounding only, |Δ| ≤ (s_a/2)·Σ_k|ŵ|`, async () => {
      const rows = 9;
      const { y, deq, x } = await runLinear("int8", out, inp, rows, { xScale: 3 });
      const ref = reference(x, deq, 2 * rows, inp, out);
      // The kernel quantizes the whole activation tensor to uint8: s_a = (max(x,0) − min(x,0))/255 and a zero
      // point rounded to an integer. Every x then lies within s_a/2 of a level (the rounded zero point moves
      // the grid by < s_a/2, and both range ends stay within half a step of the end levels), so each term
      // x·ŵ is off by at most (s_a/2)·|ŵ|. The int32 accumulation is exact; the two float scalings add ~2u.
      let lo = 0;
      let hi = 0;
      for (const v of x) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      const sa = (hi - lo) / 255;
      let worst = 0;
      let maxErr = 0;
      for (let i = 0; i < 2 * rows; i++) {
        for (let j = 0; j < out; j++) {
          let wabs = 0;
          for (let k = 0; k < inp; k++) wabs += Math.abs(deq[j * inp + k]);
          const e = Math.abs(y[i * out + j] - ref.y[i * out + j]);
          const bound = (sa / 2) * wabs * (1 + 1e-5) + 4 * U * (ref.absSum[i * out + j] + Math.abs(ref.y[i * out + j]));
          worst = Math.max(worst, ratio(e, bound));
          maxErr = Math.max(maxErr, e);
        }
      }
      assert.ok(worst <= 1, `error is ${worst.toFixed(2)}× the activation-rounding bound`);
      assert.ok(maxErr > 0, "DynamicQuantizeMatMul should round the activations");
    });
  }
});

describe("quantize: collectLinears", () => {
  it("records each Linear once with its [out, in] shape and reads no weight", () => {
    const g = new GraphBuilder("g");
    const specs = collectLinears((lin) => {
      const x = g.input("x", "float32", [1, 8]);
      lin(g, lin(g, x, "a", { shape: [4, 8] }), "b", { shape: [2, 4], bias: false });
      lin(g, x, "a", { shape: [4, 8] });
    });
    assert.deepStrictEqual(specs, [{ prefix: "a", shape: [4, 8] }, { prefix: "b", shape: [2, 4] }]);
  });
});
