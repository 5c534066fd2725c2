// `alignkit studio`: the annotation studio and runs dashboard (a local web server), and its offline helpers:
// users and tokens, projects, imports, agreement and exports straight on the database. See docs/studio.md.
import fs from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { writeAtomically } from '../../io/file.ts';
import { AlignkitError } from '../../tensor/errors.ts';
import { computeAgreement } from '../../studio/agreement.ts';
import { createUser, listUsers, rotateToken, ROLES, type Role } from '../../studio/auth.ts';
import { openStudioDb, type StudioDb } from '../../studio/db.ts';
import { StudioError } from '../../studio/errors.ts';
import { ExportError, exportProject, toJsonl, type ExportFormat } from '../../studio/export.ts';
import type { TaskType } from '../../studio/importer.ts';
import { generateCandidates, readPromptFile } from '../../studio/generate.ts';
import { LOOPBACK_HOSTS, startStudio } from '../../studio/server.ts';
import { StudioStore } from '../../studio/store.ts';

interface GlobalOpts {
  db: string;
  json?: boolean;
  seed?: number;
}

function intArg(name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}.`);
    return n;
  };
}
function numArg(name: string, lo: number, hi: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < lo || n > hi) throw new InvalidArgumentError(`${name} must be a number in [${lo}, ${hi}].`);
    return n;
  };
}
function choice<T extends string>(name: string, options: readonly T[]) {
  return (v: string): T => {
    if (!(options as readonly string[]).includes(v)) throw new InvalidArgumentError(`${name} must be one of ${options.join(', ')}.`);
    return v as T;
  };
}

/** Runs fn on the database named by --db, closing it afterwards; studio errors become one-line CLI errors. */
function withStore<T>(g: GlobalOpts, fn: (store: StudioStore, db: StudioDb) => T): T {
  const db = openStudioDb(g.db);
  try {
    return fn(new StudioStore(db), db);
  } catch (e) {
    if (e instanceof StudioError || e instanceof ExportError) throw new AlignkitError(`${g.db}: ${e.message}`);
    throw e;
  } finally {
    db.close();
  }
}

const globals = (cmd: Command): GlobalOpts => cmd.optsWithGlobals() as GlobalOpts;
const print = (g: GlobalOpts, json: unknown, text: string) => console.log(g.json ? JSON.stringify(json) : text);

export function registerStudio(program: Command): void {
  const studio = program
    .command('studio')
    .description('the annotation studio: a local web server (default http://127.0.0.1:7860) for pairwise preferences, Likert ratings and edits, with double annotation, gold audits, adjudication, agreement (Cohen/Fleiss κ, Krippendorff α), DPO/KTO/SFT export, and a live dashboard of training runs')
    .option('--db <file>', 'the SQLite database (created if missing)', 'studio.sqlite')
    .option('--port <n>', 'port to listen on (0 = any free port)', intArg('--port', 0, 65535), 7860)
    .option('--host <address>', 'address to bind; anything but loopback exposes the studio to the network', '127.0.0.1')
    .option('--runs <dir>', 'folder whose run folders (with metrics.jsonl) the runs dashboard lists', '.')
    .option('--body-limit <bytes>', 'largest accepted request body (imports included)', intArg('--body-limit', 1024), 8 * 1024 * 1024)
    .option('--seed <n>', 'server: seed of the left/right order and gold draws (default: random); generate: seed of the sampling streams (default 0)', intArg('--seed', 0))
    .option('--json', 'print one JSON object (for the server: its address once listening; for subcommands: their result)')
    .configureHelp({ showGlobalOptions: true })
    .action(async (o: GlobalOpts & { port: number; host: string; runs: string; bodyLimit: number; seed?: number }) => {
      if (!LOOPBACK_HOSTS.includes(o.host)) console.error(`alignkit studio: warning: binding ${o.host}: the studio is reachable from other machines; every API call still needs a token, but traffic is not encrypted`);
      const running = await startStudio({ dbFile: o.db, port: o.port, host: o.host, runsDir: o.runs, bodyLimit: o.bodyLimit, seed: o.seed });
      const users = listUsers(running.store.db).length;
      if (o.json) console.log(JSON.stringify({ url: running.url, port: running.port, host: running.host, db: o.db, users }));
      else {
        console.log(`alignkit studio listening on ${running.url} (database ${o.db}, runs in ${o.runs})`);
        if (users === 0) console.log(`no users yet: create an admin with  alignkit studio user add <name> --role admin --db ${o.db}`);
      }
      await new Promise<void>((resolve) => {
        const stop = () => void running.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });

  const user = studio.command('user').description('studio accounts and their tokens').configureHelp({ showGlobalOptions: true });
  user
    .command('add <name>')
    .description('create a user and print their token (shown this once; only its SHA-256 is stored)')
    .requiredOption('--role <role>', `one of ${ROLES.join(', ')}`, choice('--role', ROLES))
    .action(function (this: Command, name: string, o: { role: Role }) {
      const g = globals(this);
      const { user: u, token } = withStore(g, (_s, db) => {
        try {
          return createUser(db, name, o.role);
        } catch (e) {
          throw new AlignkitError(`${g.db}: ${e instanceof Error ? e.message : String(e)}`);
        }
      });
      print(g, { user: u, token }, `created ${u.role} '${u.name}' (id ${u.id}). Token (shown once, keep it secret):\n${token}`);
    });
  user
    .command('list')
    .description('list users (never tokens)')
    .action(function (this: Command) {
      const g = globals(this);
      const users = withStore(g, (_s, db) => listUsers(db));
      print(g, { users }, users.map((u) => `${String(u.id).padStart(4)}  ${u.role.padEnd(9)}  ${u.name}`).join('\n') || 'no users');
    });
  user
    .command('token <name>')
    .description("replace a user's token (the old one stops working) and print the new one")
    .action(function (this: Command, name: string) {
      const g = globals(this);
      const token = withStore(g, (_s, db) => {
        const u = listUsers(db).find((x) => x.name === name);
        if (!u) throw new AlignkitError(`${g.db}: no user named '${name}'`);
        return rotateToken(db, u.id);
      });
      print(g, { name, token }, `new token for '${name}' (shown once):\n${token}`);
    });

  studio
    .command('project <name>')
    .description('create a project')
    .requiredOption('--task <type>', 'pairwise (A/B with ties and strength), likert (ratings per criterion) or edit (rewrite a response, for SFT)', choice('--task', ['pairwise', 'likert', 'edit'] as const))
    .option('--k <n>', 'annotators per item (double annotation: 2)', intArg('--k', 1, 20), 2)
    .option('--criteria <list>', 'Likert criteria, comma-separated (default helpfulness,harmlessness,honesty)')
    .option('--likert-max <n>', 'Likert scale 1..n', intArg('--likert-max', 2, 10), 5)
    .option('--gold-rate <p>', 'chance that an annotator is served an unseen gold (audit) item next', numArg('--gold-rate', 0, 1), 0.1)
    .option('--guidelines <file.md>', 'annotation guidelines in Markdown')
    .configureHelp({ showGlobalOptions: true })
    .action(function (this: Command, name: string, o: { task: TaskType; k: number; criteria?: string; likertMax: number; goldRate: number; guidelines?: string }) {
      const g = globals(this);
      let guidelines = '';
      if (o.guidelines) {
        try {
          guidelines = fs.readFileSync(o.guidelines, 'utf8');
        } catch (e) {
          throw new AlignkitError(`${o.guidelines}: cannot read the guidelines: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
      const criteria = o.criteria?.split(',').map((s) => s.trim()).filter((s) => s !== '');
      const p = withStore(g, (s) => s.createProject({ name, taskType: o.task, annotationsPerItem: o.k, criteria, likertMax: o.likertMax, goldRate: o.goldRate, guidelines }));
      print(g, { project: p }, `created ${p.taskType} project '${p.name}' (id ${p.id}, ${p.annotationsPerItem} annotators per item)`);
    });

  studio
    .command('import <project> <file>')
    .description('import prompts with candidate responses from JSON Lines ({"prompt", "responses": [...], "id"?, "gold"?} per line) in one transaction')
    .option('--on-error <mode>', 'bad lines: reject (import nothing) or skip (import the rest)', choice('--on-error', ['reject', 'skip'] as const), 'reject')
    .configureHelp({ showGlobalOptions: true })
    .action(function (this: Command, project: string, file: string, o: { onError: 'reject' | 'skip' }) {
      const g = globals(this);
      let text: string;
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch (e) {
        throw new AlignkitError(`${file}: cannot read: ${e instanceof Error ? e.message : String(e)}`);
      }
      const r = withStore(g, (s) => s.importJsonl(s.projectByName(project).id, text, o.onError));
      const issues = r.issues.map((i) => `${file}:${i.line}: ${i.field === null ? '' : `field '${i.field}': `}${i.message}`);
      if (g.json) console.log(JSON.stringify({ ...r, file }));
      else {
        for (const line of issues) console.error(line);
        console.log(r.rejected ? `rejected ${file}: ${r.issues.length} bad line(s), nothing imported (use --on-error skip to import the rest)` : `imported ${r.prompts} prompt(s) as ${r.items} item(s) from ${file}${r.issues.length ? `; skipped ${r.issues.length} bad line(s)` : ''}`);
      }
      if (r.rejected) process.exitCode = 1;
    });

  studio
    .command('generate <project>')
    .description('generate candidate responses on the spot with one or two local models (--model, --model-b) and import them into the project in one transaction')
    .requiredOption('--prompts <file>', 'prompts: .txt (one per line) or JSONL with a prompt field (and optional id)')
    .requiredOption('--model <dir>', 'a model folder')
    .option('--model-b <dir>', 'a second model folder: every prompt gets --n responses from each model')
    .option('--n <n>', 'responses per prompt from each model', intArg('--n', 1, 16), 2)
    .option('--max-new-tokens <n>', 'tokens to generate per response', intArg('--max-new-tokens', 1), 64)
    .option('--temperature <t>', 'sampling temperature (0 = greedy)', numArg('--temperature', 0, 100), 1)
    .option('--top-k <k>', 'top-k filtering (0 = off)', intArg('--top-k', 0), 0)
    .option('--top-p <p>', 'nucleus filtering (1 = off)', numArg('--top-p', 0, 1), 1)
    .configureHelp({ showGlobalOptions: true })
    .action(function (this: Command, project: string, o: { prompts: string; model: string; modelB?: string; n: number; maxNewTokens: number; temperature: number; topK: number; topP: number }) {
      const g = globals(this);
      const prompts = readPromptFile(o.prompts);
      const r = withStore(g, (s) =>
        generateCandidates(s, s.projectByName(project).id, prompts, {
          models: o.modelB ? [o.model, o.modelB] : [o.model],
          perModel: o.n,
          sampling: { maxNewTokens: o.maxNewTokens, temperature: o.temperature, topK: o.topK, topP: o.topP, seed: g.seed ?? 0 },
        }),
      );
      if (r.rejected) throw new AlignkitError(`${o.prompts}: ${r.issues.map((i) => `prompt ${i.line}: ${i.field ? `field '${i.field}': ` : ''}${i.message}`).join('; ')}`);
      print(g, r, `generated and imported ${r.prompts} prompt(s) as ${r.items} item(s)`);
    });

  studio
    .command('agreement <project>')
    .description("inter-annotator agreement (Cohen's and Fleiss' κ, Krippendorff's α) and per-annotator quality (agreement with the majority and with gold, position bias, time per item)")
    .configureHelp({ showGlobalOptions: true })
    .action(function (this: Command, project: string) {
      const g = globals(this);
      const report = withStore(g, (s) => {
        const p = s.projectByName(project);
        return computeAgreement(p, s.projectItems(p.id), s.disagreements(p.id).length);
      });
      if (g.json) return console.log(JSON.stringify(report));
      const f = (x: number | null) => (x === null ? 'n/a' : x.toFixed(3));
      const lines: string[] = [`project '${project}' (${report.taskType}): ${report.annotations} annotations, ${report.disagreements} open disagreement(s)`];
      const blocks = report.overall ? [{ name: 'choice', ...report.overall }] : report.criteria.map((c) => ({ name: c.criterion, ...c }));
      for (const b of blocks) lines.push(`  ${b.name}: Cohen κ ${f(b.cohenKappa)}, Fleiss κ ${f(b.fleissKappa)} (${b.fleissItems} items), Krippendorff α ${f(b.krippendorffAlpha)}, agreement ${f(b.percentAgreement)} over ${b.items} items`);
      for (const a of report.annotators) {
        const bias = a.positionBias ? `, left chosen ${f(a.positionBias.leftRate)} (p ${f(a.positionBias.pValue)})` : '';
        lines.push(`  ${a.name}: ${a.annotations} annotations, majority ${f(a.majority.rate)} (${a.majority.total}), gold ${f(a.gold.rate)} (${a.gold.total})${bias}, median ${f(a.medianSeconds)} s`);
      }
      console.log(lines.join('\n'));
    });

  studio
    .command('export <project>')
    .description('write training data: dpo ({prompt, chosen, rejected}, for reward/DPO/ORPO/SimPO), kto ({prompt, completion, label} from ratings) or sft ({prompt, completion} from edits)')
    .requiredOption('--format <fmt>', 'dpo, kto or sft', choice('--format', ['dpo', 'kto', 'sft'] as const))
    .requiredOption('--out <file>', 'output JSONL (written atomically)')
    .option('--ties <policy>', 'dpo: a and b with equal votes: skip, or strength (larger summed strength wins)', choice('--ties', ['skip', 'strength'] as const), 'skip')
    .option('--min-agreement <p>', 'dpo: least share of votes for the winner (0..1)', numArg('--min-agreement', 0, 1), 0)
    .option('--require-adjudication', 'dpo: leave out non-unanimous items nobody adjudicated')
    .option('--no-gold', 'leave out gold (audit) items')
    .option('--margins', 'dpo: add a margin (mean strength of the winning votes) for reward modelling')
    .option('--criterion <name>', 'kto: score by this criterion (default: the mean of all)')
    .option('--threshold <x>', 'kto: scores above are desirable, below undesirable (default: the scale midpoint)', numArg('--threshold', -1e9, 1e9))
    .configureHelp({ showGlobalOptions: true })
    .action(function (this: Command, project: string, o: { format: ExportFormat; out: string; ties: 'skip' | 'strength'; minAgreement: number; requireAdjudication?: boolean; gold: boolean; margins?: boolean; criterion?: string; threshold?: number }) {
      const g = globals(this);
      const result = withStore(g, (s) => {
        const p = s.projectByName(project);
        return exportProject(p, s.projectItems(p.id), o.format, { ties: o.ties, minAgreement: o.minAgreement, requireAdjudication: o.requireAdjudication, includeGold: o.gold, margins: o.margins, criterion: o.criterion, threshold: o.threshold });
      });
      writeAtomically('jsonl', o.out, (f) => f.write(new TextEncoder().encode(toJsonl(result.rows))));
      const skipped = Object.entries(result.skipped).map(([k, v]) => `${v} ${k}`).join(', ');
      print(g, { out: o.out, format: o.format, rows: result.rows.length, skipped: result.skipped }, `wrote ${result.rows.length} ${o.format} row(s) to ${o.out}${skipped ? ` (left out: ${skipped})` : ''}`);
    });
}
