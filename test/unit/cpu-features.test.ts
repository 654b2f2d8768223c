/**
 * When sessions ask onnxruntime for its exact x64 int8 path: only on x64 CPUs whose flags lack VNNI (and where the
 * flags cannot be read). Whether the int8 results are then exact on this machine is checked by quantize.test.ts's
 * DynamicQuantizeMatMul bounds, which run through createSession.
 */
import * as assert from "assert";
import * as fs from "fs";
import { needsX64QuantPrecision, x64QuantPrecisionNeeded } from "../../src/onnx/cpu-features";

const cpuinfo = (flags: string) => `processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse4_1 ${flags}\nbugs\t\t: sysret_ss_attrs\n\nprocessor\t: 1\nflags\t\t: fpu sse4_1 ${flags}\n`;

describe("cpu-features: x64 quant precision mode", () => {
  it("x64 without VNNI (AVX2, AVX-512 without VNNI) needs it", () => {
    assert.strictEqual(x64QuantPrecisionNeeded(cpuinfo("avx avx2 fma"), "x64"), true);
    assert.strictEqual(x64QuantPrecisionNeeded(cpuinfo("avx2 avx512f avx512bw avx512vl"), "x64"), true);
  });

  it("AVX512-VNNI or AVX-VNNI does not (the u8×s8 kernel accumulates in int32)", () => {
    assert.strictEqual(x64QuantPrecisionNeeded(cpuinfo("avx2 avx512f avx512bw avx512_vnni avx512_bf16"), "x64"), false);
    assert.strictEqual(x64QuantPrecisionNeeded(cpuinfo("avx2 avx_vnni"), "x64"), false);
  });

  it("a flag that only contains the name does not count", () => {
    assert.strictEqual(x64QuantPrecisionNeeded(cpuinfo("avx2 avx512_vnnix xavx_vnni"), "x64"), true);
  });

  it("unreadable flags on x64 → the conservative answer; other architectures never", () => {
    assert.strictEqual(x64QuantPrecisionNeeded(undefined, "x64"), true);
    assert.strictEqual(x64QuantPrecisionNeeded("", "x64"), true);
    assert.strictEqual(x64QuantPrecisionNeeded(undefined, "arm64"), false);
    assert.strictEqual(x64QuantPrecisionNeeded(cpuinfo("avx2"), "arm64"), false);
  });

  it("this machine: the decision follows its own /proc/cpuinfo", function () {
    if (process.platform !== "linux") this.skip();
    const info = fs.readFileSync("/proc/cpuinfo", "utf8");
    assert.strictEqual(needsX64QuantPrecision(), x64QuantPrecisionNeeded(info, process.arch));
  });
});
