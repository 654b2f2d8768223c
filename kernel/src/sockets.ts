/**
 * The kernel's ZeroMQ sockets: shell and stdin (ROUTER), iopub (XPUB, so it can greet each new subscriber with
 * iopub_welcome), and in a worker thread control (ROUTER) and heartbeat (REP). Sends on one socket are serialized,
 * because zeromq 6 rejects a second send while one is pending.
 */
import * as zmq from "zeromq";
import { ConnectionInfo, endpoint } from "./connection";
import { IoWorker } from "./io-worker";
import { log } from "./log";
import { decode, encode, Message, Signer, WireError } from "./wire";

export type RequestChannel = "shell" | "control" | "stdin";
export type MessageHandler = (msg: Message, channel: RequestChannel) => void;

class SerialSender {
  private tail: Promise<void> = Promise.resolve();

  constructor(private readonly socket: zmq.Router | zmq.XPublisher) {}

  send(frames: Buffer[]): Promise<void> {
    const next = this.tail.then(() => this.socket.send(frames));
    this.tail = next.catch((e: unknown) => log.error("send failed:", e));
    return next;
  }
}

export class KernelSockets {
  private readonly senders: Map<"shell" | "stdin" | "iopub", SerialSender>;
  private closed = false;

  private constructor(
    readonly signer: Signer,
    private readonly routers: Record<"shell" | "stdin", zmq.Router>,
    private readonly iopub: zmq.XPublisher,
    private readonly ioWorker: IoWorker,
  ) {
    this.senders = new Map<"shell" | "stdin" | "iopub", SerialSender>([
      ["shell", new SerialSender(routers.shell)],
      ["stdin", new SerialSender(routers.stdin)],
      ["iopub", new SerialSender(iopub)],
    ]);
  }

  static async bind(info: ConnectionInfo): Promise<KernelSockets> {
    const signer = new Signer(info.signature_scheme, info.key);
    const routers = { shell: new zmq.Router({ linger: 1000 }), stdin: new zmq.Router({ linger: 1000 }) };
    // allSubs: every subscriber (not only the first with a given topic) announces itself and gets a welcome.
    const iopub = new zmq.XPublisher({ linger: 1000 });
    iopub.verbosity = "allSubs";
    await Promise.all([
      routers.shell.bind(endpoint(info, "shell")),
      routers.stdin.bind(endpoint(info, "stdin")),
      iopub.bind(endpoint(info, "iopub")),
    ]);
    const ioWorker = await IoWorker.start({
      heartbeatEndpoint: endpoint(info, "hb"),
      controlEndpoint: endpoint(info, "control"),
      signatureScheme: info.signature_scheme,
      key: info.key,
    });
    return new KernelSockets(signer, routers, iopub, ioWorker);
  }

  /** Starts reading shell, control and stdin; each decoded message goes to `handler` in arrival order. */
  listen(handler: MessageHandler): void {
    for (const channel of ["shell", "stdin"] as const) void this.readLoop(channel, handler);
    this.ioWorker.onControl((frames) => this.dispatch("control", frames, handler));
  }

  /** Calls `onSubscribe(topic)` for each new IOPub subscription. */
  onSubscribe(onSubscribe: (topic: string) => void): void {
    void (async () => {
      try {
        for await (const [frame] of this.iopub) {
          if (frame && frame[0] === 1) onSubscribe(frame.subarray(1).toString("utf8"));
        }
      } catch (e) {
        if (!this.closed) log.error("iopub subscription loop failed:", e);
      }
    })();
  }

  private dispatch(channel: RequestChannel, frames: Buffer[], handler: MessageHandler): void {
    let msg: Message;
    try {
      msg = decode(frames, this.signer);
    } catch (e) {
      // A bad message must not stop the kernel; the sender gets no reply, as with ipykernel.
      if (e instanceof WireError) log.warn(`ignored ${channel} message: ${e.message}`);
      else log.error(`ignored ${channel} message:`, e);
      return;
    }
    handler(msg, channel);
  }

  private async readLoop(channel: "shell" | "stdin", handler: MessageHandler): Promise<void> {
    try {
      for await (const frames of this.routers[channel]) this.dispatch(channel, frames, handler);
    } catch (e) {
      if (!this.closed) log.error(`${channel} loop failed:`, e);
    }
  }

  send(channel: RequestChannel | "iopub", msg: Message<object>): Promise<void> {
    if (this.closed) return Promise.resolve();
    const frames = encode(msg, this.signer);
    if (channel === "control") {
      this.ioWorker.sendControl(frames);
      return Promise.resolve();
    }
    return this.senders.get(channel)!.send(frames);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const socket of [...Object.values(this.routers), this.iopub]) socket.close();
    await this.ioWorker.close();
  }
}
