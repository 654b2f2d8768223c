import * as assert from "assert";
import { createHash } from "crypto";
import * as path from "path";
import { openSafetensors, readTensorData, SafetensorsFile } from "../../src/io/safetensors";
import { RandomArgumentError, randnTensor, TorchGenerator, TORCH_DEFAULT_SEED } from "../../src/random";
import { fixturesDir } from "../helpers/paths";

interface Draw {
  op: "randn" | "rand" | "randn_tensor";
  shape: number[];
  tensor?: string;
  sha256?: string;
  samples?: [number, number][];
  seeds?: string[];
}
interface Sequence {
  name: string;
  seed: string | null;
  kernel: "avx2" | "generic";
  draws: Draw[];
}

/** Distance in units in the last place between two float32 values of the same sign (ordered bit patterns). */
function ulpDistance(a: number, b: number): number {
  const bits = new Int32Array(new Float32Array([a, b]).buffer);
  const ordered = (i: number): number => (bits[i] < 0 ? -(bits[i] & 0x7fffffff) : bits[i]);
  return Math.abs(ordered(0) - ordered(1));
}

async function expected(file: SafetensorsFile, name: string): Promise<Float32Array> {
  const info = file.tensors.get(name);
  assert.ok(info, `fixture tensor ${name}`);
  const bytes = await readTensorData(info);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

function draw(g: TorchGenerator, d: Draw): Float32Array {
  if (d.op === "randn_tensor") {
    const gens = (d.seeds ?? []).map((s) => new TorchGenerator(BigInt(s)));
    return randnTensor(d.shape, gens);
  }
  return d.op === "randn" ? g.randn(d.shape) : g.rand(d.shape);
}

/** Largest ulp distance between `actual` and the recorded draw (0 = bit identical, including the sign of 0). */
async function maxUlp(file: SafetensorsFile, d: Draw, actual: Float32Array): Promise<number> {
  if (d.tensor !== undefined) {
    const want = await expected(file, d.tensor);
    assert.strictEqual(actual.length, want.length);
    let worst = 0;
    for (let i = 0; i < want.length; i++) {
      if (!Object.is(actual[i], want[i])) worst = Math.max(worst, ulpDistance(actual[i], want[i]) || 1);
    }
    return worst;
  }
  for (const [i, v] of d.samples ?? []) assert.ok(Object.is(actual[i], Math.fround(v)), `sample ${i}`);
  const hash = createHash("sha256").update(new Uint8Array(actual.buffer, actual.byteOffset, actual.byteLength));
  return hash.digest("hex") === d.sha256 ? 0 : Infinity;
}

describe("random: TorchGenerator against torch.Generator('cpu')", () => {
  let file: SafetensorsFile;
  let sequences: Sequence[];
  before(async () => {
    file = await openSafetensors(path.join(fixturesDir, "randn", "randn.safetensors"));
    sequences = JSON.parse(file.metadata?.manifest ?? "[]") as Sequence[];
    assert.ok(sequences.length > 20);
  });

  it("reproduces every recorded draw bit for bit on the AVX2 kernel (seeds, shapes, consecutive draws)", async () => {
    let draws = 0;
    for (const seq of sequences.filter((s) => s.kernel === "avx2")) {
      const g = seq.seed === null ? new TorchGenerator() : new TorchGenerator(BigInt(seq.seed));
      for (const [i, d] of seq.draws.entries()) {
        const worst = await maxUlp(file, d, draw(g, d));
        assert.strictEqual(worst, 0, `${seq.name} draw ${i} (${d.op} [${d.shape.join(", ")}])`);
        draws++;
      }
    }
    assert.ok(draws >= 35, `${draws} draws checked`);
  });

  it("stays within 3 ulp of torch's generic (non-AVX2) kernel", async () => {
    // The generic kernel uses the C library's logf/cosf/sinf, which are not correctly rounded; this port
    // rounds correctly rounded values instead (measured: at most 2 ulp on these draws, 3 ulp over 10^6).
    for (const seq of sequences.filter((s) => s.kernel === "generic")) {
      const g = new TorchGenerator(BigInt(seq.seed ?? "0"), { normalKernel: "generic" });
      for (const d of seq.draws) assert.ok((await maxUlp(file, d, draw(g, d))) <= 3, seq.name);
    }
  });

  it("starts from torch's default seed and reports seeds as torch does", () => {
    assert.strictEqual(new TorchGenerator().initialSeed(), TORCH_DEFAULT_SEED);
    assert.strictEqual(new TorchGenerator(-1).initialSeed(), 2n ** 64n - 1n);
    assert.strictEqual(new TorchGenerator(2n ** 32n + 5n).initialSeed(), 2n ** 32n + 5n);
  });

  it("resumes the exact stream from a saved state and from a clone", () => {
    const g = new TorchGenerator(99);
    g.randn([3]); // leaves a cached normal behind
    const saved = g.getState();
    const copy = g.clone();
    const a = g.randn([1, 4, 8, 8]);
    const c = g.randn([1]);
    assert.deepStrictEqual(copy.randn([1, 4, 8, 8]), a);
    assert.deepStrictEqual(copy.randn([1]), c);
    g.setState(saved);
    assert.deepStrictEqual(g.randn([1, 4, 8, 8]), a);
  });

  it("manualSeed restarts the stream and drops the cached normal", () => {
    const g = new TorchGenerator(5);
    const first = g.randn([3]);
    g.manualSeed(5);
    assert.deepStrictEqual(g.randn([3]), first);
  });
});

describe("random: argument errors", () => {
  const throwsArg = (fn: () => unknown, pattern: RegExp): void => {
    assert.throws(fn, (e: unknown) => e instanceof RandomArgumentError && e.name === "RandomArgumentError" &&
      pattern.test(e.message));
  };
  it("rejects a fractional seed", () => throwsArg(() => new TorchGenerator(1.5), /seed must be an integer/));
  it("rejects an unsafe number seed", () => throwsArg(() => new TorchGenerator(2 ** 60), /bigint/));
  it("rejects a seed of 2^64", () => throwsArg(() => new TorchGenerator(2n ** 64n), /\[-2\^63, 2\^64\)/));
  it("rejects a seed below -2^63", () => throwsArg(() => new TorchGenerator(-(2n ** 63n) - 1n), /\[-2\^63/));
  it("rejects a negative dimension", () => throwsArg(() => new TorchGenerator(0).randn([2, -1]), /non-negative/));
  it("rejects a fractional count", () => throwsArg(() => new TorchGenerator(0).rand(2.5), /non-negative integers/));
  it("rejects an unknown kernel", () =>
    throwsArg(() => new TorchGenerator(0, { normalKernel: "neon" as "avx2" }), /normalKernel/));
  it("rejects a generator list shorter than the batch", () =>
    throwsArg(() => randnTensor([3, 4, 2, 2], [new TorchGenerator(1), new TorchGenerator(2)]), /covers at most 2 batch rows/));
});
