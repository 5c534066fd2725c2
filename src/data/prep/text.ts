// Pure text transforms used by `alignkit data clean`. Each takes a string and returns a string; none drops text
// (filters live in quality.ts). They are meant to be composed in order (clean.ts), and each is idempotent.

export type NormalForm = 'NFC' | 'NFKC';

/**
 * Unicode normalisation. NFC composes (e + U+0301 -> é) and changes nothing else; NFKC also folds
 * compatibility characters (ﬁ -> fi, full-width Ａ -> A, ² -> 2, non-breaking space -> space), which is what
 * most pre-training pipelines use but can change meaning in maths or Japanese text, so NFC is the default.
 */
export function normalizeUnicode(text: string, form: NormalForm = 'NFC'): string {
  return text.normalize(form);
}

// ------------------------------------------------------------------------------------ invisible characters

/** Scripts whose spelling uses ZWJ / ZWNJ between letters (Persian "می‌خواهم", Devanagari half forms, ...). */
const JOINER_SCRIPT = /[\p{Script=Arabic}\p{Script=Syriac}\p{Script=Nko}\p{Script=Thaana}\p{Script=Mongolian}\p{Script=Devanagari}\p{Script=Bengali}\p{Script=Gurmukhi}\p{Script=Gujarati}\p{Script=Oriya}\p{Script=Tamil}\p{Script=Telugu}\p{Script=Kannada}\p{Script=Malayalam}\p{Script=Sinhala}\p{Script=Khmer}\p{Script=Myanmar}\p{Script=Tibetan}]/u;
const PICTOGRAPHIC = /\p{Extended_Pictographic}/u;
/** What may sit between an emoji and a following ZWJ: VS16, a skin-tone modifier, or tag characters. */
const EMOJI_TRAILER = /[\uFE0F\u{1F3FB}-\u{1F3FF}\u{E0020}-\u{E007F}]/u;
const LETTER_OR_MARK = /[\p{L}\p{M}]/u;

/** Bidirectional formatting characters: marks (LRM, RLM, ALM) and embeddings / overrides / isolates. */
const BIDI = /[\u200E\u200F\u061C\u202A-\u202E\u2066-\u2069]/u;

export interface InvisibleOptions {
  /** Also remove bidi marks and embedding / override / isolate controls (default false: they carry meaning). */
  stripBidi?: boolean;
}

/**
 * Removes control characters and zero-width characters that carry no meaning.
 *
 * Removed: C0 controls except TAB, LF, CR (whitespace normalisation deals with those); DEL; C1 controls
 * (U+0080-U+009F); ZERO WIDTH SPACE U+200B; WORD JOINER U+2060; invisible operators U+2061-U+2064; BOM/ZWNBSP
 * U+FEFF (anywhere); MONGOLIAN VOWEL SEPARATOR U+180E; SOFT HYPHEN U+00AD; and ZWJ U+200D / ZWNJ U+200C except
 * where they are part of the text (below). With stripBidi, also LRM, RLM, ALM and U+202A-U+202E, U+2066-U+2069.
 *
 * ZWJ is kept inside emoji ZWJ sequences (UTS #51): when the character before it is an Extended_Pictographic
 * emoji (optionally followed by VS16, a skin-tone modifier or tag characters) and the character after it is an
 * Extended_Pictographic emoji, so 👨‍👩‍👧 stays one family emoji. ZWJ and ZWNJ are also kept between two letters
 * (or combining marks) when either neighbour belongs to a script whose spelling uses them (Arabic script,
 * Syriac, N'Ko, Thaana, Mongolian, the Indic scripts, Sinhala, Khmer, Myanmar, Tibetan). Everywhere else they
 * are invisible noise (copy-paste artefacts, watermarking) and are removed.
 */
export function removeInvisible(text: string, o: InvisibleOptions = {}): string {
  if (!/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u00AD\u180E\u200B-\u200F\u2060-\u2064\uFEFF\u061C\u202A-\u202E\u2066-\u2069]/.test(text)) return text;
  const cps = Array.from(text);
  let out = '';
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i];
    const u = c.codePointAt(0)!;
    if (u === 0x200d || u === 0x200c) {
      if (keepJoiner(cps, i, u === 0x200d)) out += c;
      continue;
    }
    if (u === 0x09 || u === 0x0a || u === 0x0d) {
      out += c;
      continue;
    }
    if (u < 0x20 || (u >= 0x7f && u <= 0x9f)) continue;
    if (u === 0xad || u === 0x180e || u === 0x200b || (u >= 0x2060 && u <= 0x2064) || u === 0xfeff) continue;
    if (o.stripBidi && BIDI.test(c)) continue;
    out += c;
  }
  return out;
}

function keepJoiner(cps: string[], i: number, isZwj: boolean): boolean {
  const next = cps[i + 1];
  if (next === undefined || i === 0) return false;
  if (isZwj && PICTOGRAPHIC.test(next)) {
    let j = i - 1;
    while (j >= 0 && EMOJI_TRAILER.test(cps[j])) j--;
    if (j >= 0 && PICTOGRAPHIC.test(cps[j])) return true;
  }
  const prev = cps[i - 1];
  return LETTER_OR_MARK.test(prev) && LETTER_OR_MARK.test(next) && (JOINER_SCRIPT.test(prev) || JOINER_SCRIPT.test(next));
}

// ------------------------------------------------------------------------------------------------------ HTML

