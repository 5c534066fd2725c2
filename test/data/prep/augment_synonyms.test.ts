// Synonym sources: thesaurus files (JSON / TSV, errors naming file, line and head word) and the WordNet 3.0
// database read directly, checked against NLTK's published wn.synsets / lemma_names / morphy results.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChainedSynonyms, Thesaurus, loadThesaurus } from '../../../src/data/prep/augment_synonyms.ts';
import { DEFAULT_WORDNET_DIR, WordNet, hasWordNet } from '../../../src/data/prep/augment_wordnet.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'alignkit-augment-syn-'));
const write = (name: string, content: string | Buffer): string => {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, content);
  return p;
};

describe('thesaurus files', () => {
  it('reads JSON {word: [synonyms]}: keys by NFC lower case, synonyms as written, self and repeats dropped', () => {
    const t = loadThesaurus(write('t.json', JSON.stringify({ Big: ['large', 'Huge', 'big', 'large'], 'cafe\u0301': ['bistro'], "don't": ['do not'] })));
    assert.deepEqual(t.synonyms('big'), ['large', 'Huge']);
    assert.deepEqual(t.synonyms('BIG'), ['large', 'Huge']);
    assert.deepEqual(t.synonyms('café'), ['bistro']);
    assert.deepEqual(t.synonyms('don’t'), ['do not']); // a curly apostrophe finds the straight entry
    assert.deepEqual(t.synonyms('large'), []); // directed: nothing listed under "large"
    assert.equal(t.size, 3);
  });

  it('reads TSV: word<TAB>synonym..., comments and blank lines skipped, CRLF, repeated heads merged', () => {
    const t = loadThesaurus(write('t.tsv', '# my synonyms\r\nbig\tlarge\thuge\r\n\r\nsmall\tlittle\r\nbig\tgreat\tlarge\r\n'));
    assert.deepEqual(t.synonyms('big'), ['large', 'huge', 'great']);
    assert.deepEqual(t.synonyms('small'), ['little']);
  });

  it('reports bad files with the file, line or head word', () => {
    const bad = (name: string, content: string | Buffer, msg: string): void => {
      const f = write(name, content);
      assert.throws(() => loadThesaurus(f), (e: Error) => e.message === `${f}${msg}`);
    };
    bad('a.tsv', 'big\tlarge\nsmall\n', " line 2: 'small' has no synonyms (expected word<TAB>synonym<TAB>..., separated by tabs)");
    bad('b.tsv', 'big\tlarge\n\tx\n', ' line 2: empty head word (expected word<TAB>synonym<TAB>...)');
    bad('c.json', '{"big": "large"}', ", field 'big': expected a list of synonyms, got string");
    bad('d.json', '{"big": ["large", 3]}', ", field 'big[1]': expected a non-empty string, got 3");
    bad('e.json', '["big"]', ': a JSON thesaurus must be an object {"word": ["synonym", ...]}');
    bad('f.tsv', Buffer.from([0x62, 0x09, 0x63, 0x0a, 0x64, 0x09, 0xff, 0x0a]), ' line 2: invalid UTF-8: byte 0xff (the file must be UTF-8)');
    bad('g.csv', 'big,large\n', ': a thesaurus must be .json ({"word": [synonyms]}) or .tsv / .txt (word<TAB>synonym<TAB>...)');
    assert.throws(() => loadThesaurus(path.join(tmp, 'missing.json')), /missing\.json: thesaurus file not found/);
    assert.throws(() => loadThesaurus(write('h.json', '{"big": [')), /h\.json: invalid JSON: /);
  });

  it('chains sources in order without repeats', () => {
    const a = Thesaurus.fromObject({ big: ['large', 'huge'] });
    const b = Thesaurus.fromObject({ big: ['Large', 'great'], small: ['little'] });
    const c = new ChainedSynonyms([a, b]);
    assert.deepEqual(c.synonyms('big'), ['large', 'huge', 'great']);
    assert.deepEqual(c.synonyms('small'), ['little']);
  });
});

const SKIP_NO_WORDNET = `WordNet database not installed in ${DEFAULT_WORDNET_DIR} (Debian/Ubuntu: apt-get install wordnet-base)`;

