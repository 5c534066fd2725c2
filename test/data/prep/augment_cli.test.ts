// `alignkit data augment` end to end (in-process CLI): literal seeded rows with their provenance, layouts and
// roles, CSV, bad input as one line, the endpoint against a local node:http server, a tiny local model, and
// WordNet when it is installed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { main } from '../../../src/cli/main.ts';
import { writeTinyChatModel } from '../../../src/demo/tiny_chat.ts';
import { segment } from '../../../src/data/prep/augment_text.ts';
import { DEFAULT_WORDNET_DIR, WordNet, hasWordNet } from '../../../src/data/prep/augment_wordnet.ts';
import { readRows, type Row } from '../../../src/data/prep/stream.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'alignkit-augment-cli-'));
const p = (name: string): string => path.join(tmp, name);
const write = (name: string, content: string | Buffer): string => {
  fs.writeFileSync(p(name), content);
  return p(name);
};
const jsonl = (rows: unknown[]): string => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const logs: string[] = [], errs: string[] = [];
  const ol = console.log, oe = console.error;
  console.log = (...a: unknown[]) => logs.push(a.map(String).join(' '));
  console.error = (...a: unknown[]) => errs.push(a.map(String).join(' '));
  process.exitCode = undefined;
  try {
    await main(['node', 'alignkit', ...args]);
  } finally {
    console.log = ol;
    console.error = oe;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = undefined;
  return { code, out: logs.join('\n'), err: errs.filter((e) => !e.includes('native addon not built')).join('\n') };
}

async function rows(file: string): Promise<Row[]> {
  const out: Row[] = [];
  for await (const { row } of readRows(file)) out.push(row);
  return out;
}

const thesaurus = write('th.json', JSON.stringify({ movie: ['film', 'picture'], great: ['excellent', 'superb'], boring: ['dull', 'tedious'], plot: ['story'], acting: ['performance'], café: ['bistro'] }));
const classification = write('cls.jsonl', [
  JSON.stringify({ id: 7, text: 'A great movie, with great acting!', label: 'pos' }),
  '',
  JSON.stringify({ id: 8, text: 'Boring plot; the café scene was boring.', label: 'neg', meta: { src: 'web' } }),
  JSON.stringify({ id: 9, text: '', label: 'neg' }),
].join('\n') + '\n');
const rates = ['--alpha-sr', '0.3', '--alpha-ri', '0.3', '--alpha-rs', '0.3', '--p-rd', '0.3'];

