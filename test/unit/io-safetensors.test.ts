import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { CheckpointError, PathNotFoundError, SafetensorsFormatError, TensorShapeError } from "../../src/io/errors";
import { parsePythonJson } from "../../src/io/json";
import {
  DTYPE_SIZES, MAX_HEADER_BYTES, openSafetensors, readTensorData, readTensorFloat32, toFloat32, toTypedArray,
} from "../../src/io/safetensors";
import { TensorToWrite, writeSafetensors } from "../../src/io/safetensors-writer";
import type { DType } from "../../src/io/types";
import { fixturesDir } from "../helpers/paths";
import { editHeader, makeTempDir, rejectsWith, removeTempDir, writeRawSafetensors } from "../helpers/st-writer";

const TORCH_TO_DTYPE: Record<string, DType> = {
  "torch.float64": "F64", "torch.float32": "F32", "torch.float16": "F16", "torch.bfloat16": "BF16",
  "torch.float8_e4m3fn": "F8_E4M3", "torch.float8_e5m2": "F8_E5M2",
  "torch.int64": "I64", "torch.uint64": "U64", "torch.int32": "I32", "torch.uint32": "U32",
  "torch.int16": "I16", "torch.uint16": "U16", "torch.int8": "I8", "torch.uint8": "U8", "torch.bool": "BOOL",
};

interface RefTensor { dtype: string; shape: number[]; values: (number | string)[] }

