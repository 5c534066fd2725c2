// Cleaning steps with literal inputs and outputs (nasty Unicode included), the Gopher statistics on hand-counted
// texts, PII masking (Luhn test numbers), spelling correction on a tiny word list, and the pipeline / recipe.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { normalizeUnicode, normalizeWhitespace, removeInvisible, stripHtml, decodeEntities, lowercase } from '../../../src/data/prep/text.ts';
import { luhnValid, maskCreditCards, maskEmails, maskIps, maskPhones, maskPii, maskUrls } from '../../../src/data/prep/pii.ts';
import { dupNgramCharFrac, duplicateUnitFractions, lines, qualityFailure, qualityStats, symbolRatio, topNgramCharFrac, words } from '../../../src/data/prep/quality.ts';
import { SpellChecker } from '../../../src/data/prep/spell.ts';
import { rowText, textSlots } from '../../../src/data/prep/fields.ts';
import { CleanPipeline, buildStep, charLength, parseRecipe, stepsFromFlags } from '../../../src/data/prep/clean.ts';
import { PrepError } from '../../../src/data/prep/errors.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'alignkit-clean-'));

describe('Unicode normalisation', () => {
  it('NFC composes combining marks; NFKC also folds compatibility forms', () => {
    assert.equal(normalizeUnicode('e\u0301'), '\u00E9');
    assert.equal(normalizeUnicode('Cafe\u0301 ﬁ Ａ²'), 'Café ﬁ Ａ²');
    assert.equal(normalizeUnicode('Cafe\u0301 ﬁ Ａ²', 'NFKC'), 'Café fi A2');
    assert.equal(normalizeUnicode('\u1100\u1161'), '\uAC00'); // Hangul jamo -> syllable
    assert.equal(normalizeUnicode('שָׁלוֹם'), 'שָׁלוֹם'.normalize('NFC')); // Hebrew points reorder canonically
  });
});

describe('control and zero-width characters', () => {
  it('removes controls, ZWSP, BOM, soft hyphen; keeps TAB/LF/CR', () => {
    assert.equal(removeInvisible('a\u0000b\u0007c\u007Fd\u0085e\tf\ng'), 'abcde\tf\ng');
    assert.equal(removeInvisible('\uFEFFzero\u200Bwidth\u2060join\u00ADer'), 'zerowidthjoiner');
  });

  it('keeps ZWJ inside emoji ZWJ sequences (family, profession with skin tone, rainbow flag)', () => {
    const family = '👨\u200D👩\u200D👧';
    assert.equal(removeInvisible(`a ${family} b`), `a ${family} b`);
    assert.equal(removeInvisible('👩🏽\u200D💻'), '👩🏽\u200D💻');
    assert.equal(removeInvisible('🏳\uFE0F\u200D🌈'), '🏳\uFE0F\u200D🌈');
    assert.equal(Array.from(new Intl.Segmenter('en', { granularity: 'grapheme' }).segment(removeInvisible(family))).length, 1);
  });

  it('removes ZWJ / ZWNJ outside emoji and joining scripts', () => {
    assert.equal(removeInvisible('a\u200Db\u200Cc'), 'abc');
    assert.equal(removeInvisible('👨\u200D'), '👨');
    assert.equal(removeInvisible('👨\u200Dx'), '👨x');
    assert.equal(removeInvisible('\u200D👨'), '👨');
  });

  it('keeps ZWNJ / ZWJ between letters of scripts that spell with them (Persian, Devanagari)', () => {
    assert.equal(removeInvisible('می\u200Cخواهم'), 'می\u200Cخواهم');
    assert.equal(removeInvisible('क्\u200Dष'), 'क्\u200Dष');
  });

  it('keeps RTL marks by default (Hebrew, Arabic); strips them with stripBidi', () => {
    const he = 'שלום\u200F (world)';
    const ar = 'مرحبا\u200F 123\u061C';
    assert.equal(removeInvisible(he), he);
    assert.equal(removeInvisible(ar), ar);
    assert.equal(removeInvisible(he, { stripBidi: true }), 'שלום (world)');
    assert.equal(removeInvisible('a\u202Eb\u202Cc\u2067d\u2069', { stripBidi: true }), 'abcd');
  });
});