/**
 * Named entities decoded by stripHtml: the XML five plus the ones common in scraped text. HTML5 defines 2,231;
 * an entity not listed here is left as written (so nothing is guessed).
 */
const ENTITIES: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00A0', ensp: '\u2002', emsp: '\u2003', thinsp: '\u2009',
  shy: '\u00AD', copy: '©', reg: '®', trade: '™', deg: '°', plusmn: '±', times: '×', divide: '÷', micro: 'µ',
  para: '¶', sect: '§', middot: '·', hellip: '…', mdash: '—', ndash: '–', lsquo: '‘', rsquo: '’', sbquo: '‚',
  ldquo: '“', rdquo: '”', bdquo: '„', laquo: '«', raquo: '»', bull: '•', prime: '′', Prime: '″', euro: '€',
  pound: '£', yen: '¥', cent: '¢', iexcl: '¡', iquest: '¿', frac12: '½', frac14: '¼', frac34: '¾', sup2: '²',
  sup3: '³', larr: '←', rarr: '→', uarr: '↑', darr: '↓', harr: '↔', hearts: '♥', eacute: 'é', egrave: 'è',
  ecirc: 'ê', euml: 'ë', aacute: 'á', agrave: 'à', acirc: 'â', auml: 'ä', aring: 'å', atilde: 'ã', ccedil: 'ç',
  iacute: 'í', igrave: 'ì', icirc: 'î', iuml: 'ï', oacute: 'ó', ograve: 'ò', ocirc: 'ô', ouml: 'ö', otilde: 'õ',
  oslash: 'ø', uacute: 'ú', ugrave: 'ù', ucirc: 'û', uuml: 'ü', ntilde: 'ñ', szlig: 'ß', Eacute: 'É', Auml: 'Ä',
  Ouml: 'Ö', Uuml: 'Ü', Ntilde: 'Ñ', Ccedil: 'Ç', zwj: '\u200D', zwnj: '\u200C', lrm: '\u200E', rlm: '\u200F',
};

/** Decodes &name; (from the table above), &#NNN; and &#xHHH; references. Invalid code points become U+FFFD. */
export function decodeEntities(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(#[xX][0-9a-fA-F]{1,6}|#[0-9]{1,7}|[A-Za-z][A-Za-z0-9]{1,31});/g, (m, body: string) => {
    if (body[0] === '#') {
      const cp = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
      if (cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return '\uFFFD';
      return String.fromCodePoint(cp);
    }
    return ENTITIES[body] ?? m;
  });
}

/** Elements whose content is not text at all. */
const DROP_ELEMENTS = /<(script|style|noscript|template|svg|head)\b[^>]*>[\s\S]*?<\/\1\s*>/gi;
/** Elements that start a new line when rendered. */
const BLOCK_TAG = /^(br|p|div|li|ul|ol|tr|table|h[1-6]|section|article|header|footer|blockquote|pre|hr|dd|dt|dl|figure|figcaption|nav|aside|main|form|title)$/i;

/**
 * Removes HTML markup: comments, CDATA, doctype, <script>/<style>-like elements with their content, then tags
 * (block elements and <br> become a newline, inline ones vanish), then decodes entities. A '<' is only a tag
 * when a letter, '/' + letter, '!' or '?' follows it, so "a < b" and "x<3" are left alone.
 */
export function stripHtml(text: string): string {
  if (!text.includes('<') && !text.includes('&')) return text;
  let s = text.replace(/<!--[\s\S]*?-->/g, '').replace(/<!\[CDATA\[([\s\S]*?)\]\]>/g, '$1').replace(/<![A-Za-z][^>]*>|<\?[\s\S]*?\?>/g, '');
  s = s.replace(DROP_ELEMENTS, '');
  s = s.replace(/<\/?([A-Za-z][A-Za-z0-9-]*)(?:\s(?:[^>"']|"[^"]*"|'[^']*')*)?\/?>/g, (_m, name: string) => (BLOCK_TAG.test(name) ? '\n' : ''));
  return decodeEntities(s);
}

// ----------------------------------------------------------------------------------------------- whitespace

/**
 * Whitespace normalisation: CRLF / CR / U+2028 / U+2029 / NEL -> LF; every other space separator (NBSP, the
 * U+2000 range, ideographic space, TAB, ...) -> one ASCII space; runs of spaces collapse to one; spaces at line
 * ends go; more than one blank line in a row becomes one; the result is trimmed. Line structure is kept
 * (code, lists and poems rely on it).
 */
export function normalizeWhitespace(text: string): string {
  // \p{Zs} spelled out (U+0020, U+00A0, U+1680, U+2000-U+200A, U+202F, U+205F, U+3000): much faster than /\p{Zs}/u.
  let s = /[\r\u2028\u2029\u0085]/.test(text) ? text.replace(/\r\n?|[\u2028\u2029\u0085]/g, '\n') : text;
  if (/[\t\v\f\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000]|  /.test(s)) s = s.replace(/[\t\v\f \u00A0\u1680\u2000-\u200A\u202F\u205F\u3000]+/g, ' ');
  if (s.includes('\n')) {
    s = s.replace(/ ?\n ?/g, '\n');
    s = s.replace(/\n{3,}/g, '\n\n');
  }
  return s.trim();
}

/** Lower-cases with the locale-independent Unicode mapping (so Turkish dotted İ becomes "i̇", not "i"). */
export function lowercase(text: string): string {
  return text.toLowerCase();
}
