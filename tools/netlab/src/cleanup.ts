import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_STATE_DIR, NAMESPACE_PREFIX, RUN_ID_LENGTH } from './constants.js';
import { destroyNamespaceSync, listNamespaces } from './namespaces.js';

/**
 * Run ids, the record of live labs on disk, and teardown on exit, SIGINT and SIGTERM; `gc`
 * removes what a crashed run left behind.
 */

const NAMESPACE_PATTERN = new RegExp(`^${NAMESPACE_PREFIX}([a-z0-9]{${RUN_ID_LENGTH}})-`);

/** A fresh run id: lowercase letters and digits, so names stay short and valid everywhere. */
export function newRunId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(RUN_ID_LENGTH)].map((b) => alphabet[b % alphabet.length]).join('');
}

/** The namespace of `name` in run `id`. */
export function namespaceName(id: string, name: string): string {
  return `${NAMESPACE_PREFIX}${id}-${name}`;
}

/** The run id a lab namespace belongs to, or undefined for anyone else's namespace. */
export function runIdOf(namespace: string): string | undefined {
  return NAMESPACE_PATTERN.exec(namespace)?.[1];
}

export function stateDir(): string {
  return process.env.DPC_NETLAB_STATE_DIR ?? DEFAULT_STATE_DIR;
}

/** What is written to `<stateDir>/<id>.json` while a lab lives. */
export interface LabState {
  id: string;
  /** The process that owns the lab; a library lab dies with it. */
  ownerPid: number;
  /** Made by `dpc-netlab up`: lives until `down`, whoever created it. */
  persistent: boolean;
  createdAt: string;
  namespaces: string[];
  /** Host name → namespace and addresses, for `exec` and `ls`. */
  hosts: Record<string, { namespace: string; ipv4: string[]; ipv6: string[]; role: string; router?: string }>;
}

export function writeState(state: LabState): void {
  mkdirSync(stateDir(), { recursive: true });
  writeFileSync(join(stateDir(), `${state.id}.json`), `${JSON.stringify(state, null, 2)}\n`);
}

export function readState(id: string): LabState | undefined {
  try {
    return JSON.parse(readFileSync(join(stateDir(), `${id}.json`), 'utf8')) as LabState;
  } catch {
    return undefined;
  }
}

export function removeState(id: string): void {
  rmSync(join(stateDir(), `${id}.json`), { force: true });
}

export function listStates(): LabState[] {
  let files: string[] = [];
  try {
    files = readdirSync(stateDir()).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  return files.map((f) => readState(f.slice(0, -5))).filter((s): s is LabState => !!s);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes every namespace of run `id` (killing what runs in them) and its state file. */
export function destroyRunSync(id: string, namespaces?: string[]): void {
  const names = namespaces ?? listNamespaces().filter((ns) => runIdOf(ns) === id);
  for (const ns of names) destroyNamespaceSync(ns);
  // Namespaces made by a run that crashed before recording them.
  for (const ns of listNamespaces().filter((n) => runIdOf(n) === id)) destroyNamespaceSync(ns);
  removeState(id);
}

/**
 * Removes labs left by runs that died: every lab namespace whose run has no state file, or
 * whose owner is gone and which `up` did not make. With `all`, removes every lab.
 * Returns the run ids removed.
 */
export function collectGarbage(opts: { all?: boolean } = {}): string[] {
  const ids = new Set<string>();
  const existing = listNamespaces();
  for (const ns of existing) {
    const id = runIdOf(ns);
    if (id) ids.add(id);
  }
  for (const s of listStates()) ids.add(s.id);
  const removed: string[] = [];
  for (const id of ids) {
    const state = readState(id);
    const gone = state && !existing.some((ns) => runIdOf(ns) === id);
    const keep = !opts.all && state && (alive(state.ownerPid) || (state.persistent && !gone));
    if (keep) continue;
    destroyRunSync(id, state?.namespaces);
    removed.push(id);
  }
  return removed;
}

// ---- teardown when the process ends ----

const live = new Map<string, () => void>();
let installed = false;

function teardownAll(): void {
  for (const [id, stop] of [...live]) {
    live.delete(id);
    try {
      stop();
    } catch {
      // keep tearing down the others
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  teardownAll();
  uninstall();
  // Re-raise with the default action, so the exit status says which signal ended us.
  process.kill(process.pid, signal);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', teardownAll);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('SIGHUP', onSignal);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  process.off('exit', teardownAll);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.off('SIGHUP', onSignal);
}

/** Registers a synchronous teardown for a live lab, run on exit or on SIGINT/SIGTERM/SIGHUP. */
export function registerTeardown(id: string, stop: () => void): void {
  live.set(id, stop);
  install();
}

export function unregisterTeardown(id: string): void {
  live.delete(id);
  if (live.size === 0) uninstall();
}
