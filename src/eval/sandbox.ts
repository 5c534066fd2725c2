// Running untrusted programs (model-written code for pass@k) in a separate, limited process.
//
// Each program runs in a fresh temporary directory (deleted afterwards) with a scrubbed environment, under
//   - resource limits set with util-linux `prlimit`: CPU seconds (RLIMIT_CPU), memory (RLIMIT_DATA: heap and
//     private writable mappings, which unlike RLIMIT_AS leaves V8's large address-space reservations alone, so
//     Node starts), processes (RLIMIT_NPROC, against fork bombs), file size (RLIMIT_FSIZE), open files and no
//     core dumps;
//   - a wall-clock limit enforced here: on expiry the whole process group gets SIGKILL;
//   - Linux namespaces through util-linux `unshare` where they can be created: a new network namespace (only a
//     downed loopback, so no connection leaves it, not even to a port on this machine), a PID namespace (when its
//     first process exits or is killed, the kernel kills every process in it, so nothing outlives the sample,
//     whatever it does to its process group), and a mount namespace in which every mount is remounted read-only
//     except the sample's own directory (so a write anywhere else fails with EROFS, also as root);
//   - as root, the program additionally runs under a separate unprivileged uid (one per concurrent slot, so
//     RLIMIT_NPROC counts only that sample's processes) with no_new_privs; without root, the namespaces are made
//     inside a user namespace (`unshare -r`), and RLIMIT_NPROC is set above the processes the user already runs.
// What could be enforced is probed once per process (`probeIsolation`) and reported with every result; missing
// tools or kernels without namespaces degrade to fewer guarantees, never to a silent pass.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';

export type SandboxLanguage = 'python' | 'node';

export interface SandboxLimits {
  /** Wall-clock seconds before the process group is killed. */
  timeoutS: number;
  /** CPU seconds (RLIMIT_CPU). */
  cpuS: number;
  /** Memory in MiB (RLIMIT_DATA). */
  memoryMb: number;
  /** Processes and threads of the sample (RLIMIT_NPROC; Node itself needs about a dozen threads). */
  maxProcesses: number;
  /** Largest file the sample may write, in MiB (RLIMIT_FSIZE). */
  maxFileMb: number;
  /** Bytes of stdout and of stderr kept; the rest is counted and dropped. */
  maxOutputBytes: number;
}

export const DEFAULT_LIMITS: SandboxLimits = { timeoutS: 10, cpuS: 10, memoryMb: 1024, maxProcesses: 64, maxFileMb: 16, maxOutputBytes: 16384 };

/** What the sandbox enforces on this machine (probed once). */
export interface Isolation {
  /** prlimit sets CPU, memory, process, file-size limits. */
  resourceLimits: boolean;
  /** A network namespace: no network. */
  network: boolean;
  /** A PID namespace: all processes of a sample die with it. */
  pidNamespace: boolean;
  /** Read-only mounts except the sample directory. */
  readOnlyFilesystem: boolean;
  /** Running under a separate unprivileged uid (only when started as root). */
  separateUid: boolean;
  /** `unshare -r`: namespaces made inside a user namespace (not root). */
  userNamespace: boolean;
  /** What is missing, for the user. */
  notes: string[];
}

export type SampleStatus = 'passed' | 'failed' | 'timeout' | 'cpu_limit' | 'killed' | 'error';

export interface SandboxResult {
  status: SampleStatus;
  exitCode: number | null;
  /** Signal that ended the program, when it was one. */
  signal: string | null;
  stdout: string;
  stderr: string;
  /** Output bytes dropped beyond maxOutputBytes (stdout + stderr). */
  droppedBytes: number;
  wallMs: number;
}

const SANDBOX_UID_BASE = 61000;
const SAFE_PATH = '/usr/local/bin:/usr/bin:/bin';

function commandWorks(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore', timeout: 20_000 });
  return r.status === 0;
}