describe('data augment: EDA with a thesaurus', () => {
  it('writes each source row, then its seeded augmentations, with source_line / source_id / augmentation', async () => {
    const out = p('cls.out.jsonl');
    const r = await cli(['data', 'augment', classification, '-o', out, '--thesaurus', thesaurus, '--num-aug', '2', '--seed', '3', ...rates]);
    assert.equal(r.code, 0, r.err);
    const eda = (operation: string, rate: Record<string, number>, index: number, n: number | null, edits: unknown[]) => ({ method: 'eda', params: { operation, ...rate, seed: 3, index, changes: [{ field: 'text', n, edits }] } });
    // Row 1 (6 words): n = round(0.3 * 6) = 2. SR: every "great" -> "superb", "movie" -> "picture". RI: two insertions.
    // Row 3 (7 words): RD drops "scene" and "the" with the spaces before them; RI inserts "dull" before "was", then at 0.
    // Row 4 (empty text): nothing to change, still num_aug copies (see --drop-unchanged).
    assert.deepEqual(await rows(out), [
      { id: 7, text: 'A great movie, with great acting!', label: 'pos', source_line: 1, source_id: 7, augmentation: null },
      { id: 7, text: 'A superb picture, with superb acting!', label: 'pos', source_line: 1, source_id: 7, augmentation: eda('synonym_replacement', { alpha: 0.3 }, 0, 2, [{ op: 'replace', word: 'movie', with: 'picture' }, { op: 'replace', word: 'great', with: 'superb' }]) },
      { id: 7, text: 'A superb great performance movie, with great acting!', label: 'pos', source_line: 1, source_id: 7, augmentation: eda('random_insertion', { alpha: 0.3 }, 1, 2, [{ op: 'insert', word: 'superb', at: 1 }, { op: 'insert', word: 'performance', at: 3 }]) },
      { id: 8, text: 'Boring plot; the café scene was boring.', label: 'neg', meta: { src: 'web' }, source_line: 3, source_id: 8, augmentation: null },
      { id: 8, text: 'Boring plot; café was boring.', label: 'neg', meta: { src: 'web' }, source_line: 3, source_id: 8, augmentation: eda('random_deletion', { p: 0.3 }, 0, null, [{ op: 'delete', word: 'the' }, { op: 'delete', word: 'scene' }]) },
      { id: 8, text: 'dull Boring plot; the café scene dull was boring.', label: 'neg', meta: { src: 'web' }, source_line: 3, source_id: 8, augmentation: eda('random_insertion', { alpha: 0.3 }, 1, 2, [{ op: 'insert', word: 'dull', at: 5 }, { op: 'insert', word: 'dull', at: 0 }]) },
      { id: 9, text: '', label: 'neg', source_line: 4, source_id: 9, augmentation: null },
      { id: 9, text: '', label: 'neg', source_line: 4, source_id: 9, augmentation: eda('random_deletion', { p: 0.3 }, 0, 0, []) },
      { id: 9, text: '', label: 'neg', source_line: 4, source_id: 9, augmentation: eda('synonym_replacement', { alpha: 0.3 }, 1, 0, []) },
    ]);
    assert.match(r.out, /3 rows in -> 3 originals \+ 6 augmented rows/);
  });

  it('the same seed writes the same bytes; another seed other rows', async () => {
    const run = async (seed: string, name: string): Promise<string> => {
      assert.equal((await cli(['data', 'augment', classification, '-o', p(name), '--thesaurus', thesaurus, '--seed', seed])).code, 0);
      return fs.readFileSync(p(name), 'utf8');
    };
    const a = await run('11', 'same1.jsonl');
    assert.equal(await run('11', 'same2.jsonl'), a);
    assert.notEqual(await run('12', 'other.jsonl'), a);
    assert.equal(a.trim().split('\n').length, 3 + 3 * 9); // default num_aug 9
  });

  it('--no-originals --drop-unchanged and the JSON summary', async () => {
    const out = p('only.jsonl');
    const r = await cli(['data', 'augment', classification, '-o', out, '--thesaurus', thesaurus, '--num-aug', '2', '--seed', '3', ...rates, '--no-originals', '--drop-unchanged', '--json']);
    assert.equal(r.code, 0, r.err);
    const s = JSON.parse(r.out);
    assert.deepEqual(
      { rowsIn: s.rowsIn, originals: s.originals, augmented: s.augmented, unchanged: s.unchanged, droppedUnchanged: s.droppedUnchanged, byKind: s.byKind, failed: s.failed, numAug: s.numAug },
      { rowsIn: 3, originals: 0, augmented: 4, unchanged: 2, droppedUnchanged: 2, byKind: { 'eda/random_deletion': 1, 'eda/random_insertion': 2, 'eda/synonym_replacement': 1 }, failed: 0, numAug: 2 },
    );
    assert.deepEqual((await rows(out)).map((x) => x.source_line), [1, 1, 3, 3]);
  });

  it('reads and writes CSV (the augmentation record becomes JSON text)', async () => {
    const csv = write('cls.csv', 'id,text,label\r\nr1,"Great movie, great plot.",pos\r\n');
    const out = p('cls.out.csv');
    const r = await cli(['data', 'augment', csv, '-o', out, '--thesaurus', thesaurus, '--num-aug', '3', '--alpha-ri', '0', '--alpha-rs', '0', '--p-rd', '0', '--alpha-sr', '0.5']);
    assert.equal(r.code, 0, r.err);
    const got = await rows(out);
    assert.equal(got.length, 4);
    assert.deepEqual(got[0], { id: 'r1', text: 'Great movie, great plot.', label: 'pos', source_line: '2', source_id: 'r1', augmentation: '' });
    for (const row of got.slice(1)) {
      assert.equal(row.label, 'pos');
      assert.equal(row.source_line, '2');
      const aug = JSON.parse(row.augmentation as string);
      assert.equal(aug.method, 'eda');
      assert.equal(aug.params.operation, 'synonym_replacement');
      // 4 words: n = 2 of great / movie / plot replaced, every occurrence, capitalisation kept.
      assert.equal(aug.params.changes[0].edits.length, 2);
      assert.match(row.text as string, /^(Great|Excellent|Superb) (movie|film|picture), (great|excellent|superb) (plot|story)\.$/);
    }
  });
});

