/**
 * The worker-thread side of WorkerSession (worker-session.ts): owns one onnxruntime session.
 *
 * `session.run()` holds its thread for the whole inference; here that thread is this worker, so the main
 * event loop keeps answering (kernel heartbeats, interrupts, progress) during a denoising step.
 * Requests are handled one at a time in arrival order, so a release queued behind a run waits for it
 * (onnxruntime cannot cancel a run, and releasing under a running session would be unsafe).
 */
import { isMainThread, parentPort, workerData } from "worker_threads";
import * as ort from "onnxruntime-node";
import { createSession, type SessionConfig, type SessionModel } from "./session";

/** A tensor on the wire: its typed array travels with its buffer transferred, not copied. */
export interface WireTensor {
  type: ort.Tensor.Type;
  data: WireData;
  dims: readonly number[];
}

export type WireData = Exclude<ort.Tensor.DataType, string[]>;

export interface WireError {
  name: string;
  message: string;
  stack?: string;
}

export interface SessionWorkerData {
  model: SessionModel;
  config: SessionConfig;
}

export type WorkerRequest =
  | { id: number; op: "run"; feeds: Record<string, WireTensor> }
  /** `exit`: end the thread afterwards (used when the owner was garbage-collected and cannot terminate us). */
  | { id: number; op: "release"; exit?: boolean };

export type WorkerReply =
  | { id: number; ok: true; inputNames?: string[]; outputNames?: string[]; outputs?: Record<string, WireTensor> }
  | { id: number; ok: false; error: WireError };

/** Request id of the session creation, which starts as soon as the worker does. */
export const CREATE_ID = 0;

const TYPED_ARRAYS = [
  Float32Array, Float64Array, Int8Array, Uint8Array, Int16Array, Uint16Array, Int32Array, Uint32Array, BigInt64Array, BigUint64Array,
] as const;

/**
 * A copy of `data` in an ArrayBuffer of its own, safe to transfer. Not `data.slice()`: on a Buffer that
 * returns a view of the same memory (often node's shared 8 KiB pool), and transferring it would detach
 * memory that other code still uses.
 */
export function ownCopy<T extends WireData>(data: T): T {
  const ctor = TYPED_ARRAYS.find((c) => data instanceof c);
  if (!ctor) throw new TypeError(`cannot copy a ${Object.prototype.toString.call(data)} for the session worker`);
  return new (ctor as unknown as new (source: T) => T)(data);
}

/** The buffers to transfer for these tensors; an array that does not span exactly its own buffer is copied first. */
export function ownBuffers<T extends { data: WireData }>(tensors: T[]): ArrayBuffer[] {
  return tensors.map((t) => {
    const d = t.data;
    const whole = d.byteOffset === 0 && d.byteLength === d.buffer.byteLength && d.buffer instanceof ArrayBuffer;
    if (!whole || Buffer.isBuffer(d)) t.data = ownCopy(d);
    return t.data.buffer as ArrayBuffer;
  });
}

function toWireError(e: unknown): WireError {
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack };
  return { name: "Error", message: String(e) };
}

function serve(port: NonNullable<typeof parentPort>, data: SessionWorkerData): void {
  let session: ort.InferenceSession | undefined;
  const reply = (msg: WorkerReply, transfer: ArrayBuffer[] = []): void => port.postMessage(msg, transfer);
  const fail = (id: number, e: unknown): void => reply({ id, ok: false, error: toWireError(e) });

  const handle = async (req: WorkerRequest): Promise<void> => {
    if (req.op === "release") {
      const s = session;
      session = undefined;
      if (s) await s.release();
      reply({ id: req.id, ok: true });
      if (req.exit) process.exit(0);
      return;
    }
    if (!session) throw new Error("the onnxruntime session in this worker was released");
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(req.feeds)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
    const result = await session.run(feeds);
    const outputs: Record<string, WireTensor> = {};
    for (const [name, t] of Object.entries(result)) {
      if (t.type === "string") throw new Error(`output "${name}" is a string tensor, which cannot cross threads as a buffer`);
      outputs[name] = { type: t.type, data: t.data as WireData, dims: t.dims };
    }
    reply({ id: req.id, ok: true, outputs }, ownBuffers(Object.values(outputs)));
  };

  // One request at a time, in order (see the header).
  let queue: Promise<void> = createSession(data.model, data.config).then(
    (s) => {
      session = s;
      reply({ id: CREATE_ID, ok: true, inputNames: [...s.inputNames], outputNames: [...s.outputNames] });
    },
    (e) => fail(CREATE_ID, e),
  );
  port.on("message", (req: WorkerRequest) => {
    queue = queue.then(() => handle(req)).catch((e) => fail(req.id, e));
  });
}

if (!isMainThread && parentPort) serve(parentPort, workerData as SessionWorkerData);
