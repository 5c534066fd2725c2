// Python string semantics the harness's templates rely on (str.strip, str.capitalize, len), and HellaSwag's
// preprocess, so prompts come out character for character as lm_eval renders them.

/** Python's str.isspace() set (str.strip() with no argument removes these; JS trim() differs in a few). */
const PY_SPACE = '\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000';

const isPySpace = (c: string): boolean => PY_SPACE.includes(c);

/** Python's str.rstrip(). */
export function pyRstrip(s: string): string {
  let b = s.length;
  while (b > 0 && isPySpace(s[b - 1])) b--;
  return s.slice(0, b);
}

/** Python's str.strip(). */
export function pyStrip(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && PY_SPACE.includes(s[a])) a++;
  while (b > a && PY_SPACE.includes(s[b - 1])) b--;
  return s.slice(a, b);
}

/** Python's str.capitalize(): the first character upper-cased, the rest lower-cased. */
export function pyCapitalize(s: string): string {
  const first = s.codePointAt(0);
  if (first === undefined) return s;
  const n = first > 0xffff ? 2 : 1;
  return s.slice(0, n).toUpperCase() + s.slice(n).toLowerCase();
}

/** Length in characters as Python counts them (code points), which is what acc_norm divides by. */
export function pyLen(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** HellaSwag's preprocess (tasks/hellaswag/utils.py). */
export function hellaswagPreprocess(text: string): string {
  let t = pyStrip(text);
  t = t.replaceAll(' [title]', '. ');
  t = t.replace(/\[[^\n]*?\]/g, ''); // Python's "\[.*?\]": '.' matches anything but '\n'
  return t.replaceAll('  ', ' ');
}
