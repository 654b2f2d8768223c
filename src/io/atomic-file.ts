/**
 * Writing large files so that a failure never leaves a half-written file under the real name: the bytes go
 * to a temporary file beside it, which is renamed over `file` only when complete.
 */
import { randomBytes } from "crypto";
import { promises as fsp } from "fs";
import * as path from "path";

/** Writes all of `bytes` at `position` (a single `write` may write fewer bytes). */
export async function writeAll(handle: fsp.FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.byteLength - done, position + done);
    done += bytesWritten;
  }
}

export interface AtomicWriteOptions {
  /** fsync before the rename (for caches that must survive a crash whole). */
  sync?: boolean;
  /** Turns a failure to create the temporary file into the caller's own error. */
  openError?: (cause: unknown) => Error;
}

/** Runs `fill` on a temporary file next to `file`, then renames it into place; on any error removes it. */
export async function replaceFileAtomically(file: string, fill: (handle: fsp.FileHandle) => Promise<void>, options: AtomicWriteOptions = {}): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  const handle = await fsp.open(tmp, "w").catch((e: unknown) => {
    throw options.openError ? options.openError(e) : e;
  });
  try {
    await fill(handle);
    if (options.sync) await handle.sync();
    await handle.close();
    await fsp.rename(tmp, file);
  } catch (e) {
    await handle.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}
