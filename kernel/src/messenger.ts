/**
 * Builds and sends the kernel's messages: replies on the request's channel, IOPub broadcasts with the request as
 * parent, and stdout/stderr text coalesced into few `stream` messages (flushed before any other IOPub message so the
 * order of outputs is kept).
 */
import { randomUUID } from "crypto";
import type { KernelSockets, RequestChannel } from "./sockets";
import { JsonObject, Message, MessageHeader, newHeader } from "./wire";

export type StreamName = "stdout" | "stderr";

interface PendingStream {
  name: StreamName;
  text: string;
  parent: Message | undefined;
  since: number;
}

/** Stream text older or larger than this is sent at once, so output of a synchronous loop shows while it runs. */
const maxStreamDelayMs = 50;
const maxStreamChars = 65536;

export interface PublishExtras {
  metadata?: JsonObject;
  buffers?: Buffer[];
}

export class Messenger {
  readonly sessionId = randomUUID();
  private readonly username = "kernel";
  private pending: PendingStream | undefined;
  private flushScheduled = false;

  constructor(private readonly sockets: KernelSockets) {}

  private message(msgType: string, content: object, parent: Message | undefined, identities: Buffer[], extras: PublishExtras): Message<object> {
    return {
      identities,
      header: newHeader(msgType, this.sessionId, this.username),
      parent_header: parent ? parent.header : ({} as Partial<MessageHeader>),
      metadata: extras.metadata ?? {},
      content,
      buffers: extras.buffers ?? [],
    };
  }

  reply(req: Message, channel: RequestChannel, msgType: string, content: object, extras: PublishExtras = {}): Promise<void> {
    return this.sockets.send(channel, this.message(msgType, content, req, req.identities, extras));
  }

  publish(msgType: string, content: object, parent: Message | undefined, extras: PublishExtras = {}): Promise<void> {
    this.flushStreams();
    return this.sockets.send("iopub", this.message(msgType, content, parent, [], extras));
  }

  status(state: "busy" | "idle" | "starting", parent: Message | undefined): Promise<void> {
    return this.publish("status", { execution_state: state }, parent);
  }

  /** JEP 65: greets a new IOPub subscriber so clients know their subscription is live. */
  welcome(topic: string): Promise<void> {
    const msg = this.message("iopub_welcome", { subscription: topic }, undefined, [], {});
    return this.sockets.send("iopub", msg);
  }

  stream(name: StreamName, text: string, parent: Message | undefined): void {
    if (text === "") return;
    if (this.pending && (this.pending.name !== name || this.pending.parent !== parent)) this.flushStreams();
    if (this.pending) this.pending.text += text;
    else this.pending = { name, text, parent, since: Date.now() };
    if (Date.now() - this.pending.since >= maxStreamDelayMs || this.pending.text.length >= maxStreamChars) {
      this.flushStreams();
      return;
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flushStreams());
    }
  }

  flushStreams(): void {
    this.flushScheduled = false;
    const pending = this.pending;
    if (!pending) return;
    this.pending = undefined;
    void this.sockets.send("iopub", this.message("stream", { name: pending.name, text: pending.text }, pending.parent, [], {}));
  }
}
