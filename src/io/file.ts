// Low-level file access shared by the safetensors and GGUF code.
//
// Reading is by offset on a file descriptor (fs.readSync with a position), in chunks: Node 20 cannot read a
// file over 2 GiB in one call, and a checkpoint is never read whole, only the header and then the bytes of
// the tensors actually requested.
//
// Writing is atomic: bytes go to a temporary file in the destination directory (same file system, so the
// final rename is atomic), which is fsync'ed and then renamed over the destination. A failure at any point
// removes the temporary file; the destination is either the old file or the complete new one.
import fs from 'node:fs';
import os from 'node:os';
import nodePath from 'node:path';
import { AlignkitError } from '../tensor/errors.ts';
import { CheckpointError } from './errors.ts';

/** Largest single readSync / writeSync (the length argument must fit in an int32). */
const MAX_IO = 1 << 30;

/** Both formats are little-endian; we read them by reinterpreting bytes, which needs a little-endian host. */
export function assertLittleEndian(format: string, file: string): void {
  if (os.endianness() !== 'LE') throw new CheckpointError(format, file, 'this host is big-endian; only little-endian hosts are supported');
}

function errnoCode(e: unknown): string | undefined {
  return e instanceof Error && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}

function describeFsError(e: unknown): string {
  const code = errnoCode(e);
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory, not a file';
  return e instanceof Error ? e.message : String(e);
}

/** A file opened for reading by offset. */
export class ReadableFile {
  private constructor(
    readonly format: string,
    readonly path: string,
    private fd: number,
    /** Size in bytes when opened. */
    readonly size: number,
  ) {}

  static open(format: string, file: string): ReadableFile {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (e) {
      throw new CheckpointError(format, file, describeFsError(e));
    }
    try {
      const st = fs.fstatSync(fd);
      if (st.isDirectory()) throw new CheckpointError(format, file, 'is a directory, not a file');
      return new ReadableFile(format, file, fd, st.size);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  get closed(): boolean {
    return this.fd < 0;
  }

  fail(problem: string): CheckpointError {
    return new CheckpointError(this.format, this.path, problem);
  }

  /** Fills `target` with the bytes at [position, position + target.length); `what` names them in errors. */
  readInto(target: Uint8Array, position: number, what: string): void {
    if (this.fd < 0) throw this.fail(`read of ${what} after close()`);
    if (position + target.length > this.size)
      throw this.fail(`${what} needs bytes [${position}, ${position + target.length}) but the file has ${this.size} bytes (truncated?)`);
    let done = 0;
    while (done < target.length) {
      const len = Math.min(MAX_IO, target.length - done);
      let n: number;
      try {
        n = fs.readSync(this.fd, target, done, len, position + done);
      } catch (e) {
        throw this.fail(`reading ${what} failed: ${describeFsError(e)}`);
      }
      if (n === 0) throw this.fail(`unexpected end of file reading ${what} at byte ${position + done} (the file shrank while open?)`);
      done += n;
    }
  }

  read(position: number, length: number, what: string): Uint8Array {
    const out = new Uint8Array(length);
    this.readInto(out, position, what);
    return out;
  }

  close(): void {
    if (this.fd < 0) return;
    fs.closeSync(this.fd);
    this.fd = -1;
  }
}

let tmpCounter = 0;

/**
 * A file being written to a temporary name next to its destination. `finish()` flushes it to disk, then
 * `publish()` renames it into place; `abort()` removes it. Sequential writes only.
 */
export class AtomicFile {
  private fd: number;
  private readonly tmp: string;
  /** Bytes written so far. */
  position = 0;
  private state: 'open' | 'finished' | 'published' | 'aborted' = 'open';

  constructor(
    readonly format: string,
    /** Destination path. */
    readonly path: string,
  ) {
    const dir = nodePath.dirname(this.path);
    this.tmp = nodePath.join(dir, `.${nodePath.basename(this.path)}.${process.pid}.${Date.now().toString(36)}${(tmpCounter++).toString(36)}.tmp`);
    try {
      this.fd = fs.openSync(this.tmp, 'wx', 0o644);
    } catch (e) {
      throw new CheckpointError(format, this.path, `cannot create temporary file in ${dir}: ${describeFsError(e)}`);
    }
  }

  write(bytes: Uint8Array): void {
    if (this.state !== 'open') throw new CheckpointError(this.format, this.path, `write after ${this.state}`);
    let done = 0;
    while (done < bytes.length) {
      const len = Math.min(MAX_IO, bytes.length - done);
      let n: number;
      try {
        n = fs.writeSync(this.fd, bytes, done, len, this.position);
      } catch (e) {
        throw new CheckpointError(this.format, this.path, `write failed: ${describeFsError(e)}`);
      }
      done += n;
      this.position += n;
    }
  }

  writeZeros(n: number): void {
    if (n > 0) this.write(new Uint8Array(n));
  }

  /** Flushes data to disk and closes the temporary file. */
  finish(): void {
    if (this.state !== 'open') return;
    try {
      fs.fsyncSync(this.fd);
      fs.closeSync(this.fd);
    } catch (e) {
      throw new CheckpointError(this.format, this.path, `flushing to disk failed: ${describeFsError(e)}`);
    }
    this.fd = -1;
    this.state = 'finished';
  }

  /** Renames the finished temporary file over the destination and syncs the directory entry. */
  publish(): void {
    this.finish();
    try {
      fs.renameSync(this.tmp, this.path);
    } catch (e) {
      throw new CheckpointError(this.format, this.path, `cannot rename temporary file into place: ${describeFsError(e)}`);
    }
    this.state = 'published';
    syncDir(nodePath.dirname(this.path));
  }

  /** Removes the temporary file (no-op once published). Never throws. */
  abort(): void {
    if (this.state === 'published' || this.state === 'aborted') return;
    if (this.fd >= 0) {
      try {
        fs.closeSync(this.fd);
      } catch {
        /* already failing */
      }
      this.fd = -1;
    }
    try {
      fs.unlinkSync(this.tmp);
    } catch {
      /* already gone */
    }
    this.state = 'aborted';
  }
}

/** fsync on a directory makes a rename durable; not every platform / file system allows it. */
function syncDir(dir: string): void {
  let fd = -1;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    /* best effort */
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}

/** Writes one file atomically: `fn` writes into the AtomicFile; any throw leaves the destination untouched. */
export function writeAtomically<T>(format: string, file: string, fn: (f: AtomicFile) => T): T {
  const f = new AtomicFile(format, file);
  try {
    const r = fn(f);
    f.publish();
    return r;
  } catch (e) {
    f.abort();
    throw wrapWriteError(format, file, e);
  }
}

/** Unexpected errors (from tensor access, say) are reported against the file being written. */
export function wrapWriteError(format: string, file: string, e: unknown): Error {
  if (e instanceof CheckpointError) return e;
  const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  const err = new CheckpointError(format, file, `not written: ${msg}`);
  if (e instanceof AlignkitError || e instanceof Error) err.cause = e;
  return err;
}

/** A byte view over any typed array (no copy). */
export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
