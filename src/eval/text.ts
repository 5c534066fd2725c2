// Python string semantics that the reference metric tools rely on, so that a TypeScript port gives the same
// tokens. Python's str.split()/strip() and the `\s` class of its `re` module use Unicode whitespace as
// str.isspace() defines it; JavaScript's `\s` and trim() use a different set (they include U+FEFF and leave out
// U+001C..U+001F and U+0085). Python strings are sequences of code points while JavaScript strings are UTF-16
// code units, so lengths and character n-grams are taken over code points here.

/** Characters for which Python's str.isspace() is true (bidi class WS/B/S or category Zs). */
const PY_SPACE_CLASS = '\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_SPACE_RUN = new RegExp(`[${PY_SPACE_CLASS}]+`, 'g');
const PY_SPACE_ONE = new RegExp(`^[${PY_SPACE_CLASS}]$`);
const PY_LEADING = new RegExp(`^[${PY_SPACE_CLASS}]+`);
const PY_TRAILING = new RegExp(`[${PY_SPACE_CLASS}]+$`);

/** Python's `s.split()` (no argument): runs of whitespace separate, no empty fields. */
export function pySplit(s: string): string[] {
  const out = s.split(PY_SPACE_RUN);
  // A leading or trailing run leaves one empty field at that end.
  if (out.length > 0 && out[0] === '') out.shift();
  if (out.length > 0 && out[out.length - 1] === '') out.pop();
  return out;
}

/** Python's `s.rstrip()`. */
export function pyRstrip(s: string): string {
  return s.replace(PY_TRAILING, '');
}

/** Python's `s.strip()`. */
export function pyStrip(s: string): string {
  return s.replace(PY_LEADING, '').replace(PY_TRAILING, '');
}

/** Python's `''.join(s.split())` / `re.sub(r'\s+', '', s)`: the string with all whitespace removed. */
export function pyRemoveSpaces(s: string): string {
  return s.replace(PY_SPACE_RUN, '');
}

/** Whether one character is whitespace for Python. */
export function pyIsSpace(ch: string): boolean {
  return PY_SPACE_ONE.test(ch);
}

/** The code points of a string (Python's `list(s)`). */
export function codePoints(s: string): string[] {
  return Array.from(s);
}

/** A multiset of strings (Python's collections.Counter for the metrics' n-grams). */
export type Counts = Map<string, number>;

export function countInto(counts: Counts, key: string, by = 1): void {
  counts.set(key, (counts.get(key) ?? 0) + by);
}

export function totalOf(counts: Counts): number {
  let t = 0;
  for (const v of counts.values()) t += v;
  return t;
}

/** Sum over keys of min(a[k], b[k]) (the size of Counter `a & b`). */
export function overlap(a: Counts, b: Counts): number {
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  let m = 0;
  for (const [k, v] of small) {
    const w = large.get(k);
    if (w !== undefined) m += v < w ? v : w;
  }
  return m;
}

/**
 * Word n-grams of order n of a token list. Keys join tokens with a space: the callers' tokens come from
 * whitespace splitting and never contain one, so distinct n-grams get distinct keys.
 */
export function wordNgrams(tokens: readonly string[], n: number): Counts {
  const c: Counts = new Map();
  for (let i = 0; i + n <= tokens.length; i++) countInto(c, n === 1 ? tokens[i] : tokens.slice(i, i + n).join(' '));
  return c;
}

/** Character n-grams of order n over a list of code points (Python's `line[i:i+n]`). */
export function charNgrams(chars: readonly string[], n: number): Counts {
  const c: Counts = new Map();
  for (let i = 0; i + n <= chars.length; i++) {
    let k = chars[i];
    for (let j = 1; j < n; j++) k += chars[i + j];
    countInto(c, k);
  }
  return c;
}

/** Python's `math.log` guarded like sacreBLEU's my_log: log(0) is -9999999999 instead of an error. */
export function flooredLog(x: number): number {
  return x === 0 ? -9999999999 : Math.log(x);
}

/** The exact value of a finite double as mantissa * 2^exponent (mantissa a BigInt). */
function exactBinary(x: number): { mantissa: bigint; exponent: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  let mantissa = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  if (biased !== 0) mantissa |= 1n << 52n;
  const exponent = (biased === 0 ? 1 : biased) - 1075;
  return { mantissa: x < 0 ? -mantissa : mantissa, exponent };
}

/**
 * Python's `f"{x:.{d}f}"`: the decimal nearest to the exact binary value, ties to even. JavaScript's toFixed
 * breaks exact ties upwards (0.125 -> "0.13" where Python prints "0.12"), so ties are detected exactly here.
 */
export function fixed(x: number, digits: number): string {
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : x < 0 ? '-inf' : 'nan';
  const js = x.toFixed(digits);
  const { mantissa, exponent } = exactBinary(Math.abs(x));
  // x * 10^d * 2 is an odd integer exactly when x * 10^d ends in .5.
  let twice = mantissa * 10n ** BigInt(digits) * 2n;
  if (exponent >= 0) twice <<= BigInt(exponent);
  else {
    const div = 1n << BigInt(-exponent);
    if (twice % div !== 0n) return js;
    twice /= div;
  }
  if (twice % 2n === 0n) return js; // not a tie
  const down = (twice - 1n) / 2n; // the integer below the tie
  const even = down % 2n === 0n ? down : down + 1n;
  let str = even.toString().padStart(digits + 1, '0');
  if (digits > 0) str = `${str.slice(0, -digits)}.${str.slice(-digits)}`;
  return x < 0 || Object.is(x, -0) ? `-${str}` : str;
}