describe('HTML, whitespace, lowercase', () => {
  it('strips tags, drops script/style, turns blocks into newlines, decodes entities', () => {
    assert.equal(stripHtml('<p>Hello&nbsp;<b>world</b> &amp; &#x1F600;&#233;</p><script>var x = "<p>";</script><!-- c -->a < b, x<3'), '\nHello\u00A0world & 😀é\na < b, x<3');
    assert.equal(stripHtml('<a href="x>y" title=\'q\'>link</a><br/>next'), 'link\nnext');
    assert.equal(decodeEntities('&unknownentity; &#0; &#xD800; &lt;'), '&unknownentity; \uFFFD \uFFFD <');
  });

  it('normalises whitespace but keeps line structure', () => {
    assert.equal(normalizeWhitespace('  a \t b\r\n\r\n\r\n\r\nc\u00A0d\u3000e  \n'), 'a b\n\nc d e');
    assert.equal(normalizeWhitespace('x\u2028y\rz'), 'x\ny\nz');
  });

  it('lowercase is locale-independent', () => {
    assert.equal(lowercase('ÀBC İ'), 'àbc i̇');
  });
});

describe('URL and PII masking', () => {
  it('masks URLs without eating trailing punctuation or an unbalanced bracket', () => {
    assert.equal(maskUrls('see https://en.wikipedia.org/wiki/Foo_(bar). or (www.example.com/x?a=1), ftp://h/f!'), 'see <URL>. or (<URL>), <URL>!');
  });

  it('masks e-mail addresses', () => {
    assert.equal(maskEmails('write to john.doe+tag@mail.example.co.uk, not @handle or a@b'), 'write to <EMAIL>, not @handle or a@b');
  });

  it('masks IPv4 and IPv6 addresses, not times or versions with a bad octet', () => {
    assert.equal(maskIps('from 192.168.0.1 and 2001:db8::8a2e:370:7334, ::1 or fe80::1%eth0; at 12:30:45; v 300.1.2.3'), 'from <IP> and <IP>, <IP> or <IP>; at 12:30:45; v 300.1.2.3');
  });

  it('Luhn check: ISO/IEC 7812 test numbers', () => {
    assert.equal(luhnValid('79927398713'), true); // the textbook example
    assert.equal(luhnValid('4111111111111111'), true); // Visa test card
    assert.equal(luhnValid('5555555555554444'), true); // Mastercard test card
    assert.equal(luhnValid('378282246310005'), true); // Amex test card
    assert.equal(luhnValid('4111111111111112'), false);
    assert.equal(luhnValid('79927398710'), false);
  });

  it('masks card numbers only when they pass Luhn', () => {
    assert.equal(maskCreditCards('pay 4111 1111 1111 1111 or 5555-5555-5555-4444 or 378282246310005, not 4111 1111 1111 1112'), 'pay <CREDIT_CARD> or <CREDIT_CARD> or <CREDIT_CARD>, not 4111 1111 1111 1112');
  });

  it('masks phone numbers, not dates, years or amounts', () => {
    assert.equal(maskPhones('Call +1 (555) 123-4567, 555.123.4567, +44 20 7946 0958 or +14155552671.'), 'Call <PHONE>, <PHONE>, <PHONE> or <PHONE>.');
    assert.equal(maskPhones('On 2024-01-31 (31.01.2024) 2024 1200 people paid 1,234,567.89 for order 12345678.'), 'On 2024-01-31 (31.01.2024) 2024 1200 people paid 1,234,567.89 for order 12345678.');
  });

  it('maskPii applies the chosen kinds in a safe order', () => {
    const t = 'Mail a@b.org from 10.0.0.1, card 4111-1111-1111-1111, phone 555-123-4567';
    assert.equal(maskPii(t), 'Mail <EMAIL> from <IP>, card <CREDIT_CARD>, phone <PHONE>');
    assert.equal(maskPii(t, ['email']), 'Mail <EMAIL> from 10.0.0.1, card 4111-1111-1111-1111, phone 555-123-4567');
  });
});