/** One database for every test (opening reads the 6 MB of index files). */
let shared: WordNet | null = null;
const wordnet = (): WordNet => (shared ??= WordNet.open());
after(() => shared?.close());

describe('WordNet', () => {
  it('names what is missing when the database is absent', () => {
    assert.throws(() => WordNet.open(tmp), (e: Error) => e.message.startsWith(`WordNet database not found in ${tmp} (missing index.noun, data.noun,`) && e.message.includes('apt-get install wordnet-base') && e.message.includes('--thesaurus FILE'));
  });

  it('lists synsets in NLTK wn.synsets order (NLTK WordNet how-to: dog, cat)', (t) => {
    if (!hasWordNet()) return t.skip(SKIP_NO_WORDNET);
    const wn = wordnet();
    // NLTK: wn.synsets('dog') -> dog.n.01 frump.n.01 dog.n.03 cad.n.01 frank.n.02 pawl.n.01 andiron.n.01 chase.v.01
    assert.deepEqual(wn.synsets('dog').map((s) => `${s.lemmas[0].toLowerCase()}.${s.pos}`), ['dog.n', 'frump.n', 'dog.n', 'cad.n', 'frank.n', 'pawl.n', 'andiron.n', 'chase.v']);
    // NLTK: wn.synset('dog.n.01').lemma_names() -> ['dog', 'domestic_dog', 'Canis_familiaris']
    assert.deepEqual(wn.synsets('dog')[0].lemmas, ['dog', 'domestic_dog', 'Canis_familiaris']);
    // NLTK: wn.synsets('cat', 'n') -> cat.n.01 guy.n.01 cat.n.03 kat.n.01 cat-o'-nine-tails.n.01 caterpillar.n.02 big_cat.n.01 computerized_tomography.n.01
    assert.deepEqual(wn.synsets('cat', 'n').map((s) => s.lemmas[0].toLowerCase()), ['cat', 'guy', 'cat', 'kat', "cat-o'-nine-tails", 'caterpillar', 'big_cat', 'computerized_tomography']);
    assert.deepEqual(wn.synsets('dog', 'v').map((s) => s.lemmas[0]), ['chase']);
  });

  it('finds base forms like morphy (NLTK test_morphy cases)', (t) => {
    if (!hasWordNet()) return t.skip(SKIP_NO_WORDNET);
    const wn = wordnet();
    assert.equal(wn.morphy('dogs', 'n'), 'dog');
    assert.equal(wn.morphy('churches', 'n'), 'church');
    assert.equal(wn.morphy('aardwolves', 'n'), 'aardwolf'); // noun.exc
    assert.equal(wn.morphy('abaci', 'n'), 'abacus'); // noun.exc
    assert.equal(wn.morphy('hardrock', 'r'), null);
    assert.equal(wn.morphy('book', 'n'), 'book');
    assert.equal(wn.morphy('book', 'a'), null);
  });

  it('gives synonyms: every lemma of those synsets, "_" as a space, without the word and its base forms', (t) => {
    if (!hasWordNet()) return t.skip(SKIP_NO_WORDNET);
    const wn = wordnet();
    // happy: happy.a.01 [happy], felicitous.s.02 [felicitous, happy], glad.s.02 [glad, happy], happy.s.04 [happy, well-chosen]
    assert.deepEqual(wn.synonyms('happy'), ['felicitous', 'glad', 'well-chosen']);
    assert.deepEqual(wn.synonyms('Happy'), ['felicitous', 'glad', 'well-chosen']);
    // dogs -> dog: dog.n.01 first, then frump.n.01 [frump, dog], dog.n.03, cad.n.01 [cad, bounder, blackguard, dog, hound, heel]
    assert.deepEqual(wn.synonyms('dogs').slice(0, 8), ['domestic dog', 'Canis familiaris', 'frump', 'cad', 'bounder', 'blackguard', 'hound', 'heel']);
    assert.deepEqual(wn.synonyms('qwzxv'), []);
    assert.deepEqual(wn.synonyms('the'), []);
  });
});
