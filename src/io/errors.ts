// Errors raised while reading or writing checkpoint files. Every message is one line that starts with the
// file it is about, so "why did loading fail" is answered by the message alone:
//   safetensors /models/x/model.safetensors: tensor 'lm_head.weight' data_offsets [0,100] hold 100 bytes, ...
import { AlignkitError } from '../tensor/errors.ts';

/** A checkpoint file that is malformed, truncated, inconsistent, or uses a feature we do not support. */
export class CheckpointError extends AlignkitError {
  constructor(
    /** 'safetensors' | 'gguf' | 'safetensors index' */
    readonly format: string,
    /** The file the problem is in. */
    readonly file: string,
    /** The problem, without the file name. */
    readonly problem: string,
  ) {
    super(`${format} ${file}: ${oneLine(problem)}`);
  }
}

/** Messages stay on one line even when they quote file content. */
export function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ');
}

/** Quotes a name found in a file for a message (JSON-escaped, shortened). */
export function q(name: string): string {
  const s = JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}...` : name);
  return `'${s.slice(1, -1)}'`;
}