describe('data augment: which strings', () => {
  const identity = write('swap.json', JSON.stringify({ red: ['rojo'], green: ['verde'], blue: ['azul'] }));
  const srAll = ['--thesaurus', identity, '--num-aug', '1', '--alpha-ri', '0', '--alpha-rs', '0', '--p-rd', '0', '--alpha-sr', '1', '--no-originals'];

  it('default: the prompt side of the layout; --roles picks message roles', async () => {
    const input = write('layouts.jsonl', jsonl([
      { messages: [{ role: 'system', content: 'red' }, { role: 'user', content: 'red green' }, { role: 'assistant', content: 'green' }] },
      { conversations: [{ from: 'human', value: 'blue' }, { from: 'gpt', value: 'blue' }] },
      { instruction: 'red', input: 'green', output: 'blue' },
      { prompt: 'red', chosen: 'green', rejected: 'blue' },
      { prompt: 'green', completion: 'red', label: true },
      { text: 'blue', label: 'red', id: 'red' },
    ]));
    const out = p('layouts.out.jsonl');
    assert.equal((await cli(['data', 'augment', input, '-o', out, ...srAll])).code, 0);
    const strip = (r: Row): Row => {
      const { source_line: _l, source_id: _i, augmentation: _a, ...rest } = r;
      return rest;
    };
    assert.deepEqual((await rows(out)).map(strip), [
      { messages: [{ role: 'system', content: 'red' }, { role: 'user', content: 'rojo verde' }, { role: 'assistant', content: 'green' }] },
      { conversations: [{ from: 'human', value: 'azul' }, { from: 'gpt', value: 'blue' }] },
      { instruction: 'rojo', input: 'verde', output: 'blue' },
      { prompt: 'rojo', chosen: 'green', rejected: 'blue' },
      { prompt: 'verde', completion: 'red', label: true },
      { text: 'azul', label: 'red', id: 'red' },
    ]);
    const out2 = p('layouts.all.jsonl');
    assert.equal((await cli(['data', 'augment', input, '-o', out2, ...srAll, '--roles', 'all'])).code, 0);
    const first = (await rows(out2))[0];
    assert.deepEqual(first.messages, [{ role: 'system', content: 'rojo' }, { role: 'user', content: 'rojo verde' }, { role: 'assistant', content: 'verde' }]);
    assert.deepEqual((first.augmentation as { params: { changes: { field: string }[] } }).params.changes.map((c) => c.field), ['messages[0].content', 'messages[1].content', 'messages[2].content']);
  });

  it('--fields names the fields; a row without one is an error naming line and field, or skipped with --skip-invalid', async () => {
    const input = write('fields.jsonl', jsonl([{ a: 'red', b: 'green' }, { b: 'blue' }]));
    const out = p('fields.out.jsonl');
    const ok = await cli(['data', 'augment', input, '-o', out, ...srAll, '--fields', 'b']);
    assert.equal(ok.code, 0, ok.err);
    assert.deepEqual((await rows(out)).map((r) => [r.a, r.b]), [['red', 'verde'], [undefined, 'azul']]);
    const bad = await cli(['data', 'augment', input, '-o', p('fields.bad.jsonl'), ...srAll, '--fields', 'a']);
    assert.equal(bad.code, 1);
    assert.equal(bad.err, `alignkit data augment: ${input} line 2, field 'a': missing field (the row has: b)`);
    assert.equal(fs.existsSync(p('fields.bad.jsonl')), false);
    const skipped = await cli(['data', 'augment', input, '-o', p('fields.skip.jsonl'), ...srAll, '--fields', 'a', '--skip-invalid', '--json']);
    assert.equal(skipped.code, 0, skipped.err);
    assert.deepEqual(JSON.parse(skipped.out).invalid, { skipped: 1, samples: [`${input} line 2, field 'a': missing field (the row has: b)`] });
    assert.deepEqual((await rows(p('fields.skip.jsonl'))).map((r) => r.a), ['rojo']);
  });
});