describe('Gopher quality statistics (hand-counted)', () => {
  it('duplicate lines and their characters', () => {
    const t = 'a b c\na b c\nd e f';
    assert.deepEqual(lines(t), ['a b c', 'a b c', 'd e f']);
    assert.deepEqual(duplicateUnitFractions(lines(t)), { frac: 1 / 3, charFrac: 5 / 15 });
    assert.deepEqual(duplicateUnitFractions(['xx', 'y', 'xx', 'xx']), { frac: 2 / 4, charFrac: 4 / 7 });
  });

  it('top n-gram character fraction', () => {
    const ws = words('a b c a b c d e f'); // 9 words, 9 characters
    assert.equal(topNgramCharFrac(ws, 2), (2 * 2) / 9); // "a b" twice
    assert.equal(topNgramCharFrac(ws, 3), (2 * 3) / 9); // "a b c" twice
    assert.equal(topNgramCharFrac(ws, 4), 0); // no 4-gram repeats
    assert.equal(topNgramCharFrac(words('the cat the dog the cat'), 2), (2 * 6) / 18); // 6 words of 3 characters
  });

  it('duplicate n-gram character fraction counts each covered word once', () => {
    const ws = words('w1 w2 w3 w4 w5 w1 w2 w3 w4 w5 x'); // 21 characters
    assert.equal(dupNgramCharFrac(ws, 5), 10 / 21);
    assert.equal(dupNgramCharFrac(ws, 6), 0);
    // overlapping repeats: "a a a a a a a" (7 words): 5-grams at 0,1,2 equal; repeats at 1 and 2 cover words 1..6
    assert.equal(dupNgramCharFrac(words('a a a a a a a'), 5), 6 / 7);
  });

  it('symbol-to-word ratio', () => {
    assert.equal(symbolRatio('# a # b ... c'), 3 / 6);
    assert.equal(symbolRatio('fine… text'), 1 / 2);
  });

  it('qualityFailure names the first broken Gopher rule; clean prose passes', () => {
    assert.equal(qualityFailure('a b c\na b c\nd e f'), 'dup_line_frac 0.33 > 0.3');
    assert.equal(qualityFailure('#tag #tag #tag words here'), 'symbol_ratio 0.60 > 0.1');
    const prose = 'The committee met on Tuesday to discuss the budget. Several members raised concerns about the cost of the new library, while others argued that the town had postponed the project for too long. A final vote is expected next month.';
    assert.equal(qualityFailure(prose), null);
    const st = qualityStats(prose);
    assert.equal(st.dupLineFrac, 0);
    assert.equal(st.dupNgramCharFrac[5], 0);
  });
});

describe('spelling correction (tiny word list)', () => {
  const words = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'hello', 'cat', 'bat', "don't"];

  it('fixes distance-1 typos, keeps capitalisation, leaves acronyms, numbers and known words', () => {
    const sc = new SpellChecker(words);
    assert.equal(sc.correct('Teh quikc brwn fox jumsp ovr the lazzy dog.'), 'The quick brown fox jumps over the lazy dog.');
    assert.equal(sc.correct("HELO Helo helo2 don't zzzzzz"), "HELO Hello helo2 don't zzzzzz");
  });

  it('ranks by frequency when given, else alphabetically', () => {
    assert.equal(new SpellChecker(words).correct('hat'), 'bat');
    assert.equal(new SpellChecker(words, new Map([['cat', 100], ['bat', 5]])).correct('hat'), 'cat');
  });

  it('distance 2 only when asked', () => {
    assert.equal(new SpellChecker(words).correct('qck'), 'qck');
    assert.equal(new SpellChecker(words, null, { maxDistance: 2 }).correct('qck'), 'quick');
  });

  it('reads word and frequency files; a bad frequency line is an error with its line', () => {
    const wl = path.join(tmp, 'words.txt');
    fs.writeFileSync(wl, '# comment\ncat\nbat\n');
    const fq = path.join(tmp, 'freq.txt');
    fs.writeFileSync(fq, 'cat 10\nbat\t20\n');
    assert.equal(SpellChecker.fromFiles(wl, fq).correct('hat'), 'bat');
    fs.writeFileSync(fq, 'cat 10\nbat twenty\n');
    assert.throws(() => SpellChecker.fromFiles(wl, fq), (e: Error) => e instanceof PrepError && /freq\.txt line 2: expected "word count"/.test(e.message));
  });
});

describe('text slots', () => {
  it('finds strings, message contents, ShareGPT values, content parts and history; skips ids and roles', () => {
    const row = {
      id: 'x1',
      label: 'pos',
      text: 'plain',
      messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: [{ type: 'text', text: 'yo' }, { type: 'image', url: 'u' }] }],
      conversations: [{ from: 'human', value: 'q' }],
      chosen: { from: 'gpt', value: 'c' },
      history: [['h1', 'h2']],
      n: 3,
    };
    assert.deepEqual(textSlots(row, null).map((s) => s.path), ['text', 'messages[0].content', 'messages[1].content[0].text', 'conversations[0].value', 'chosen.value', 'history[0][0]', 'history[0][1]']);
    assert.deepEqual(textSlots(row, ['text', 'id']).map((s) => s.path), ['text', 'id']);
    assert.equal(rowText(row, ['messages']), 'hi\nyo');
  });
});