/** The shell run as the first process of the namespaces: remounts read-only, then runs the program as its child. */
const NAMESPACE_SCRIPT = [
  'set -e',
  'work="$1"; shift',
  'if [ "$ALIGNKIT_SANDBOX_RO" = 1 ]; then',
  '  mount --make-rprivate /',
  // Deepest mounts last does not matter for remounting flags; every mount point gets MS_RDONLY on its bind.
  '  awk \'{print $2}\' /proc/self/mounts | sort -u | while read -r mp; do mount -o remount,bind,ro "$mp" 2>/dev/null || true; done',
  '  mount --bind "$work" "$work"',
  '  mount -o remount,bind,rw "$work"',
  'fi',
  'unset ALIGNKIT_SANDBOX_RO',
  'cd "$work"',
  // Not exec: this shell stays the namespace's init, so the program is an ordinary process (init ignores signals
  // it has no handler for, which would defeat RLIMIT_CPU's SIGXCPU), and its exit status is passed on.
  'set +e',
  '"$@"',
  'exit $?',
].join('\n');

let cachedIsolation: Isolation | null = null;

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Namespace flags that work here, probed by running `true` through them. */
export function probeIsolation(): Isolation {
  if (cachedIsolation) return cachedIsolation;
  const notes: string[] = [];
  const root = isRoot();
  const iso: Isolation = { resourceLimits: false, network: false, pidNamespace: false, readOnlyFilesystem: false, separateUid: false, userNamespace: false, notes };
  if (process.platform !== 'linux') {
    notes.push(`platform ${process.platform}: no namespaces or rlimits; only the wall-clock limit, a temporary directory and a scrubbed environment apply`);
    return (cachedIsolation = iso);
  }
  iso.resourceLimits = commandWorks('prlimit', ['--cpu=5', '--', 'true']);
  if (!iso.resourceLimits) notes.push('prlimit (util-linux) not usable: no CPU, memory or process limits, only the wall-clock limit');
  const userNs = root ? [] : ['-r'];
  const probeDir = mkdtempSync(join(tmpdir(), 'alignkit-sbx-probe-'));
  try {
    const full = ['unshare', ...userNs, '-m', '-n', '-p', '--fork', '--kill-child', '--mount-proc', '--', '/bin/sh', '-c', NAMESPACE_SCRIPT, 'sandbox', probeDir, 'true'];
    const r = spawnSync(full[0], full.slice(1), { stdio: 'ignore', timeout: 20_000, env: { PATH: SAFE_PATH, ALIGNKIT_SANDBOX_RO: '1' } });
    if (r.status === 0) {
      Object.assign(iso, { network: true, pidNamespace: true, readOnlyFilesystem: true, userNamespace: !root });
    } else if (commandWorks('unshare', [...userNs, '-n', '--', 'true'])) {
      iso.network = true;
      iso.userNamespace = !root;
      notes.push('mount/PID namespaces unavailable: writes outside the sample directory are not blocked by read-only mounts');
    } else {
      notes.push('unshare (util-linux) cannot create namespaces here: the sample has network access and a writable filesystem');
    }
  } finally {
    rmSync(probeDir, { recursive: true, force: true });
  }
  if (root) {
    iso.separateUid = commandWorks('setpriv', [`--reuid=${SANDBOX_UID_BASE}`, `--regid=${SANDBOX_UID_BASE}`, '--clear-groups', '--no-new-privs', '--', 'true']);
    if (!iso.separateUid) notes.push('running as root without setpriv: samples run as root');
  }
  return (cachedIsolation = iso);
}

/** Processes the current user already runs (RLIMIT_NPROC counts them too when no separate uid is used). */
function processesOfCurrentUser(): number {
  const uid = process.getuid?.() ?? -1;
  let n = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (statSync(`/proc/${name}`).uid === uid) n++;
    } catch {
      // exited meanwhile
    }
  }
  return n;
}

/** Resolves an interpreter to an absolute executable (a pyenv shim, for one, needs variables the sandbox scrubs). */
export function resolveInterpreter(language: SandboxLanguage, explicit?: string): string {
  if (language === 'node') return explicit ?? process.execPath;
  const cmd = explicit ?? 'python3';
  const r = spawnSync(cmd, ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0 || !r.stdout.trim()) throw new Error(`cannot run the Python interpreter '${cmd}' (${r.error?.message ?? r.stderr.trim() ?? 'exit ' + r.status})`);
  return r.stdout.trim();
}

