// The options and the body of `alignkit data augment` (registered in src/cli/commands/data.ts, which adds the
// shared --format / --skip-invalid / --lone-surrogates / --json options and the one-line error handling).
// See docs/data-augment.md.
import fs from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { AUGMENT_METHODS, AugmentStats, ROLES, edaRow, modelRows, withProvenance, type AugmentFailure, type AugmentMethod, type AugmentTargets, type EdaAugmentOptions, type ModelAugmentOptions, type RowAugmentation } from './augment.ts';
import { EndpointGenerator, LocalModelGenerator, checkTemplate, unescapeCli, type TextGenerator } from './augment_model.ts';
import { ChainedSynonyms, loadThesaurus } from './augment_synonyms.ts';
import { DEFAULT_STOP_WORDS, EDA_DEFAULTS, wordKey, type EdaParams, type SynonymSource } from './augment_text.ts';
import { DEFAULT_WORDNET_DIR, WordNet } from './augment_wordnet.ts';
import { PrepConfigError, PrepError } from './errors.ts';
import { parseFieldList } from './fields.ts';
import { formatOf, readRows, withWriter, type Row } from './stream.ts';

export interface AugmentOpts {
  out: string;
  method: AugmentMethod;
  numAug?: number;
  fields?: string;
  roles: string;
  idField: string;
  originals: boolean;
  dropUnchanged?: boolean;
  seed: number;
  alphaSr: number;
  alphaRi: number;
  alphaRs: number;
  pRd: number;
  thesaurus?: string;
  wordnet?: string | boolean;
  stopWords?: string;
  model?: string;
  chat?: boolean;
  endpoint?: string;
  endpointModel?: string;
  apiKeyEnv?: string;
  system?: string;
  timeout: number;
  concurrency: number;
  template?: string;
  backTemplate?: string;
  pivot: string;
  maxNewTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repetitionPenalty: number;
  stop?: string;
  batchSize: number;
  alpha: number;
  candidates: number;
  maxWordTokens: number;
  failFast?: boolean;
  // shared options (data.ts withCommon)
  format?: string;
  skipInvalid?: boolean;
  loneSurrogates: 'error' | 'replace';
  json?: boolean;
}