describe('clean pipeline', () => {
  it('runs the flag steps in order and counts changed / dropped rows per step', () => {
    const steps = stepsFromFlags({ html: true, maskPii: ['email'], minChars: 5 }).map((c) => buildStep(c, null));
    assert.deepEqual(steps.map((s) => s.name), ['html', 'invisible', 'normalize(NFC)', 'pii(email)', 'whitespace', 'length(chars>=5)']);
    const p = new CleanPipeline(steps, null);
    const rows = [
      { id: 1, text: '<b>Cafe\u0301</b>  au\u200B lait' },
      { id: 2, messages: [{ role: 'user', content: 'mail me: a@b.com' }, { role: 'assistant', content: 'ok 👨\u200D👩\u200D👧' }] },
      { id: 3, text: ' <i>hi</i> ' },
      { id: 4, n: 5 },
    ];
    const out = rows.map((r) => p.process(structuredClone(r)));
    assert.deepEqual(out, [
      { id: 1, text: 'Café au lait' },
      { id: 2, messages: [{ role: 'user', content: 'mail me: <EMAIL>' }, { role: 'assistant', content: 'ok 👨\u200D👩\u200D👧' }] },
      null,
      { id: 4, n: 5 },
    ]);
    assert.deepEqual(
      p.summary().steps.map((s) => [s.step, s.changed, s.dropped]),
      [['html', 2, 0], ['invisible', 1, 0], ['normalize(NFC)', 1, 0], ['pii(email)', 1, 0], ['whitespace', 2, 0], ['length(chars>=5)', 0, 1]],
    );
    assert.deepEqual(p.summary().steps[5].reasons, { too_few_chars: 1 });
    assert.equal(p.summary().rowsOut, 3);
    assert.equal(p.summary().rowsWithoutText, 1);
  });

  it('character lengths count code points; token lengths use the given counter', () => {
    assert.equal(charLength('👨\u200D👩\u200D👧'), 5);
    assert.equal(charLength('a\uD800b'), 3);
    const s = buildStep({ step: 'length', minChars: null, maxChars: null, minTokens: 2, maxTokens: 3 }, (t) => t.split(' ').length);
    assert.deepEqual(['a', 'a b', 'a b c d'].map((t) => s.apply(t)), [null, 'a b', null]);
    assert.throws(() => buildStep({ step: 'length', minChars: null, maxChars: null, minTokens: 2, maxTokens: null }, null), /need a tokenizer/);
  });

  it('parses a YAML recipe; errors name the file, line and step', () => {
    const f = path.join(tmp, 'recipe.yaml');
    fs.writeFileSync(f, 'fields: [text]\nsteps:\n  - html\n  - normalize: NFKC\n  - pii: [email, phone]\n  - quality: {max_dup_line_frac: 0.5, max_top_ngram_char_frac: {2: 0.3}}\n  - length: {min_chars: 3}\n');
    const r = parseRecipe(f);
    assert.deepEqual(r.fields, ['text']);
    assert.deepEqual(r.steps.slice(0, 3), [{ step: 'html' }, { step: 'normalize', form: 'NFKC' }, { step: 'pii', kinds: ['email', 'phone'] }]);
    const q = r.steps[3];
    assert.ok(q.step === 'quality' && q.thresholds.maxDupLineFrac === 0.5 && q.thresholds.maxTopNgramCharFrac[2] === 0.3 && q.thresholds.maxTopNgramCharFrac[3] === 0.18);
    fs.writeFileSync(f, 'steps:\n  - html\n  - pii: [email, ssn]\n');
    assert.throws(() => parseRecipe(f), (e: Error) => e.message === `${f} line 3, field 'steps[1]': pii: unknown kind "ssn" (known: email, phone, ip, credit_card)`);
    fs.writeFileSync(f, 'steps:\n  - bogus\n');
    assert.throws(() => parseRecipe(f), /line 2, field 'steps\[0\]': unknown step 'bogus'/);
    fs.writeFileSync(f, 'steps: [html\n');
    assert.throws(() => parseRecipe(f), /invalid YAML/);
  });
});
