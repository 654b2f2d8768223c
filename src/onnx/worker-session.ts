/**
 * WorkerSession: an onnxruntime session living in its own worker thread (session-worker.ts).
 *
 * Why: `session.run()` occupies its thread for the whole inference (seconds per denoising step), and on the
 * main thread that silences kernel heartbeats, interrupts and progress output. In a worker it does not.
 *
 * Tensors cross as transferred ArrayBuffers. Inputs are first copied into fresh buffers, which are then
 * transferred: the caller keeps its arrays untouched and may reuse them while the run is in flight (the
 * pipeline does). Outputs are transferred back without a copy. The copy costs a memcpy of the inputs only.
 *
 * Lifetime: release() releases the session in the worker (memory back to the OS at once), then ends the
 * thread. The worker is unref'd while idle, so a forgotten session does not keep node alive, and ref'd while a
 * request is pending, so awaiting a run does. A WorkerSession dropped without release() is ended when V8
 * collects it, like a dropped ort.InferenceSession; that may be much later, so release explicitly.
 */
import * as fs from "fs";
import * as path from "path";
import { Worker } from "worker_threads";
import * as ort from "onnxruntime-node";
import { pickSessionConfig, type ModelSession, type SessionConfig, type SessionModel } from "./session";
import { CREATE_ID, ownBuffers, ownCopy, type SessionWorkerData, type WireData, type WireError, type WireTensor, type WorkerReply, type WorkerRequest } from "./session-worker";

/** The worker thread died (uncaught error, out of memory, terminated from outside): its session is gone. */
export class SessionWorkerError extends Error {
  override name = "SessionWorkerError";
}

/** run() on a WorkerSession after release(). (Models report their own ModelReleasedError before this.) */
export class SessionReleasedError extends Error {
  override name = "SessionReleasedError";
  constructor() {
    super("this onnxruntime session was released; create a new one before running it");
  }
}

/** Compiled next to this file, in dist/ or in a .build/<name>/ folder alike. */
const WORKER_SCRIPT = path.join(__dirname, "session-worker.js");

type OkReply = Extract<WorkerReply, { ok: true }>;

interface Pending {
  resolve(reply: OkReply): void;
  reject(error: Error): void;
  /** Where the request was made on this thread, appended to errors coming back from the worker. */
  callerStack: string;
}

/**
 * The worker and its pending requests. Kept apart from WorkerSession because the worker's listeners hold
 * this object: if they held the session, a dropped session could never be collected.
 */
class Connection {
  private readonly pending = new Map<number, Pending>();
  private nextId = CREATE_ID + 1;
  private failure?: SessionWorkerError;
  private ending = false;
  private hasExited = false;
  private readonly exited: Promise<void>;
  /** Kept: the Worker reports -1 once the thread has exited. */
  readonly threadId: number;

  constructor(readonly worker: Worker) {
    this.threadId = worker.threadId;
    worker.on("message", (reply: WorkerReply) => this.settle(reply));
    worker.on("error", (e) => this.fail(`stopped on an uncaught ${e.name}: ${e.message}`));
    this.exited = new Promise((resolve) => {
      worker.once("exit", (code) => {
        this.hasExited = true;
        if (!this.ending) this.fail(`exited unexpectedly (code ${code})`);
        resolve();
      });
    });
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }

  get running(): boolean {
    return !this.hasExited;
  }

  /** Waits for the reply to request `id` (the creation reply is expected without a request). */
  expect(id: number, callerStack: string): Promise<OkReply> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending.size === 0) this.worker.ref();
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject, callerStack }));
  }

  request(req: DistributiveOmit<WorkerRequest, "id">, transfer: ArrayBuffer[] = []): Promise<OkReply> {
    const id = this.nextId++;
    const reply = this.expect(id, callerStackOf(this.request));
    if (!this.failure) this.worker.postMessage({ ...req, id }, transfer);
    return reply;
  }

  /** Ends the thread (after release, or when creation failed). */
  async terminate(): Promise<void> {
    this.ending = true;
    await this.worker.terminate();
    await this.exited;
  }

  /** The session object was collected without release(): let the worker release and exit by itself. */
  abandon(): void {
    if (this.ending || this.failure) return;
    this.ending = true;
    this.worker.postMessage({ id: this.nextId++, op: "release", exit: true } satisfies WorkerRequest);
  }

  private settle(reply: WorkerReply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.forget(reply.id);
    if (reply.ok) p.resolve(reply);
    else p.reject(reviveError(reply.error, p.callerStack, this.threadId));
  }

  private fail(reason: string): void {
    this.failure ??= new SessionWorkerError(
      `the onnxruntime worker thread ${this.threadId} ${reason}; its session is gone, load the model again`,
    );
    for (const [id, p] of this.pending) {
      this.forget(id);
      p.reject(this.failure);
    }
  }

  private forget(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker.unref();
  }
}

