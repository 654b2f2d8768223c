/**
 * Sends what cell code writes to process.stdout / process.stderr (console.log included) to IOPub as `stream`
 * messages instead of the kernel process's own stdout.
 */
import type { StreamName } from "./messenger";

type WriteCallback = (err?: Error | null) => void;

export function installStdioCapture(sink: (name: StreamName, text: string) => void): void {
  for (const name of ["stdout", "stderr"] as const) {
    const stream = process[name];
    const write = (chunk: unknown, encodingOrCallback?: BufferEncoding | WriteCallback, callback?: WriteCallback): boolean => {
      const encoding = typeof encodingOrCallback === "string" ? encodingOrCallback : "utf8";
      const text = typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString(encoding);
      sink(name, text);
      const done = typeof encodingOrCallback === "function" ? encodingOrCallback : callback;
      if (done) process.nextTick(done);
      return true;
    };
    stream.write = write as typeof stream.write;
  }
}
