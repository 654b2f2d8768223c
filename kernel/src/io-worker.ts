/**
 * A worker thread that owns the heartbeat (REP, echoes every message) and the control socket (ROUTER), so both keep
 * working while a cell blocks the main thread. Control messages are passed to the main thread as raw frames; an
 * interrupt_request additionally raises SIGINT in this process at once, which breaks a synchronous cell
 * (vm breakOnSigint) that would otherwise keep the main thread from ever reading the request.
 */
import { isMainThread, parentPort, Worker, workerData } from "worker_threads";
import * as zmq from "zeromq";
import { log } from "./log";
import { decode, Signer } from "./wire";

interface IoWorkerData {
  heartbeatEndpoint: string;
  controlEndpoint: string;
  signatureScheme: string;
  key: string;
}

type ToMain = { kind: "ready" } | { kind: "control"; frames: Uint8Array[] };
type ToWorker = { kind: "send"; frames: Uint8Array[] } | { kind: "close" };

const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

async function echoHeartbeats(sock: zmq.Reply): Promise<void> {
  try {
    for await (const frames of sock) await sock.send(frames);
  } catch (e) {
    if (!sock.closed) throw e;
  }
}

function isInterruptRequest(frames: Buffer[], signer: Signer): boolean {
  try {
    return decode(frames, signer).header.msg_type === "interrupt_request";
  } catch {
    return false; // the main thread reports malformed messages
  }
}

async function serveControl(sock: zmq.Router, signer: Signer): Promise<void> {
  try {
    for await (const frames of sock) {
      if (isInterruptRequest(frames, signer)) process.kill(process.pid, "SIGINT");
      parentPort!.postMessage({ kind: "control", frames } satisfies ToMain);
    }
  } catch (e) {
    if (!sock.closed) throw e;
  }
}

async function runWorker(data: IoWorkerData): Promise<void> {
  const heartbeat = new zmq.Reply({ linger: 0 });
  const control = new zmq.Router({ linger: 1000, sendTimeout: 0 });
  await Promise.all([heartbeat.bind(data.heartbeatEndpoint), control.bind(data.controlEndpoint)]);
  parentPort!.on("message", (msg: ToWorker) => {
    if (msg.kind === "send") {
      control.send(msg.frames.map(asBuffer)).catch((e: unknown) => console.error("control send failed:", e));
      return;
    }
    // Replies sent before (e.g. shutdown_reply) are queued in zeromq already; linger lets them reach the client.
    heartbeat.close();
    control.close();
    parentPort!.close();
  });
  parentPort!.postMessage({ kind: "ready" } satisfies ToMain);
  await Promise.all([echoHeartbeats(heartbeat), serveControl(control, new Signer(data.signatureScheme, data.key))]);
}

/** The main thread's handle on the worker. */
export class IoWorker {
  private constructor(private readonly worker: Worker) {
    worker.on("error", (e) => log.error("kernel I/O worker failed (heartbeat and control stop):", e));
  }

  static start(data: IoWorkerData): Promise<IoWorker> {
    const worker = new Worker(__filename, { workerData: data });
    worker.unref();
    return new Promise((resolve, reject) => {
      const onExit = (code: number): void => reject(new Error(`kernel I/O worker exited with code ${code} before binding`));
      worker.once("error", reject);
      worker.once("exit", onExit);
      worker.once("message", () => {
        worker.off("error", reject);
        worker.off("exit", onExit);
        resolve(new IoWorker(worker));
      });
    });
  }

  onControl(handler: (frames: Buffer[]) => void): void {
    this.worker.on("message", (msg: ToMain) => {
      if (msg.kind === "control") handler(msg.frames.map(asBuffer));
    });
  }

  sendControl(frames: Buffer[]): void {
    this.worker.postMessage({ kind: "send", frames } satisfies ToWorker);
  }

  /** Sends what is queued, closes the sockets and ends the worker (forcibly after `timeoutMs`). */
  async close(timeoutMs = 2000): Promise<void> {
    const exited = new Promise<void>((resolve) => this.worker.once("exit", () => resolve()));
    this.worker.postMessage({ kind: "close" } satisfies ToWorker);
    const timer = setTimeout(() => void this.worker.terminate(), timeoutMs);
    await exited;
    clearTimeout(timer);
  }
}

if (!isMainThread && (workerData as Partial<IoWorkerData> | null)?.controlEndpoint) {
  runWorker(workerData as IoWorkerData).catch((e: unknown) => {
    throw e;
  });
}
