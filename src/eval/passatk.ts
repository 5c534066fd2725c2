// pass@k of generated code (Chen et al. 2021, "Evaluating Large Language Models Trained on Code"): every
// completion is run with its problem's tests in the sandbox (src/eval/sandbox.ts); a sample passes when the
// program exits with status 0 within its limits. Per problem with n samples of which c pass, the unbiased
// estimator 1 - C(n-c, k) / C(n, k) (stats.ts passAtK) is averaged over problems.
//
// Problems (JSONL, one per line), two forms:
//   - HumanEval: {task_id, prompt, test, entry_point}: the program is prompt + completion + "\n" + test + "\n"
//     + "check(entry_point)" (human-eval's execution.py; for Node the call ends with ";");
//   - simple: {task_id, test, program?}: the program is (program ?? "") + completion + "\n" + test; the test
//     signals failure by raising / throwing or exiting non-zero.
//   An optional `language` ("python" | "node") overrides --language for that problem.
// Completions (JSONL): {task_id, completion}, any number per task (human-eval's samples format).
import { EvalInputError, readJsonl, stringField } from './io.ts';
import { passAtK } from './stats.ts';
import { checkInterpreter, probeIsolation, resolveInterpreter, runPool, runSandboxed, type InterpreterCheck, type Isolation, type SampleStatus, type SandboxLanguage, type SandboxLimits } from './sandbox.ts';

export const SANDBOX_LANGUAGES: readonly SandboxLanguage[] = ['python', 'node'];

export interface CodeProblem {
  taskId: string;
  /** Text before the completion (HumanEval prompt or the simple form's program). */
  prefix: string;
  test: string;
  entryPoint: string | null;
  language: SandboxLanguage | null;
  line: number;
}

export interface Completion {
  taskId: string;
  completion: string;
  line: number;
}

function optionalString(file: string, line: number, row: Record<string, unknown>, field: string): string | null {
  return field in row && row[field] !== null ? stringField(file, line, row, field) : null;
}

export function readProblems(file: string): CodeProblem[] {
  const seen = new Set<string>();
  const problems = readJsonl(file).map(({ line, value }) => {
    const taskId = stringField(file, line, value, 'task_id');
    if (seen.has(taskId)) throw new EvalInputError(file, line, `task_id '${taskId}' appears twice`);
    seen.add(taskId);
    const test = stringField(file, line, value, 'test');
    const prompt = optionalString(file, line, value, 'prompt');
    const program = optionalString(file, line, value, 'program');
    if (prompt !== null && program !== null) throw new EvalInputError(file, line, "give either 'prompt' (HumanEval form) or 'program' (simple form), not both");
    const entryPoint = optionalString(file, line, value, 'entry_point');
    if (entryPoint !== null && !/^[A-Za-z_$][\w$.]*$/.test(entryPoint)) throw new EvalInputError(file, line, `field 'entry_point' must be an identifier, got '${entryPoint}'`);
    const language = optionalString(file, line, value, 'language');
    if (language !== null && !(SANDBOX_LANGUAGES as readonly string[]).includes(language)) throw new EvalInputError(file, line, `field 'language' must be one of ${SANDBOX_LANGUAGES.join(', ')}, got '${language}'`);
    return { taskId, prefix: prompt ?? program ?? '', test, entryPoint, language: language as SandboxLanguage | null, line };
  });
  if (problems.length === 0) throw new EvalInputError(file, null, 'no problems (the file is empty)');
  return problems;
}

export function readCompletions(file: string, problems: readonly CodeProblem[]): Completion[] {
  const known = new Set(problems.map((p) => p.taskId));
  const completions = readJsonl(file).map(({ line, value }) => {
    const taskId = stringField(file, line, value, 'task_id');
    if (!known.has(taskId)) throw new EvalInputError(file, line, `task_id '${taskId}' is not among the problems`);
    return { taskId, completion: stringField(file, line, value, 'completion'), line };
  });
  if (completions.length === 0) throw new EvalInputError(file, null, 'no completions (the file is empty)');
  const attempted = new Set(completions.map((c) => c.taskId));
  const missing = problems.filter((p) => !attempted.has(p.taskId));
  if (missing.length > 0) throw new EvalInputError(file, null, `no completions for ${missing.length} problem(s): ${missing.slice(0, 5).map((p) => p.taskId).join(', ')}${missing.length > 5 ? ', ...' : ''}`);
  return completions;
}

/** The program run for one sample. */
export function buildProgram(problem: CodeProblem, completion: string, language: SandboxLanguage): string {
  let src = `${problem.prefix}${completion}\n${problem.test}\n`;
  if (problem.entryPoint !== null) src += language === 'node' ? `check(${problem.entryPoint});\n` : `check(${problem.entryPoint})\n`;
  return src;
}