describe("io/safetensors: reading and writing", () => {
  let tmp: string;
  let n = 0;
  const file = (name = `t${n++}.safetensors`): string => path.join(tmp, name);
  before(() => (tmp = makeTempDir()));
  after(() => removeTempDir(tmp));

  describe("against files written by the Python safetensors library", () => {
    const refFile = path.join(fixturesDir, "io", "reference.safetensors");
    const ref = parsePythonJson(fs.readFileSync(path.join(fixturesDir, "io", "reference.json"), "utf8"), "reference.json") as unknown as Record<string, RefTensor>;

    it("reads every dtype with the values torch stored", async () => {
      const st = await openSafetensors(refFile);
      assert.deepStrictEqual(st.metadata, { format: "pt" });
      assert.deepStrictEqual([...st.tensors.keys()].sort(), Object.keys(ref).sort());
      for (const [name, r] of Object.entries(ref)) {
        const info = st.tensors.get(name)!;
        assert.strictEqual(info.dtype, TORCH_TO_DTYPE[r.dtype], name);
        assert.deepStrictEqual(info.shape, r.shape, name);
        assert.strictEqual(info.file, fs.realpathSync(refFile));
        const bytes = await readTensorData(info);
        const isFloat = r.dtype.includes("float");
        const got = isFloat ? Array.from(toFloat32(info, bytes)) : Array.from(toTypedArray(info, bytes) as ArrayLike<number | bigint>);
        const want = r.values.map((v) => (typeof v === "string" ? BigInt(v) : isFloat ? Math.fround(v) : v));
        // Object.is: NaN equals NaN, and -0 must stay -0. Float32 of a stored float16/bf16/fp8 value is exact.
        assert.strictEqual(got.length, want.length, name);
        got.forEach((g, i) => assert.ok(Object.is(g, want[i]), `${name}[${i}]: ${String(g)} != ${String(want[i])}`));
      }
    });

    it("writes byte-identical files for the same tensors", async () => {
      const st = await openSafetensors(refFile);
      const tensors: TensorToWrite[] = [];
      for (const info of st.tensors.values()) {
        tensors.push({ name: info.name, dtype: info.dtype, shape: info.shape, data: await readTensorData(info) });
      }
      const out = file();
      await writeSafetensors(out, tensors.reverse(), { metadata: { format: "pt" } });
      assert.ok(fs.readFileSync(out).equals(fs.readFileSync(refFile)));
    });
  });

  it("round-trips F32, F16, BF16 and I64 values with aligned offsets", async () => {
    const f32 = new Float32Array([1.5, -0, 3.4028234663852886e38, 1e-45, Infinity, NaN, 0.1]);
    // float16 bits: 1, -2, 65504, 2^-24 (smallest subnormal), +inf, NaN, 2^-14 (smallest normal)
    const f16 = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x7e00, 0x0400]);
    const f16Values = [1, -2, 65504, 2 ** -24, Infinity, NaN, 2 ** -14];
    // bfloat16 bits: 1, -2.5, 2^-133 (subnormal), -inf
    const bf16 = new Uint16Array([0x3f80, 0xc020, 0x0001, 0xff80]);
    const bf16Values = [1, -2.5, 2 ** -133, -Infinity];
    const i64 = new BigInt64Array([0n, -1n, 2n ** 62n + 1n, -(2n ** 63n)]);
    const out = file();
    await writeSafetensors(out, [
      { name: "a.f16", dtype: "F16", shape: [7], data: f16 },
      { name: "b.f32", dtype: "F32", shape: [7, 1], data: f32 },
      { name: "c.bf16", dtype: "BF16", shape: [2, 2], data: bf16 },
      { name: "d.i64", dtype: "I64", shape: [4], data: i64 },
    ], { metadata: { format: "pt", "note": "ünïcode" } });
    const st = await openSafetensors(out);
    assert.deepStrictEqual(st.metadata, { format: "pt", note: "ünïcode" });
    assert.strictEqual(st.dataStart % 8, 0);
    for (const info of st.tensors.values()) {
      assert.strictEqual(info.offset % DTYPE_SIZES[info.dtype], 0, info.name);
      assert.ok(info.offset >= st.dataStart && info.offset + info.byteLength <= st.fileSize);
    }
    const same = (got: ArrayLike<number>, want: ArrayLike<number>): void =>
      Array.from(want).forEach((w, i) => assert.ok(Object.is(got[i], w), `[${i}] ${got[i]} != ${w}`));
    same(await readTensorFloat32(st.tensors.get("b.f32")!), f32);
    same(await readTensorFloat32(st.tensors.get("a.f16")!), f16Values);
    same(await readTensorFloat32(st.tensors.get("c.bf16")!), bf16Values);
    const i64Info = st.tensors.get("d.i64")!;
    assert.deepStrictEqual(toTypedArray(i64Info, await readTensorData(i64Info)), i64);
    assert.deepStrictEqual(st.tensors.get("c.bf16")!.shape, [2, 2]);
  });

  it("writes lazily produced tensors one at a time, in chunks", async () => {
    const calls: string[] = [];
    const lazy = (name: string, count: number): TensorToWrite => ({
      name, dtype: "F32", shape: [count],
      data: function* () {
        calls.push(`start ${name}`);
        for (let i = 0; i < count; i += 3) yield Float32Array.from({ length: Math.min(3, count - i) }, (_, k) => i + k);
        calls.push(`end ${name}`);
      },
    });
    const out = file();
    await writeSafetensors(out, [lazy("y", 10), lazy("x", 4)]);
    assert.deepStrictEqual(calls, ["start x", "end x", "start y", "end y"]);
    const st = await openSafetensors(out);
    assert.deepStrictEqual(Array.from(await readTensorFloat32(st.tensors.get("y")!)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("refuses data of the wrong size, naming the tensor, and leaves no file behind", async () => {
    const out = path.join(tmp, "wrong-size", "w.safetensors");
    fs.mkdirSync(path.dirname(out));
    await rejectsWith(
      writeSafetensors(out, [{ name: "short.weight", dtype: "F32", shape: [2, 2], data: new Float32Array(3) }]),
      TensorShapeError, [out, "short.weight", "16 bytes", "12 bytes"],
    );
    await rejectsWith(
      writeSafetensors(out, [{ name: "long.weight", dtype: "F16", shape: [2], data: () => new Float32Array(2) }]),
      TensorShapeError, [out, "long.weight", "more than 4 bytes"],
    );
    assert.deepStrictEqual(fs.readdirSync(path.dirname(out)), []);
  });

  it("refuses duplicate names in what it is asked to write", async () => {
    const out = file();
    const t = { name: "dup", dtype: "U8" as const, shape: [1], data: new Uint8Array(1) };
    await rejectsWith(writeSafetensors(out, [t, t]), CheckpointError, [out, "dup", "duplicate"]);
  });

  it("opens a header without reading the data (10 GB sparse file)", async function () {
    const out = file();
    writeRawSafetensors(out, { big: { dtype: "F32", shape: [2500, 1000, 1000], data_offsets: [0, 10_000_000_000] } });
    const headerEnd = fs.statSync(out).size;
    fs.truncateSync(out, headerEnd + 10_000_000_000);
    const t0 = Date.now();
    const st = await openSafetensors(out);
    assert.ok(Date.now() - t0 < 2000);
    assert.strictEqual(st.tensors.get("big")!.byteLength, 10_000_000_000);
    assert.strictEqual(st.tensors.get("big")!.offset, headerEnd);
  });

  it("reads an empty tensor", async () => {
    const out = file();
    await writeSafetensors(out, [{ name: "e", dtype: "F32", shape: [0, 3], data: new Float32Array(0) }]);
    const st = await openSafetensors(out);
    assert.strictEqual((await readTensorFloat32(st.tensors.get("e")!)).length, 0);
  });

  describe("bad files: SafetensorsFormatError naming the file and the tensor or field", () => {
    /** A valid two-tensor file to break: "a" is F32 [2] at [0, 8], "b" is F32 [3] at [8, 20]. */
    async function valid(): Promise<string> {
      const out = file();
      await writeSafetensors(out, [
        { name: "a", dtype: "F32", shape: [2], data: new Float32Array([1, 2]) },
        { name: "b", dtype: "F32", shape: [3], data: new Float32Array([3, 4, 5]) },
      ]);
      return out;
    }
    const fails = (f: string, mentions: string[]): Promise<SafetensorsFormatError> =>
      rejectsWith(openSafetensors(f), SafetensorsFormatError, [f, ...mentions]);

    it("file shorter than the 8-byte length", async () => {
      const f = file();
      fs.writeFileSync(f, Buffer.from([1, 0, 0]));
      await fails(f, ["3 bytes", "at least 8"]);
    });

    it("truncated file: header length past the end", async () => {
      const f = await valid();
      fs.truncateSync(f, 20);
      await fails(f, ["header length", "past the end", "20 bytes"]);
    });

    it("truncated file: tensor data past the end", async () => {
      const f = await valid();
      fs.truncateSync(f, fs.statSync(f).size - 1);
      await fails(f, ['tensor "b"', "past the end of the data section"]);
    });

    it("header length of 0", async () => {
      const f = file();
      writeRawSafetensors(f, "{}", undefined, 0n);
      await fails(f, ["header length is 0"]);
    });

    it("header length above the 100 MB cap", async () => {
      const f = file();
      writeRawSafetensors(f, "{}", undefined, BigInt(MAX_HEADER_BYTES + 1));
      fs.truncateSync(f, MAX_HEADER_BYTES + 100); // sparse: costs no disk
      await fails(f, [`${MAX_HEADER_BYTES}-byte limit`]);
    });

    it("header not JSON", async () => {
      const f = file();
      writeRawSafetensors(f, '{"a": {"dtype": "F32",');
      await fails(f, ["not valid JSON"]);
    });

    it("header not UTF-8", async () => {
      const f = file();
      const bytes = Buffer.from('{"\xff": 1}', "latin1");
      writeRawSafetensors(f, "", bytes, BigInt(bytes.length));
      await fails(f, ["not valid UTF-8"]);
    });

    it("header a JSON array", async () => {
      const f = file();
      writeRawSafetensors(f, "[1, 2]");
      await fails(f, ["must be a JSON object"]);
    });

    it("metadata value not a string", async () => {
      const f = await valid();
      editHeader(f, (h) => (h.__metadata__ = { format: "pt", steps: 3 }));
      await fails(f, ['field "__metadata__"', '"steps" must be a string']);
    });

    it("unknown dtype", async () => {
      const f = await valid();
      editHeader(f, (h) => (h.b.dtype = "F128"));
      await fails(f, ['tensor "b"', 'unknown dtype "F128"', "expected one of"]);
    });

    it("negative or fractional shape", async () => {
      for (const shape of [[-3], [1.5, 2], ["3"]]) {
        const f = await valid();
        editHeader(f, (h) => (h.b.shape = shape));
        await fails(f, ['tensor "b"', "shape must be an array of non-negative integers"]);
      }
    });

    it("data_offsets not a pair of integers", async () => {
      const f = await valid();
      editHeader(f, (h) => (h.a.data_offsets = [0]));
      await fails(f, ['tensor "a"', "data_offsets must be [begin, end]"]);
    });

    it("data_offsets with begin > end", async () => {
      const f = await valid();
      editHeader(f, (h) => (h.b.data_offsets = [20, 8]));
      await fails(f, ['tensor "b"', "begin > end"]);
    });

    it("shape and byte count disagree", async () => {
      const f = await valid();
      editHeader(f, (h) => (h.b.shape = [4]));
      await fails(f, ['tensor "b"', "needs 16 bytes", "span 12"]);
    });

    it("offsets out of range", async () => {
      const f = await valid();
      editHeader(f, (h) => (h.b.data_offsets = [12, 24]));
      await fails(f, ['tensor "b"', "[12, 24]", "past the end of the data section (20 bytes)"]);
    });

    it("overlapping offsets", async () => {
      const f = await valid();
      editHeader(f, (h) => {
        h.b.shape = [2];
        h.b.data_offsets = [4, 12];
      });
      const e = await fails(f, ['tensor "b"', 'tensor "a"', "overlap"]);
      assert.strictEqual(e.tensor, "b");
    });
  });

  it("toFloat32 refuses integer tensors with a TensorShapeError naming the tensor", async () => {
    const out = file();
    await writeSafetensors(out, [{ name: "ids", dtype: "I64", shape: [1], data: new BigInt64Array(1) }]);
    const info = (await openSafetensors(out)).tensors.get("ids")!;
    await rejectsWith(readTensorFloat32(info), TensorShapeError, [info.file, "ids", "floating-point", "I64"]);
  });

  it("a missing file is a PathNotFoundError naming it", async () => {
    const f = path.join(tmp, "absent.safetensors");
    await rejectsWith(openSafetensors(f), PathNotFoundError, [f, "not found"]);
  });
});