describe('data augment: bad input and options', () => {
  it('reports them as one line and writes nothing', async () => {
    const badTh = write('bad.tsv', 'movie\tfilm\nplot\n');
    const cases: [string[], string][] = [
      [['--thesaurus', badTh], `${badTh} line 2: 'plot' has no synonyms (expected word<TAB>synonym<TAB>..., separated by tabs)`],
      [['--wordnet', p('no-wordnet')], `WordNet database not found in ${p('no-wordnet')} (missing index.noun, data.noun, index.verb, data.verb, index.adj, data.adj, index.adv, data.adv): install it (Debian/Ubuntu: apt-get install wordnet-base) or pass --wordnet DIR, or give synonyms with --thesaurus FILE`],
      [['--thesaurus', thesaurus, '--alpha-sr', '0', '--alpha-ri', '0', '--alpha-rs', '0', '--p-rd', '0'], 'every EDA operation is off (--alpha-sr, --alpha-ri, --alpha-rs and --p-rd are all 0)'],
      [['--method', 'paraphrase'], '--method paraphrase needs --model DIR or --endpoint URL --endpoint-model NAME'],
      [['--method', 'contextual', '--endpoint', 'http://127.0.0.1:9', '--endpoint-model', 'm'], '--method contextual needs raw continuations from a local causal LM: give --model, not --endpoint'],
      [['--method', 'paraphrase', '--endpoint', 'http://127.0.0.1:9'], '--endpoint needs --endpoint-model NAME'],
      [['--method', 'paraphrase', '--endpoint', 'http://127.0.0.1:9', '--endpoint-model', 'm', '--template', 'Paraphrase:'], '--template must contain {text} (where the row\'s text goes), got "Paraphrase:"'],
      [['--method', 'back-translation', '--endpoint', 'http://127.0.0.1:9', '--endpoint-model', 'm', '--api-key-env', 'ALIGNKIT_TEST_UNSET_KEY'], '--api-key-env: the environment variable ALIGNKIT_TEST_UNSET_KEY is not set'],
      [['--thesaurus', thesaurus, '--model', 'x'], '--method eda does not use a model; choose --method paraphrase, back-translation or contextual'],
      [['--thesaurus', thesaurus, '--roles', 'user,robot'], "--roles: unknown role 'robot' (known: user, assistant, system, tool, all)"],
    ];
    for (const [args, msg] of cases) {
      const out = p('never.jsonl');
      const r = await cli(['data', 'augment', classification, '-o', out, ...args]);
      assert.equal(r.code, 1, args.join(' '));
      assert.equal(r.err, `alignkit data augment: ${msg}`);
      assert.equal(fs.existsSync(out), false);
    }
    const badJson = write('bad.jsonl', '{"text": "ok"}\n{"text": \n');
    const r = await cli(['data', 'augment', badJson, '-o', p('never.jsonl'), '--thesaurus', thesaurus]);
    assert.equal(r.code, 1);
    assert.match(r.err, new RegExp(`^alignkit data augment: ${badJson.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} line 2: invalid JSON: `));
  });
});

describe('data augment: WordNet synonyms', () => {
  it('replaces words with WordNet synonyms (when the database is installed)', async (t) => {
    if (!hasWordNet()) return t.skip(`WordNet database not installed in ${DEFAULT_WORDNET_DIR} (Debian/Ubuntu: apt-get install wordnet-base)`);
    const input = write('wn.jsonl', jsonl([{ text: 'The happy dog, the quick cat.' }]));
    const out = p('wn.out.jsonl');
    const r = await cli(['data', 'augment', input, '-o', out, '--wordnet', '--num-aug', '4', '--alpha-ri', '0', '--alpha-rs', '0', '--p-rd', '0', '--alpha-sr', '0.5', '--no-originals', '--seed', '1']);
    assert.equal(r.code, 0, r.err);
    const wn = WordNet.open();
    try {
      for (const row of await rows(out)) {
        const edits = (row.augmentation as { params: { changes: { edits: { word: string; with: string }[] }[] } }).params.changes[0].edits;
        assert.equal(edits.length, 3); // 6 words: n = 3 of happy / dog / quick / cat
        for (const e of edits) assert.ok(wn.synonyms(e.word).includes(e.with), `${e.with} is a WordNet synonym of ${e.word}`);
        assert.deepEqual(segment(row.text as string).gaps.filter((g) => /[^\s]/.test(g)), [', ', '.']);
      }
    } finally {
      wn.close();
    }
  });
});