export interface SampleOutcome {
  taskId: string;
  /** Index among the task's completions, in file order. */
  index: number;
  /** Line of the completion in its file. */
  line: number;
  status: SampleStatus;
  passed: boolean;
  exitCode: number | null;
  signal: string | null;
  wallMs: number;
  /** The last part of stderr (for failures). */
  stderrTail: string;
}

export interface ProblemPassAtK {
  taskId: string;
  n: number;
  c: number;
  passAtK: Record<string, number>;
}

export interface PassAtKReport {
  ks: number[];
  /** Mean pass@k over problems, for every k that is at most every problem's n. */
  passAtK: Record<string, number>;
  /** ks left out because some problem has fewer samples (as human-eval does). */
  skippedKs: number[];
  problems: ProblemPassAtK[];
  samples: SampleOutcome[];
  statusCounts: Partial<Record<SampleStatus, number>>;
  limits: SandboxLimits;
  isolation: Isolation;
  interpreters: Partial<Record<SandboxLanguage, { path: string } & InterpreterCheck>>;
  notes: string[];
}

export interface PassAtKOptions {
  ks: readonly number[];
  language: SandboxLanguage;
  limits: SandboxLimits;
  concurrency: number;
  /** Interpreter commands (default python3 / this Node). */
  python?: string;
  node?: string;
  /** Called after each finished sample (progress). */
  onSample?: (done: number, total: number) => void;
}

export async function evaluatePassAtK(problems: readonly CodeProblem[], completions: readonly Completion[], o: PassAtKOptions): Promise<PassAtKReport> {
  if (o.ks.length === 0 || o.ks.some((k) => !Number.isInteger(k) || k < 1)) throw new RangeError(`k must be positive integers, got ${o.ks.join(',')}`);
  const isolation = probeIsolation();
  const notes = [...isolation.notes];
  const byId = new Map(problems.map((p) => [p.taskId, p]));
  const languages = new Set(problems.map((p) => p.language ?? o.language));
  const interpreters: PassAtKReport['interpreters'] = {};
  for (const lang of languages) {
    const path = resolveInterpreter(lang, lang === 'python' ? o.python : o.node);
    const check = await checkInterpreter(lang, path, o.limits);
    interpreters[lang] = { path, ...check };
    notes.push(...check.notes);
  }
  const indexInTask = new Map<string, number>();
  const jobs = completions.map((c) => {
    const i = indexInTask.get(c.taskId) ?? 0;
    indexInTask.set(c.taskId, i + 1);
    return { c, index: i };
  });
  let done = 0;
  const samples = await runPool(jobs, o.concurrency, async ({ c, index }, slot) => {
    const problem = byId.get(c.taskId)!;
    const language = problem.language ?? o.language;
    const interp = interpreters[language]!;
    const r = await runSandboxed(buildProgram(problem, c.completion, language), { language, interpreter: interp.path, limits: o.limits, slot, separateUid: interp.separateUid });
    o.onSample?.(++done, jobs.length);
    const outcome: SampleOutcome = { taskId: c.taskId, index, line: c.line, status: r.status, passed: r.status === 'passed', exitCode: r.exitCode, signal: r.signal, wallMs: r.wallMs, stderrTail: r.stderr.slice(-500) };
    return outcome;
  });
  const perProblem: ProblemPassAtK[] = problems.map((p) => {
    const mine = samples.filter((s) => s.taskId === p.taskId);
    return { taskId: p.taskId, n: mine.length, c: mine.filter((s) => s.passed).length, passAtK: {} };
  });
  const ks = [...new Set(o.ks)].sort((a, b) => a - b);
  const minN = Math.min(...perProblem.map((p) => p.n));
  const usable = ks.filter((k) => k <= minN);
  const skippedKs = ks.filter((k) => k > minN);
  if (skippedKs.length > 0) notes.push(`pass@${skippedKs.join(', pass@')} left out: a problem has only ${minN} sample(s)`);
  const mean: Record<string, number> = {};
  for (const k of usable) {
    for (const p of perProblem) p.passAtK[`pass@${k}`] = passAtK(p.n, p.c, k);
    mean[`pass@${k}`] = perProblem.reduce((s, p) => s + p.passAtK[`pass@${k}`], 0) / perProblem.length;
  }
  const statusCounts: PassAtKReport['statusCounts'] = {};
  for (const s of samples) statusCounts[s.status] = (statusCounts[s.status] ?? 0) + 1;
  return { ks: usable, passAtK: mean, skippedKs, problems: perProblem, samples, statusCounts, limits: o.limits, isolation, interpreters, notes };
}