export interface RunOptions {
  language: SandboxLanguage;
  /** Absolute interpreter path (see resolveInterpreter). */
  interpreter: string;
  limits?: Partial<SandboxLimits>;
  /** Concurrency slot: selects the uid when running as root. */
  slot?: number;
  /** false: stay root even where a separate uid is possible (see checkInterpreter). */
  separateUid?: boolean;
}

function signalOf(code: number | null, signal: NodeJS.Signals | null): string | null {
  if (signal) return signal;
  // The namespace's shell reports a program killed by signal n as exit status 128 + n.
  if (code !== null && code > 128 && code < 128 + 65) {
    const names: Record<number, string> = { 6: 'SIGABRT', 9: 'SIGKILL', 11: 'SIGSEGV', 24: 'SIGXCPU', 25: 'SIGXFSZ' };
    return names[code - 128] ?? `signal ${code - 128}`;
  }
  return null;
}

/** Runs one program text; never throws for anything the program does. */
export async function runSandboxed(source: string, opts: RunOptions): Promise<SandboxResult> {
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const iso = probeIsolation();
  const root = isRoot();
  const slot = opts.slot ?? 0;
  const uid = SANDBOX_UID_BASE + slot;
  const work = mkdtempSync(join(tmpdir(), 'alignkit-sbx-'));
  const file = join(work, opts.language === 'python' ? 'main.py' : 'main.js');
  writeFileSync(file, source);
  const separateUid = root && iso.separateUid && opts.separateUid !== false;
  if (separateUid) {
    chownSync(work, uid, uid);
    chownSync(file, uid, uid);
  }
  chmodSync(work, 0o700);

  // setpriv comes last, right before the interpreter: it switches uid and executes the program; prlimit sets the
  // limits first (they are inherited across the uid switch).
  let program = [opts.interpreter, file];
  if (separateUid) program = ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--no-new-privs', '--', ...program];
  else if (process.platform === 'linux' && commandWorksCached('setpriv')) program = ['setpriv', '--no-new-privs', '--', ...program];
  if (iso.resourceLimits) {
    const nproc = separateUid ? limits.maxProcesses : limits.maxProcesses + processesOfCurrentUser();
    const mem = limits.memoryMb * 1024 * 1024;
    program = ['prlimit', `--cpu=${limits.cpuS}:${limits.cpuS + 1}`, `--data=${mem}:${mem}`, `--nproc=${nproc}:${nproc}`, `--fsize=${limits.maxFileMb * 1024 * 1024}`, '--nofile=256', '--core=0', '--', ...program];
  }

  const env: Record<string, string> = { PATH: SAFE_PATH, HOME: work, TMPDIR: work, LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', PYTHONDONTWRITEBYTECODE: '1', PYTHONHASHSEED: '0', PYTHONNOUSERSITE: '1' };
  let argv: string[];
  if (iso.pidNamespace) {
    argv = ['unshare', ...(iso.userNamespace ? ['-r'] : []), '-m', '-n', '-p', '--fork', '--kill-child', '--mount-proc', '--', '/bin/sh', '-c', NAMESPACE_SCRIPT, 'sandbox', work, ...program];
    env.ALIGNKIT_SANDBOX_RO = '1';
  } else if (iso.network) {
    argv = ['unshare', ...(iso.userNamespace ? ['-r'] : []), '-n', '--', ...program];
  } else argv = program;

  const started = Date.now();
  try {
    return await new Promise<SandboxResult>((resolve) => {
      const child = spawn(argv[0], argv.slice(1), { cwd: work, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      const out = { stdout: [] as Buffer[], stderr: [] as Buffer[], kept: { stdout: 0, stderr: 0 }, dropped: 0 };
      const keep = (which: 'stdout' | 'stderr') => (chunk: Buffer) => {
        const room = limits.maxOutputBytes - out.kept[which];
        if (room > 0) {
          out[which].push(chunk.subarray(0, room));
          out.kept[which] += Math.min(room, chunk.length);
        }
        out.dropped += Math.max(0, chunk.length - Math.max(room, 0));
      };
      child.stdout.on('data', keep('stdout'));
      child.stderr.on('data', keep('stderr'));
      let timedOut = false;
      const killGroup = () => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      };
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup();
      }, limits.timeoutS * 1000);
      let settled = false;
      let exitTimer: NodeJS.Timeout | undefined;
      const finish = (r: Omit<SandboxResult, 'stdout' | 'stderr' | 'droppedBytes' | 'wallMs'>) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearTimeout(exitTimer);
        killGroup(); // leftovers of a sample without a PID namespace
        resolve({ ...r, stdout: Buffer.concat(out.stdout).toString('utf8'), stderr: Buffer.concat(out.stderr).toString('utf8'), droppedBytes: out.dropped, wallMs: Date.now() - started });
      };
      child.on('error', (e) => {
        out.stderr.push(Buffer.from(`cannot start the sandbox: ${e.message}`));
        finish({ status: 'error', exitCode: null, signal: null });
      });
      const decide = (code: number | null, sig: NodeJS.Signals | null) => {
        const signal = signalOf(code, sig);
        let status: SampleStatus;
        if (timedOut) status = 'timeout';
        else if (code === 0) status = 'passed';
        else if (signal === 'SIGXCPU') status = 'cpu_limit';
        else if (signal) status = 'killed';
        else status = 'failed';
        finish({ status, exitCode: code, signal });
      };
      child.on('close', decide);
      // 'close' waits for the output pipes; a process that escaped the group (possible only without a PID
      // namespace) could hold them open forever. Shortly after the sample's own process exits, stop waiting.
      child.on('exit', (code, sig) => {
        exitTimer = setTimeout(() => {
          child.stdout.destroy();
          child.stderr.destroy();
          decide(code, sig);
        }, 1000);
      });
    });
  } finally {
    removeTree(work);
  }
}

