// UTF-8 validation that says *where* a byte sequence is invalid. TextDecoder({fatal: true}) only says *that* it
// is; error messages need the byte offset (and from it the line).

/**
 * Offset of the first byte that does not start a well-formed UTF-8 sequence in bytes[start, end), or -1.
 * Well-formed follows the Unicode standard's Table 3-7: no overlong forms, no surrogates (ED A0..BF), nothing
 * above U+10FFFF. A sequence cut off by `end` is reported at its lead byte when `allowTruncatedTail` is false.
 */
export function firstInvalidUtf8(bytes: Uint8Array, start = 0, end = bytes.length, allowTruncatedTail = false): number {
  let i = start;
  while (i < end) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80, hi = 0xbf; // allowed range of the first continuation byte
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0;
      else if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90;
      else if (b === 0xf4) hi = 0x8f;
    } else return i;
    if (i + need >= end) {
      // The sequence runs past `end`: the bytes that are there must still fit, then it is a truncated tail.
      for (let k = 1; i + k < end; k++) {
        const c = bytes[i + k];
        if (k === 1 ? c < lo || c > hi : c < 0x80 || c > 0xbf) return i;
      }
      return allowTruncatedTail ? -1 : i;
    }
    const c1 = bytes[i + 1];
    if (c1 < lo || c1 > hi) return i;
    for (let k = 2; k <= need; k++) {
      const c = bytes[i + k];
      if (c < 0x80 || c > 0xbf) return i;
    }
    i += need + 1;
  }
  return -1;
}

/** Number of bytes at the end of bytes[0, end) that form an incomplete (so far valid) UTF-8 sequence. */
export function incompleteTail(bytes: Uint8Array, end = bytes.length): number {
  for (let k = 1; k <= 3 && end - k >= 0; k++) {
    const b = bytes[end - k];
    if (b < 0x80) return 0;
    if (b >= 0xc0) {
      const len = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      return len > k ? k : 0;
    }
  }
  return 0;
}