function intArg(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}.`);
    return n;
  };
}
function numArg(name: string, lo: number, hi: number) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < lo || n > hi) throw new InvalidArgumentError(`${name} must be a number in [${lo}, ${hi}].`);
    return n;
  };
}
function methodArg(v: string): AugmentMethod {
  const m = v.replace(/-/g, '_');
  if (!(AUGMENT_METHODS as readonly string[]).includes(m)) throw new InvalidArgumentError(`--method must be one of eda, paraphrase, back-translation, contextual.`);
  return m as AugmentMethod;
}

/** Adds the augment options to a command. */
export function augmentOptions(cmd: Command): Command {
  return cmd
    .argument('<input>', 'input file (.jsonl, .jsonl.gz, .json, .csv, .tsv, .parquet)')
    .requiredOption('-o, --out <file>', 'output file (format from its extension)')
    .option('--method <m>', 'eda, paraphrase, back-translation or contextual', methodArg, 'eda' as AugmentMethod)
    .option('--num-aug <n>', 'augmented rows per source row (default: 9 for eda, as in the EDA reference code; 1 for the model methods)', intArg('--num-aug', 1))
    .option('--fields <list>', "comma-separated top-level fields to augment (default: the prompt side of the row's layout; every text field except ids and labels for other rows)")
    .option('--roles <list>', `roles whose message content is augmented: ${ROLES.join(', ')} or all`, 'user')
    .option('--id-field <name>', 'field copied into source_id (when the row has it)', 'id')
    .option('--no-originals', 'write only the augmented rows (default: every source row, then its augmentations)')
    .option('--drop-unchanged', 'do not write augmented rows identical to their source')
    .option('--seed <n>', 'seed of every random choice', intArg('--seed', 0), 0)
    .option('--alpha-sr <a>', 'eda: fraction of words replaced by synonyms (0 = off)', numArg('--alpha-sr', 0, 1), EDA_DEFAULTS.alphaSr)
    .option('--alpha-ri <a>', 'eda: fraction of words inserted (0 = off)', numArg('--alpha-ri', 0, 1), EDA_DEFAULTS.alphaRi)
    .option('--alpha-rs <a>', 'eda: fraction of words swapped (0 = off)', numArg('--alpha-rs', 0, 1), EDA_DEFAULTS.alphaRs)
    .option('--p-rd <p>', 'eda: probability that a word is deleted (0 = off)', numArg('--p-rd', 0, 1), EDA_DEFAULTS.pRd)
    .option('--thesaurus <file>', 'synonyms: JSON {"word": ["synonym", ...]} or TSV word<TAB>synonym<TAB>...')
    .option('--wordnet [dir]', `synonyms from the WordNet database (default ${DEFAULT_WORDNET_DIR}); the default source when no --thesaurus is given`)
    .option('--stop-words <file>', 'stop words never replaced, one per line (default: a built-in English list)')
    .option('--model <dir>', 'paraphrase / back-translation / contextual: a model folder alignkit can load')
    .option('--chat', "--model: wrap each prompt in the model's chat template as a user turn")
    .option('--endpoint <url>', 'paraphrase / back-translation: an OpenAI-compatible server (base URL or .../chat/completions)')
    .option('--endpoint-model <name>', '--endpoint: the model name to request')
    .option('--api-key-env <var>', '--endpoint: environment variable holding the API key (sent as a Bearer token)')
    .option('--system <text>', '--endpoint: a system message sent before each prompt')
    .option('--timeout <s>', '--endpoint: seconds per request', numArg('--timeout', 0.001, 86400), 60)
    .option('--concurrency <n>', '--endpoint: requests in flight at once', intArg('--concurrency', 1), 4)
    .option('--template <t>', 'prompt with {text} (\\n and \\t escapes work); default depends on the method and backend, see docs/data-augment.md')
    .option('--back-template <t>', 'back-translation: the prompt that translates the pivot text back, with {text}')
    .option('--pivot <language>', 'back-translation: the pivot language named in the default templates', 'French')
    .option('--max-new-tokens <n>', 'tokens generated at most per text', intArg('--max-new-tokens', 1), 128)
    .option('--temperature <t>', 'sampling temperature (0 = greedy)', numArg('--temperature', 0, 100), 1)
    .option('--top-k <k>', 'keep the k most likely tokens (0 = off; sent to an endpoint only when > 0)', intArg('--top-k', 0), 0)
    .option('--top-p <p>', 'nucleus sampling mass in (0, 1]', numArg('--top-p', 1e-9, 1), 1)
    .option('--min-p <p>', '--model: drop tokens below p x the top probability', numArg('--min-p', 0, 1), 0)
    .option('--repetition-penalty <r>', '--model: HF repetition penalty (1 = off)', numArg('--repetition-penalty', 1e-9, 100), 1)
    .option('--stop <s>', 'cut each output at this string (\\n escapes work; default: a newline for --model, none for --endpoint)')
    .option('--batch-size <n>', 'rows whose prompts are generated together', intArg('--batch-size', 1), 8)
    .option('--alpha <a>', 'contextual: fraction of words replaced', numArg('--alpha', 0, 1), 0.15)
    .option('--candidates <k>', 'contextual: continuations sampled per word', intArg('--candidates', 1), 8)
    .option('--max-word-tokens <n>', 'contextual: tokens per sampled continuation', intArg('--max-word-tokens', 1), 8)
    .option('--fail-fast', 'stop at the first row the model or endpoint fails on (default: count the failure, report it and go on)');
}

/** Reads a stop-word file: one word per line, '#' comments, blank lines skipped. */
export function loadStopWords(file: string): Set<string> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new PrepError(file, {}, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'stop-word file not found' : (e as Error).message);
  }
  const out = new Set<string>();
  for (const raw of text.split('\n')) {
    const w = raw.trim();
    if (w && !w.startsWith('#')) out.add(wordKey(w).replace(/’/g, "'"));
  }
  return out;
}

const DEFAULT_TEMPLATES = {
  paraphrase: { model: 'Paraphrase: {text}\nParaphrase:', endpoint: 'Paraphrase the following text. Reply with the paraphrase only.\n\n{text}' },
  to: { model: (l: string) => `Translate to ${l}: {text}\n${l}:`, endpoint: (l: string) => `Translate the following text into ${l}. Reply with the translation only.\n\n{text}` },
  back: { model: 'Translate to English: {text}\nEnglish:', endpoint: 'Translate the following text into English. Reply with the translation only.\n\n{text}' },
};

function parseRoles(s: string): ReadonlySet<string> | null {
  const list = s.split(',').map((x) => x.trim().toLowerCase()).filter(Boolean);
  if (list.includes('all')) return null;
  for (const r of list) if (!(ROLES as readonly string[]).includes(r)) throw new PrepConfigError(`--roles: unknown role '${r}' (known: ${ROLES.join(', ')}, all)`);
  if (list.length === 0) throw new PrepConfigError('--roles needs at least one role (or all)');
  return new Set(list);
}

function synonymSource(o: AugmentOpts, closers: (() => void)[]): SynonymSource {
  const sources: SynonymSource[] = [];
  if (o.thesaurus) sources.push(loadThesaurus(o.thesaurus));
  if (o.wordnet !== undefined || !o.thesaurus) {
    const wn = WordNet.open(typeof o.wordnet === 'string' ? o.wordnet : DEFAULT_WORDNET_DIR);
    closers.push(() => wn.close());
    sources.push(wn);
  }
  return new ChainedSynonyms(sources);
}

function buildGenerator(o: AugmentOpts, stop: string[]): TextGenerator {
  if (o.model && o.endpoint) throw new PrepConfigError('give either --model or --endpoint, not both');
  if (o.endpoint) {
    if (o.method === 'contextual') throw new PrepConfigError('--method contextual needs raw continuations from a local causal LM: give --model, not --endpoint');
    if (!o.endpointModel) throw new PrepConfigError('--endpoint needs --endpoint-model NAME');
    let apiKey: string | undefined;
    if (o.apiKeyEnv) {
      apiKey = process.env[o.apiKeyEnv];
      if (!apiKey) throw new PrepConfigError(`--api-key-env: the environment variable ${o.apiKeyEnv} is not set`);
    }
    return new EndpointGenerator({ url: o.endpoint, model: o.endpointModel, apiKey, timeoutMs: Math.round(o.timeout * 1000), maxTokens: o.maxNewTokens, temperature: o.temperature, topP: o.topP, topK: o.topK, stop, concurrency: o.concurrency, system: o.system });
  }
  if (!o.model) throw new PrepConfigError(`--method ${o.method.replace('_', '-')} needs --model DIR${o.method === 'contextual' ? '' : ' or --endpoint URL --endpoint-model NAME'}`);
  const sampling = { temperature: o.temperature, topK: o.topK, topP: o.topP, minP: o.minP, repetitionPenalty: o.repetitionPenalty };
  if (o.method === 'contextual') return LocalModelGenerator.load(o.model, { ...sampling, maxNewTokens: o.maxWordTokens, stop: [], chat: false, trim: false });
  return LocalModelGenerator.load(o.model, { ...sampling, maxNewTokens: o.maxNewTokens, stop, chat: o.chat ?? false, trim: true });
}

/** The body of `alignkit data augment`. */
export async function runAugment(input: string, o: AugmentOpts): Promise<void> {
  const fields = parseFieldList(o.fields);
  const targets: AugmentTargets = { fields, roles: parseRoles(o.roles), idField: o.idField };
  const numAug = o.numAug ?? (o.method === 'eda' ? EDA_DEFAULTS.numAug : 1);
  const inFormat = formatOf(input, o.format);
  const closers: (() => void)[] = [];
  const isModel = o.method !== 'eda';
  if (!isModel && (o.model || o.endpoint)) throw new PrepConfigError(`--method eda does not use a model; choose --method paraphrase, back-translation or contextual`);
  if (isModel && (o.thesaurus || o.wordnet !== undefined)) throw new PrepConfigError(`--thesaurus / --wordnet are for --method eda`);
  const stopWords = o.stopWords ? loadStopWords(o.stopWords) : DEFAULT_STOP_WORDS;
  let summaryParams: Record<string, unknown>;
  let augmentBatch: (batch: { row: Row; line: number }[]) => Promise<RowAugmentation[]>;
  try {
    if (!isModel) {
      const eda: EdaParams = { alphaSr: o.alphaSr, alphaRi: o.alphaRi, alphaRs: o.alphaRs, pRd: o.pRd, numAug };
      if (eda.alphaSr + eda.alphaRi + eda.alphaRs + eda.pRd === 0) throw new PrepConfigError('every EDA operation is off (--alpha-sr, --alpha-ri, --alpha-rs and --p-rd are all 0)');
      const needsSynonyms = eda.alphaSr > 0 || eda.alphaRi > 0;
      const synonyms: SynonymSource = needsSynonyms ? synonymSource(o, closers) : { synonyms: () => [] };
      const eo: EdaAugmentOptions = { targets, numAug, seed: o.seed, idField: o.idField, eda, synonyms, stopWords };
      summaryParams = { alpha_sr: eda.alphaSr, alpha_ri: eda.alphaRi, alpha_rs: eda.alphaRs, p_rd: eda.pRd, synonyms: needsSynonyms ? { thesaurus: o.thesaurus ?? null, wordnet: o.wordnet !== undefined || !o.thesaurus ? (typeof o.wordnet === 'string' ? o.wordnet : DEFAULT_WORDNET_DIR) : null } : null };
      augmentBatch = async (batch) => batch.map(({ row, line }) => edaRow(row, line, eo));
    } else {
      const backend = o.endpoint ? 'endpoint' : 'model';
      const stop = o.stop !== undefined ? [unescapeCli(o.stop)].filter((s) => s !== '') : backend === 'model' ? ['\n'] : [];
      const template = o.template !== undefined ? unescapeCli(o.template) : o.method === 'back_translation' ? DEFAULT_TEMPLATES.to[backend](o.pivot) : DEFAULT_TEMPLATES.paraphrase[backend];
      const backTemplate = o.backTemplate !== undefined ? unescapeCli(o.backTemplate) : DEFAULT_TEMPLATES.back[backend];
      if (o.method !== 'contextual') checkTemplate(template, '--template');
      if (o.method === 'back_translation') checkTemplate(backTemplate, '--back-template');
      const generator = buildGenerator(o, stop);
      closers.push(() => generator.close());
      const mo: ModelAugmentOptions = {
        targets, numAug, seed: o.seed, idField: o.idField, method: o.method as ModelAugmentOptions['method'], generator, template, backTemplate,
        contextual: { alpha: o.alpha, candidates: o.candidates, maxWordTokens: o.maxWordTokens, stopWords },
      };
      summaryParams = o.method === 'contextual' ? { ...generator.describe(), alpha: o.alpha, candidates: o.candidates } : { ...generator.describe(), template, ...(o.method === 'back_translation' ? { back_template: backTemplate } : {}) };
      augmentBatch = (batch) => modelRows(batch, mo);
    }

    const reader = readRows(input, { format: inFormat, skipInvalid: o.skipInvalid, loneSurrogates: o.loneSurrogates, expect: fields ? fields.map((field) => ({ field, type: 'text' as const })) : undefined });
    const where = (line: number) => (inFormat === 'jsonl' || inFormat === 'csv' || inFormat === 'tsv' ? { line } : { row: line });
    const failureError = (line: number, f: AugmentFailure): PrepError => new PrepError(input, { ...where(line), ...(f.field !== null ? { field: f.field } : {}) }, f.error);
    const stats = new AugmentStats();
    const batchSize = isModel ? o.batchSize : 64;
    await withWriter(o.out, {}, async (w) => {
      const flush = async (batch: { row: Row; line: number }[]): Promise<void> => {
        const results = await augmentBatch(batch);
        for (let i = 0; i < batch.length; i++) {
          const { row, line } = batch[i];
          const r = results[i];
          if (o.failFast && r.failures.length) throw failureError(line, r.failures[0]);
          if (o.originals) {
            await w.write(withProvenance(row, line, o.idField, null));
            stats.originals++;
          }
          for (const out of stats.add(r, o.dropUnchanged ?? false, (f) => failureError(line, f).message)) await w.write(out.row);
        }
      };
      let batch: { row: Row; line: number }[] = [];
      for await (const r of reader) {
        batch.push(r);
        if (batch.length >= batchSize) {
          await flush(batch);
          batch = [];
        }
      }
      if (batch.length) await flush(batch);
    });

    const result = {
      input, output: o.out, method: o.method, numAug, seed: o.seed, fields: fields ?? 'layout', roles: o.roles, params: summaryParams,
      rowsIn: stats.rowsIn, originals: stats.originals, augmented: stats.augmented, unchanged: stats.unchanged, droppedUnchanged: stats.droppedUnchanged,
      rowsWithoutText: stats.rowsWithoutText, byKind: Object.fromEntries([...stats.byKind].sort()), failed: stats.failed, failureSamples: stats.failureSamples,
      invalid: { skipped: reader.stats.skipped, samples: reader.stats.samples },
    };
    if (o.json) {
      console.log(JSON.stringify(result));
      return;
    }
    const kinds = [...stats.byKind].sort();
    if (kinds.length) {
      const w = Math.max(9, ...kinds.map(([k]) => k.length));
      console.log(`${'augmentation'.padEnd(w)}  rows`);
      for (const [k, n] of kinds) console.log(`${k.padEnd(w)}  ${String(n).padStart(4)}`);
      console.log('');
    }
    console.log(`${stats.rowsIn} rows in -> ${stats.originals} originals + ${stats.augmented} augmented rows -> ${o.out}`);
    if (stats.unchanged) console.log(`${stats.unchanged} augmentations were identical to their source${stats.droppedUnchanged ? ' (dropped: --drop-unchanged)' : ''}`);
    if (stats.rowsWithoutText) console.log(`${stats.rowsWithoutText} rows had no text to augment`);
    if (stats.failed) {
      console.log(`${stats.failed} augmentations failed, e.g.:`);
      for (const s of stats.failureSamples.slice(0, 5)) console.log(`  ${s}`);
    }
    if (reader.stats.skipped) {
      console.log(`skipped ${reader.stats.skipped} invalid row(s), e.g.:`);
      for (const s of reader.stats.samples.slice(0, 5)) console.log(`  ${s}`);
    }
  } finally {
    for (const c of closers) c();
  }
}