const commandCache = new Map<string, boolean>();
function commandWorksCached(cmd: string): boolean {
  let ok = commandCache.get(cmd);
  if (ok === undefined) commandCache.set(cmd, (ok = commandWorks(cmd, cmd === 'setpriv' ? ['--no-new-privs', '--', 'true'] : ['--version'])));
  return ok;
}

/** Deletes a sample directory even if the program removed its own permissions on parts of it. */
function removeTree(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    spawnSync('chmod', ['-R', 'u+rwx', dir], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs tasks with at most `concurrency` at a time; each gets a slot number in [0, concurrency). */
export async function runPool<T, R>(items: readonly T[], concurrency: number, fn: (item: T, slot: number, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, async (_, slot) => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], slot, i);
    }
  });
  await Promise.all(workers);
  return results;
}

export function defaultConcurrency(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

/** How samples of one interpreter are run: whether the separate uid works for it (it must reach the interpreter). */
export interface InterpreterCheck {
  separateUid: boolean;
  notes: string[];
}

/**
 * Runs a trivial program through the sandbox. Under the separate uid first (as root); if the interpreter is not
 * reachable by that uid (installed under /root, say), samples run as root with the other measures, and a note
 * says so. An interpreter that does not run at all is an error: every sample would fail for the wrong reason.
 */
export async function checkInterpreter(language: SandboxLanguage, interpreter: string, limits?: Partial<SandboxLimits>): Promise<InterpreterCheck> {
  const hello = language === 'python' ? 'print("sandbox-ok")' : 'console.log("sandbox-ok")';
  const iso = probeIsolation();
  const first = await runSandboxed(hello, { language, interpreter, limits });
  if (first.status === 'passed' && first.stdout.trim() === 'sandbox-ok') return { separateUid: isRoot() && iso.separateUid, notes: [] };
  if (isRoot() && iso.separateUid) {
    const second = await runSandboxed(hello, { language, interpreter, limits, separateUid: false });
    if (second.status === 'passed' && second.stdout.trim() === 'sandbox-ok') {
      return { separateUid: false, notes: [`${interpreter} cannot be run by the unprivileged sandbox uid (${first.stderr.trim() || first.status}); samples run as root, still with read-only mounts, no network and rlimits where available`] };
    }
  }
  throw new Error(`the ${language} interpreter ${interpreter} does not run in the sandbox: ${first.status}, ${first.stderr.trim().slice(0, 300)}`);
}