const abandoned = new FinalizationRegistry<Connection>((conn) => conn.abandon());

/** @internal */
export class WorkerSession implements ModelSession {
  private releasing?: Promise<void>;

  private constructor(
    private readonly conn: Connection,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
  ) {
    abandoned.register(this, conn, this);
  }

  /** Starts a worker and creates the session there; rejects with onnxruntime's error if creation fails. */
  static async create(model: SessionModel, config: SessionConfig = {}): Promise<WorkerSession> {
    if (!fs.existsSync(WORKER_SCRIPT)) {
      throw new SessionWorkerError(`the session worker script ${WORKER_SCRIPT} is missing; compile the project (tsc) first`);
    }
    const bytes = ownCopy(model.bytes);
    const workerData: SessionWorkerData = {
      model: { bytes, externalDataFolder: model.externalDataFolder, hasCastWeights: model.hasCastWeights, weightFiles: model.weightFiles },
      config: pickSessionConfig(config),
    };
    const conn = new Connection(new Worker(WORKER_SCRIPT, { workerData, transferList: [bytes.buffer as ArrayBuffer] }));
    try {
      const reply = await conn.expect(CREATE_ID, callerStackOf(WorkerSession.create));
      return new WorkerSession(conn, reply.inputNames ?? [], reply.outputNames ?? []);
    } catch (e) {
      await conn.terminate();
      throw e;
    }
  }

  /** The worker's thread id (for tests and diagnostics). */
  get threadId(): number {
    return this.conn.threadId;
  }

  /** False once the worker thread has exited (after release(), or when it died). */
  get threadRunning(): boolean {
    return this.conn.running;
  }

  get released(): boolean {
    return this.releasing !== undefined;
  }

  async run(feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
    if (this.releasing) throw new SessionReleasedError();
    const wire: Record<string, WireTensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      if (t.type === "string") throw new TypeError(`feed "${name}" is a string tensor; only numeric tensors can cross to the session worker`);
      wire[name] = { type: t.type, data: ownCopy(t.data as WireData), dims: [...t.dims] };
    }
    const reply = await this.conn.request({ op: "run", feeds: wire }, ownBuffers(Object.values(wire)));
    const outputs: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(reply.outputs ?? {})) {
      outputs[name] = new ort.Tensor(t.type, t.data as Float32Array, t.dims);
    }
    return outputs;
  }

  /** Releases the session (after any run in progress ends) and ends the worker; awaits both. Safe to call twice. */
  release(): Promise<void> {
    this.releasing ??= this.releaseAndEnd();
    return this.releasing;
  }

  private async releaseAndEnd(): Promise<void> {
    abandoned.unregister(this);
    try {
      if (!this.conn.failed) await this.conn.request({ op: "release" });
    } finally {
      await this.conn.terminate();
    }
  }
}

/** The stack of the current call on this thread, starting at the caller of `fn`. */
function callerStackOf(fn: Function): string {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, fn);
  return holder.stack ?? "";
}

/** An error from the worker with its name and message, its worker frames first, then the caller's frames here. */
function reviveError(wire: WireError, callerStack: string, threadId: number): Error {
  const error = new Error(wire.message);
  error.name = wire.name;
  const frames = (stack: string | undefined): string[] => (stack ?? "").split("\n").filter((l) => /^\s+at /.test(l));
  error.stack = [
    `${wire.name}: ${wire.message}`,
    ...frames(wire.stack),
    `    --- in onnxruntime worker thread ${threadId}, for the request made:`,
    ...frames(callerStack),
  ].join("\n");
  return error;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
