// `alignkit eval passatk`: runs generated code against its problems' tests in the sandbox and reports the unbiased
// pass@k (src/eval/passatk.ts, src/eval/sandbox.ts). Prints a Markdown table or, with --json, one JSON object
// holding per-problem and per-sample outcomes (what `alignkit eval compare` pairs up). See docs/eval.md.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { evaluatePassAtK, readCompletions, readProblems, SANDBOX_LANGUAGES } from '../../eval/passatk.ts';
import { defaultConcurrency, DEFAULT_LIMITS, type SandboxLanguage } from '../../eval/sandbox.ts';
import { fmt, markdownTable, writeReport } from '../../eval/report.ts';

interface PassAtKCliOptions {
  problems: string;
  completions: string;
  k: number[];
  language: SandboxLanguage;
  timeout: number;
  cpu?: number;
  memoryMb: number;
  maxProcesses: number;
  concurrency: number;
  python?: string;
  node?: string;
  json?: boolean;
  output?: string;
  quiet?: boolean;
}

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer.`);
    return n;
  };
}

function kList(v: string): number[] {
  const ks = v.split(',').map((s) => Number(s.trim()));
  if (ks.length === 0 || ks.some((k) => !Number.isSafeInteger(k) || k < 1)) throw new InvalidArgumentError('-k must be a comma-separated list of positive integers, e.g. 1,10.');
  return ks;
}

async function runPassAtK(o: PassAtKCliOptions): Promise<void> {
  const problems = readProblems(o.problems);
  const completions = readCompletions(o.completions, problems);
  const limits = { ...DEFAULT_LIMITS, timeoutS: o.timeout, cpuS: o.cpu ?? o.timeout, memoryMb: o.memoryMb, maxProcesses: o.maxProcesses };
  const showProgress = !o.json && !o.quiet && process.stderr.isTTY;
  const report = await evaluatePassAtK(problems, completions, {
    ks: o.k,
    language: o.language,
    limits,
    concurrency: o.concurrency,
    python: o.python,
    node: o.node,
    onSample: showProgress ? (d, t) => process.stderr.write(`\r${d}/${t} samples`) : undefined,
  });
  if (showProgress) process.stderr.write('\n');
  for (const n of report.notes) process.stderr.write(`alignkit eval passatk: note: ${n}\n`);
  const json = {
    metric: 'pass@k',
    problems_file: o.problems,
    completions_file: o.completions,
    n_problems: report.problems.length,
    n_samples: report.samples.length,
    ...report.passAtK,
    pass_at_k: report.passAtK,
    skipped_k: report.skippedKs,
    status_counts: report.statusCounts,
    limits: report.limits,
    isolation: report.isolation,
    interpreters: report.interpreters,
    // Per problem, for `alignkit eval compare` (problems are the paired samples).
    per_sample: Object.fromEntries(Object.keys(report.passAtK).map((k) => [k, report.problems.map((p) => p.passAtK[k])])),
    per_problem: report.problems.map((p) => ({ task_id: p.taskId, n: p.n, c: p.c, ...p.passAtK })),
    samples: report.samples.map((s) => ({ task_id: s.taskId, index: s.index, line: s.line, status: s.status, passed: s.passed, exit_code: s.exitCode, signal: s.signal, wall_ms: s.wallMs, stderr_tail: s.stderrTail })),
  };
  const iso = report.isolation;
  const enforced = [iso.resourceLimits && 'rlimits (CPU, memory, processes, file size)', iso.network && 'no network', iso.pidNamespace && 'PID namespace', iso.readOnlyFilesystem && 'read-only filesystem outside the sample directory', Object.values(report.interpreters).some((i) => i?.separateUid) && 'separate uid'].filter(Boolean);
  const md = [
    markdownTable(['metric', 'value'], Object.entries(report.passAtK).map(([k, v]) => [k, v])),
    `\n${report.problems.length} problems, ${report.samples.length} samples: ${Object.entries(report.statusCounts).map(([s, n]) => `${s} ${n}`).join(', ')}\n`,
    `sandbox: ${enforced.join(', ') || 'wall-clock limit only'}; timeout ${fmt(limits.timeoutS)} s, CPU ${fmt(limits.cpuS)} s, memory ${limits.memoryMb} MiB\n`,
  ].join('');
  if (o.output) writeReport(o.output, json, md);
  if (o.json) process.stdout.write(JSON.stringify(json) + '\n');
  else process.stdout.write(md);
}

export function registerEvalPassAtK(ev: Command): void {
  ev.command('passatk')
    .description('pass@k of generated code: each completion runs with its tests in a sandbox (separate process; CPU, wall-time, memory and process limits; no network; read-only filesystem outside a temporary directory where Linux namespaces are available)')
    .requiredOption('--problems <file>', 'JSONL problems: HumanEval {task_id, prompt, test, entry_point} or {task_id, test, program?}; optional language')
    .requiredOption('--completions <file>', 'JSONL {task_id, completion}, several per task')
    .option('-k, --k <list>', 'comma-separated k values (those above some problem\'s sample count are left out)', kList, [1, 10])
    .addOption(new Option('--language <lang>', 'language of problems without a language field').choices([...SANDBOX_LANGUAGES]).default('python'))
    .option('--timeout <seconds>', 'wall-clock limit per sample', positiveInt('--timeout'), DEFAULT_LIMITS.timeoutS)
    .option('--cpu <seconds>', 'CPU-time limit per sample (default: the timeout)', positiveInt('--cpu'))
    .option('--memory-mb <n>', 'memory limit per sample in MiB (RLIMIT_DATA)', positiveInt('--memory-mb'), DEFAULT_LIMITS.memoryMb)
    .option('--max-processes <n>', 'processes/threads per sample (RLIMIT_NPROC)', positiveInt('--max-processes'), DEFAULT_LIMITS.maxProcesses)
    .option('--concurrency <n>', 'samples run at once', positiveInt('--concurrency'), defaultConcurrency())
    .option('--python <cmd>', 'Python interpreter (default python3)')
    .option('--node <cmd>', 'Node interpreter (default: this Node)')
    .option('--quiet', 'no progress line')
    .option('--json', 'print one JSON object instead of a Markdown table')
    .option('--output <file>', 'also write <file>.json and <file>.md (atomically)')
    .action(async (o: PassAtKCliOptions) => {
      try {
        await runPassAtK(o);
      } catch (e) {
        const err = e as Error;
        process.stderr.write(`alignkit eval passatk: ${err.message.replace(/[\r\n]+/g, ' ')}\n`);
        if (process.env.ALIGNKIT_DEBUG) process.stderr.write(`${err.stack}\n`);
        process.exitCode = 1;
      }
    });
}
