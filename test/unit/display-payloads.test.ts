/**
 * The data-type layer: encoded arrays round-trip (float32 exactly, quantised uint8 within half a step), the schemas
 * accept what we emit and reject what they should, and the memory report's payload validates.
 */
import * as assert from "assert";
import { decodeArray, encodeFloat32, encodeUint8, EncodedArrayError, quantizeUint8 } from "../../src/display/arrays";
import { assertValidPayload, LATENTS_MIME, MEMORY_MIME, payloadErrors, PayloadSchemaError } from "../../src/display/schemas";
import { loadImage } from "canvas";
import { toMimeBundle } from "../../src/display/display";
import { MemoryReport, MemoryTimeline } from "../../src/memory/report";

describe("display payloads: encoded arrays", () => {
  it("float32 round-trips bit for bit, little-endian", () => {
    const data = Float32Array.from([1, -2.5, Math.PI, 1e-30, -0, Infinity]);
    const enc = encodeFloat32(data, [2, 3]);
    assert.strictEqual(Buffer.from(enc.data, "base64").readFloatLE(4), -2.5);
    assert.deepStrictEqual(decodeArray(enc), data);
  });

  it("quantised uint8 states its scale and is within scale/2", () => {
    const data = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 3 - 1);
    const enc = quantizeUint8(data, [10, 100]);
    assert.ok(enc.scale! > 0 && enc.offset! < -3.9);
    const back = decodeArray(enc) as Float32Array;
    const worst = Math.max(...data.map((v, i) => Math.abs(v - back[i])));
    assert.ok(worst <= enc.scale! / 2 + 1e-6, `worst error ${worst}, scale ${enc.scale}`);
    assert.strictEqual(Buffer.from(enc.data, "base64").length, 1000);
  });

  it("a constant array quantises without dividing by zero", () => {
    assert.deepStrictEqual(decodeArray(quantizeUint8(new Float32Array(4).fill(2), [4])), new Float32Array(4).fill(2));
  });

  it("raw uint8 stays bytes; wrong dims are a typed error", () => {
    assert.deepStrictEqual(decodeArray(encodeUint8(Uint8Array.from([1, 2, 3]), [1, 1, 3])), Uint8Array.from([1, 2, 3]));
    assert.throws(() => encodeFloat32(new Float32Array(5), [2, 3]), EncodedArrayError);
    assert.throws(() => decodeArray({ ...encodeUint8(new Uint8Array(6), [6]), dims: [7] }), /dims \[7\] hold 7 elements, the data has 6/);
  });
});

describe("display payloads: schemas", () => {
  const preview = encodeUint8(new Uint8Array(2 * 2 * 3), [1, 2, 2, 3]);
  const latents = {
    version: 1, latentShape: [1, 4, 2, 2], numInferenceSteps: 2, done: true,
    progress: { stage: "done", elapsedMs: 12 },
    projection: { name: "x", matrix: [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]], bias: [0, 0, 0] },
    steps: [{ step: 1, timestep: 999, preview }, { step: 2, timestep: 499, preview }],
    latents: quantizeUint8(new Float32Array(16), [1, 4, 2, 2]),
  };

  it("a latents payload validates; missing version, wrong version, JSON-number arrays do not", () => {
    assert.deepStrictEqual(payloadErrors(LATENTS_MIME, latents), []);
    assert.ok(payloadErrors(LATENTS_MIME, { ...latents, version: undefined }).some((e) => /version/.test(e)));
    assert.ok(payloadErrors(LATENTS_MIME, { ...latents, version: 2 }).length > 0);
    assert.ok(payloadErrors(LATENTS_MIME, { ...latents, latents: { ...latents.latents, data: [1, 2] } }).length > 0);
    assert.ok(payloadErrors(LATENTS_MIME, { ...latents, latents: { ...encodeFloat32(new Float32Array(1), [1]), scale: 1, offset: 0 } }).length > 0);
    assert.ok(payloadErrors(LATENTS_MIME, { ...latents, latents: { ...preview, scale: 1 } }).length > 0, "scale without offset");
  });

  it("the memory report's payload validates, with and without GPU figures", () => {
    const timeline = new MemoryTimeline();
    timeline.record("load", "load transformer", { component: "transformer" });
    timeline.record("run", "denoise", { peakDuring: 1e9, durationMs: 5 });
    const report = MemoryReport.collect([{ name: "transformer", loaded: true, weightBytes: { F32: 100 }, activationPeak: 5 }], timeline.events);
    const payload = JSON.parse(JSON.stringify(report.toJSON()));
    assert.strictEqual(payload.version, 1);
    assertValidPayload(MEMORY_MIME, payload);
    assertValidPayload(MEMORY_MIME, { ...payload, gpu: { usedBytes: 5, scope: "device", gpus: [{ uuid: "GPU-1", usedBytes: 5, totalBytes: 10 }], device: "H200" } });
    const gpuEvents = payload.timeline.map((e: object) => ({ ...e, gpuUsed: 1e9, gpuPeakDuring: 2e9 }));
    const gpuComponents = payload.components.map((c: object) => ({ ...c, device: "cuda:0", gpuBytes: 1e9, gpuActivationPeak: 1e8 }));
    assertValidPayload(MEMORY_MIME, { ...payload, timeline: gpuEvents, components: gpuComponents });
    assert.ok(payloadErrors(MEMORY_MIME, { ...payload, timeline: [{ ...gpuEvents[0], gpuUsed: -1 }] }).length > 0);
    assert.ok(payloadErrors(MEMORY_MIME, { ...payload, gpu: { usedBytes: 5, scope: "node" } }).length > 0);
    assert.throws(() => assertValidPayload(MEMORY_MIME, { ...payload, timeline: [{ at: 0, kind: "explode", label: "x", memory: payload.process }] }), PayloadSchemaError);
  });

  it("the memory report's bundle: payload, a timeline chart PNG that decodes, and text", async () => {
    const timeline = new MemoryTimeline();
    timeline.record("load", "load vae", { component: "vae" });
    timeline.record("run", "decode", { peakDuring: 3e8, durationMs: 20 });
    timeline.record("delete", "delete vae", { component: "vae" });
    const report = MemoryReport.collect([{ name: "vae", loaded: false }], timeline.events);
    const bundle = await toMimeBundle(report);
    assert.deepStrictEqual(Object.keys(bundle).sort(), [MEMORY_MIME, "image/png", "text/plain"].sort());
    assertValidPayload(MEMORY_MIME, JSON.parse(JSON.stringify(bundle[MEMORY_MIME])));
    const png = await loadImage(Buffer.from(String(bundle["image/png"]), "base64"));
    assert.ok(png.width === 720 && png.height > 250, `${png.width}×${png.height}`);
    assert.match(String(bundle["text/plain"]), /delete vae/);
  });

  it("an unknown MIME type is a typed error naming the known ones", () => {
    assert.throws(() => payloadErrors("application/vnd.nope+json", {}), /no schema is registered.*latents\+json/);
  });
});
