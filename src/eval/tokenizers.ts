// sacreBLEU's tokenizers (sacrebleu 2.6.0, tokenizers/tokenizer_{13a,re,intl,char,none,zh}.py), ported so that
// the same line gives the same tokens. Each returns the tokenized line as one string with single spaces; BLEU
// then splits it on whitespace.
import { pySplit, pyStrip } from './text.ts';

export type BleuTokenizerName = 'none' | '13a' | 'intl' | 'char' | 'zh';
export const BLEU_TOKENIZERS: readonly BleuTokenizerName[] = ['none', '13a', 'intl', 'char', 'zh'];

// The mteval-v13a "language-dependent" rules (TokenizerRegexp), applied in this order.
// ASCII ranges { to ~, [ to `, space to &, ( to +, : to @, and /: every ASCII punctuation mark and symbol except the
// apostrophe and . , - (the next rules split period, comma and dash by context).
const RE_SYMBOLS = /([{-~[-` -&(-+:-@/])/g;
const RE_PERIOD_COMMA_AFTER_NONDIGIT = /([^0-9])([.,])/g;
const RE_PERIOD_COMMA_BEFORE_NONDIGIT = /([.,])([^0-9])/g;
const RE_DASH_AFTER_DIGIT = /([0-9])(-)/g;

/** TokenizerRegexp: the post-processing shared by `13a` and `zh`. */
export function tokenizeRegexp(line: string): string {
  line = line.replace(RE_SYMBOLS, ' $1 ');
  line = line.replace(RE_PERIOD_COMMA_AFTER_NONDIGIT, '$1 $2 ');
  line = line.replace(RE_PERIOD_COMMA_BEFORE_NONDIGIT, ' $1 $2');
  line = line.replace(RE_DASH_AFTER_DIGIT, '$1 $2 ');
  return pySplit(line).join(' ');
}

/** `13a`: mteval-v13a.pl, the WMT default. */
export function tokenize13a(line: string): string {
  line = line.split('<skipped>').join('');
  line = line.split('-\n').join('');
  line = line.split('\n').join(' ');
  if (line.includes('&')) {
    line = line.split('&quot;').join('"');
    line = line.split('&amp;').join('&');
    line = line.split('&lt;').join('<');
    line = line.split('&gt;').join('>');
  }
  return tokenizeRegexp(` ${line} `);
}

const RE_INTL_PUNCT_AFTER = /(\P{N})(\p{P})/gu;
const RE_INTL_PUNCT_BEFORE = /(\p{P})(\P{N})/gu;
const RE_INTL_SYMBOL = /(\p{S})/gu;

/**
 * `intl`: mteval-v14 international tokenization: Unicode punctuation is split off unless it sits between digits,
 * and every symbol is split off. (Unicode property tables are Node's ICU ones; Python's `regex` module may be a
 * Unicode version apart for recently assigned characters.)
 */
export function tokenizeIntl(line: string): string {
  line = line.replace(RE_INTL_PUNCT_AFTER, '$1 $2 ');
  line = line.replace(RE_INTL_PUNCT_BEFORE, ' $1 $2');
  line = line.replace(RE_INTL_SYMBOL, ' $1 ');
  return pySplit(line).join(' ');
}

/** `char`: every code point becomes a token (whitespace characters included, as sacreBLEU does). */
export function tokenizeChar(line: string): string {
  return Array.from(line).join(' ');
}

/**
 * The code point ranges sacreBLEU's `zh` tokenizer treats as Chinese. Two of its ranges are written in the
 * Python source as 5-hex-digit `\u` escapes ('\u20000', '\u2f800'), which Python reads as a 4-digit escape
 * plus a digit; the string comparison then selects U+2001..U+2A6D and U+2F81..U+2FA1 instead of the CJK
 * Extension B / Compatibility Supplement planes. The ranges below reproduce that behaviour exactly
 * (start exclusive where marked).
 */
const ZH_RANGES: readonly [number, number][] = [
  [0x3400, 0x4db5],
  [0x4e00, 0x9fa5],
  [0x9fa6, 0x9fbb],
  [0xf900, 0xfa2d],
  [0xfa30, 0xfa6a],
  [0xfa70, 0xfad9],
  [0x2001, 0x2a6d], // '\u2000' + '0' < c <= '\u2a6d' + '6'
  [0x2f81, 0x2fa1], // '\u2f80' + '0' < c <= '\u2fa1' + 'd'
  [0xff00, 0xffef],
  [0x2e80, 0x2eff],
  [0x3000, 0x303f],
  [0x31c0, 0x31ef],
  [0x2f00, 0x2fdf],
  [0x2ff0, 0x2fff],
  [0x3100, 0x312f],
  [0x31a0, 0x31bf],
  [0xfe10, 0xfe1f],
  [0xfe30, 0xfe4f],
  [0x2600, 0x26ff],
  [0x2700, 0x27bf],
  [0x3200, 0x32ff],
  [0x3300, 0x33ff],
];

export function isZhChar(cp: number): boolean {
  for (const [lo, hi] of ZH_RANGES) if (cp >= lo && cp <= hi) return true;
  return false;
}

/** `zh`: each Chinese character becomes a token; the rest is tokenized like 13a (without the entity step). */
export function tokenizeZh(line: string): string {
  line = pyStrip(line);
  let out = '';
  for (const ch of line) out += isZhChar(ch.codePointAt(0)!) ? ` ${ch} ` : ch;
  return tokenizeRegexp(out);
}

export function tokenizeNone(line: string): string {
  return line;
}

export function bleuTokenizer(name: BleuTokenizerName): (line: string) => string {
  switch (name) {
    case 'none':
      return tokenizeNone;
    case '13a':
      return tokenize13a;
    case 'intl':
      return tokenizeIntl;
    case 'char':
      return tokenizeChar;
    case 'zh':
      return tokenizeZh;
  }
}