describe('data augment: endpoint (local test server)', () => {
  let server: http.Server;
  let base = '';
  before(async () => {
    server = http.createServer((req, res) => {
      let data = '';
      req.on('data', (c) => (data += c));
      req.on('end', () => {
        const body = JSON.parse(data) as { messages: { content: string }[]; seed: number };
        const prompt = body.messages.at(-1)!.content;
        if (prompt.includes('FAIL')) {
          res.writeHead(503, { 'content-type': 'application/json' });
          return res.end(JSON.stringify({ error: { message: 'overloaded' } }));
        }
        const text = /Paraphrase: (.*)\nParaphrase:$/s.exec(prompt)?.[1] ?? prompt;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: ` ${text.toUpperCase()} #${body.seed % 1000}` } }] }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  it('paraphrases every target string; failures are reported with line and field, the other rows written', async () => {
    const input = write('ep.jsonl', jsonl([
      { id: 'a', messages: [{ role: 'user', content: 'hello there' }, { role: 'assistant', content: 'hi' }] },
      { id: 'b', text: 'please FAIL now', label: 1 },
      { id: 'c', text: 'good day', label: 0 },
    ]));
    const out = p('ep.out.jsonl');
    const r = await cli(['data', 'augment', input, '-o', out, '--method', 'paraphrase', '--endpoint', base, '--endpoint-model', 'para-1', '--template', 'Paraphrase: {text}\\nParaphrase:', '--temperature', '0.5', '--seed', '9', '--no-originals', '--json']);
    assert.equal(r.code, 0, r.err);
    const s = JSON.parse(r.out);
    assert.equal(s.failed, 1);
    assert.deepEqual(s.failureSamples, [`${input} line 2, field 'text': endpoint answered HTTP 503: overloaded`]);
    const got = await rows(out);
    assert.deepEqual(got.map((x) => x.id), ['a', 'c']);
    assert.match((got[0].messages as { content: string }[])[0].content, /^HELLO THERE #\d+$/);
    assert.equal((got[0].messages as { content: string }[])[1].content, 'hi');
    assert.match(got[1].text as string, /^GOOD DAY #\d+$/);
    assert.equal(got[1].label, 0);
    assert.deepEqual(got[1].augmentation, {
      method: 'paraphrase',
      params: {
        template: 'Paraphrase: {text}\nParaphrase:', backend: 'endpoint', endpoint: `${base}/v1/chat/completions`, model: 'para-1', max_tokens: 128, temperature: 0.5, top_p: 1, stop: [], seed: 9, index: 0,
        fields: [{ field: 'text' }],
      },
    });
    const again = p('ep.again.jsonl');
    await cli(['data', 'augment', input, '-o', again, '--method', 'paraphrase', '--endpoint', base, '--endpoint-model', 'para-1', '--template', 'Paraphrase: {text}\\nParaphrase:', '--temperature', '0.5', '--seed', '9', '--no-originals', '--json']);
    assert.equal(fs.readFileSync(again, 'utf8'), fs.readFileSync(out, 'utf8'), 'the seeds sent depend only on --seed and the row');
  });

  it('--fail-fast stops at the first failure with one line and no output', async () => {
    const input = write('ep2.jsonl', jsonl([{ text: 'fine' }, { text: 'FAIL' }]));
    const r = await cli(['data', 'augment', input, '-o', p('ep2.out.jsonl'), '--method', 'paraphrase', '--endpoint', base, '--endpoint-model', 'm', '--fail-fast']);
    assert.equal(r.code, 1);
    assert.equal(r.err, `alignkit data augment: ${input} line 2, field 'text': endpoint answered HTTP 503: overloaded`);
    assert.equal(fs.existsSync(p('ep2.out.jsonl')), false);
  });

  it('back-translates with the default templates', async () => {
    const input = write('bt.jsonl', jsonl([{ text: 'good day' }]));
    const out = p('bt.out.jsonl');
    const r = await cli(['data', 'augment', input, '-o', out, '--method', 'back-translation', '--endpoint', base, '--endpoint-model', 'm', '--pivot', 'German', '--no-originals']);
    assert.equal(r.code, 0, r.err);
    const [row] = await rows(out);
    const aug = row.augmentation as { method: string; params: { template: string; back_template: string; fields: { field: string; pivot: string }[] } };
    assert.equal(aug.method, 'back_translation');
    assert.equal(aug.params.template, 'Translate the following text into German. Reply with the translation only.\n\n{text}');
    assert.equal(aug.params.back_template, 'Translate the following text into English. Reply with the translation only.\n\n{text}');
    // The server upper-cases the whole prompt and appends the seed: the pivot is the upper-cased German prompt.
    assert.match(aug.params.fields[0].pivot, /^TRANSLATE THE FOLLOWING TEXT INTO GERMAN\. REPLY WITH THE TRANSLATION ONLY\.\n\nGOOD DAY #\d+$/);
    assert.match(row.text as string, /^TRANSLATE THE FOLLOWING TEXT INTO ENGLISH\./);
  });
});

describe('data augment: local model', () => {
  const model = writeTinyChatModel(p('tiny'), { hidden: 32, layers: 1, heads: 2, kvHeads: 1, seed: 4 });
  const input = write('lm.jsonl', jsonl([{ id: 1, text: 'The quick brown fox jumps over the lazy dog.', label: 'x' }, { id: 2, text: 'Green ideas sleep furiously.', label: 'y' }]));

  it('paraphrase: deterministic rows that point at their source', async () => {
    const args = (out: string): string[] => ['data', 'augment', input, '-o', out, '--method', 'paraphrase', '--model', model, '--num-aug', '2', '--max-new-tokens', '12', '--seed', '5', '--no-originals', '--batch-size', '3'];
    const a = await cli(args(p('lm.a.jsonl')));
    assert.equal(a.code, 0, a.err);
    await cli([...args(p('lm.b.jsonl')).slice(0, -2), '--batch-size', '1']);
    assert.equal(fs.readFileSync(p('lm.b.jsonl'), 'utf8'), fs.readFileSync(p('lm.a.jsonl'), 'utf8'), 'batch size does not change the output');
    const got = await rows(p('lm.a.jsonl'));
    // A random model may produce an empty line: such outputs are failures, not rows.
    const s = JSON.parse((await cli([...args(p('lm.c.jsonl')), '--json'])).out);
    assert.equal(got.length + s.failed, 4);
    for (const row of got) {
      assert.ok(row.source_line === 1 || row.source_line === 2);
      assert.equal(row.source_id, row.source_line);
      assert.equal(row.label, row.source_line === 1 ? 'x' : 'y');
      const aug = row.augmentation as { method: string; params: Record<string, unknown> };
      assert.equal(aug.method, 'paraphrase');
      assert.equal(aug.params.backend, 'model');
      assert.equal(aug.params.template, 'Paraphrase: {text}\nParaphrase:');
      assert.equal(aug.params.max_new_tokens, 12);
      assert.ok(!(row.text as string).includes('\n'));
    }
  });

  it('contextual: only the chosen words change, the punctuation stays', async () => {
    const out = p('ctx.jsonl');
    const r = await cli(['data', 'augment', input, '-o', out, '--method', 'contextual', '--model', model, '--num-aug', '2', '--alpha', '0.3', '--candidates', '6', '--max-word-tokens', '5', '--no-originals', '--json']);
    assert.equal(r.code, 0, r.err);
    const got = await rows(out);
    assert.equal(got.length, 4);
    const src = ['The quick brown fox jumps over the lazy dog.', 'Green ideas sleep furiously.'];
    for (const row of got) {
      const before = segment(src[(row.source_line as number) - 1]);
      const after = segment(row.text as string);
      assert.deepEqual(after.gaps, before.gaps);
      const aug = row.augmentation as { method: string; params: { fields: { field: string; edits: { at: number; word: string; with: string | null }[] }[] } };
      assert.equal(aug.method, 'contextual');
      const edits = aug.params.fields[0].edits;
      for (let i = 0; i < before.words.length; i++) {
        const e = edits.find((x) => x.at === i);
        assert.equal(after.words[i], e?.with ?? before.words[i]);
      }
    }
  });
});
