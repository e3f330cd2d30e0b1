import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Lab } from './lab.js';

/** The dpc-node CLI, built from apps/node. */
export const DPC_NODE = fileURLToPath(new URL('../../../apps/node/dist/bin.js', import.meta.url));

export type Event = Record<string, unknown> & { event: string };

/** An INI config for a node in the lab; `extra` is appended (later keys win). */
export function labIni(opts: { seed?: string; listenPort?: number; extra?: string }): string {
  return `[p2p]
listen_port = ${opts.listenPort ?? 9000}
listen_host = dual
[dht]
port = 8889
${opts.seed ? `seed_nodes = ${opts.seed}` : ''}
bootstrap_timeout = 5
lookup_timeout = 5
[api]
enabled = false
[relay]
port = 9100
[connection]
ipv6_timeout = 3
ipv4_timeout = 3
relay_timeout = 15
total_timeout = 30
${opts.extra ?? ''}
`;
}

/** A folder for configs and data dirs of one test run, removed by `cleanup()`. */
export async function workdir(): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'dpc-lab-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A `dpc-node start --json` running inside a lab host. */
export class LabNode {
  readonly events: Event[] = [];
  stderr = '';
  readonly #waiters: Array<() => void> = [];

  private constructor(
    readonly host: string,
    readonly child: ChildProcess,
  ) {
    child.stderr?.on('data', (d) => {
      this.stderr = (this.stderr + d).slice(-200_000);
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        this.events.push(JSON.parse(line) as Event);
      } catch {
        this.events.push({ event: 'unparsed', line });
      }
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  /** `dpc-node start`, resolved once it is listening. */
  static async start(lab: Lab, host: string, dir: string, ini: string): Promise<LabNode> {
    const node = await LabNode.spawn(lab, host, dir, ini, ['start']);
    await node.next('listening', () => true, 30_000);
    return node;
  }

  /** Any dpc-node command with `--json --config --data-dir` (e.g. `send --linger`), not awaited. */
  static async spawn(lab: Lab, host: string, dir: string, ini: string, args: string[]): Promise<LabNode> {
    const name = `${host}-${args[0]}`;
    const data = join(dir, name);
    await mkdir(data, { recursive: true });
    const file = join(dir, `${name}.ini`);
    await writeFile(file, ini);
    const [command, ...rest] = args;
    const argv = [DPC_NODE, command as string, '--json', '--config', file, '--data-dir', data, '--log-level', 'info', ...rest];
    const child = lab.spawn(host, process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    return new LabNode(host, child);
  }

  /** Waits until the node's log (stderr) matches. */
  async logged(pattern: RegExp, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pattern.test(this.stderr)) {
      if (Date.now() > deadline || this.child.exitCode !== null) {
        throw new Error(`${this.host}: log never matched ${pattern}; stderr tail: ${this.stderr.slice(-3000)}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  get nodeId(): string {
    return String(this.events.find((e) => e.event === 'listening')?.nodeId);
  }

  /** Waits for an event matching `pred`. */
  async next(event: string, pred: (e: Event) => boolean = () => true, ms = 30_000): Promise<Event> {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = this.events.find((e) => e.event === event && pred(e));
      if (hit) return hit;
      if (Date.now() > deadline || this.child.exitCode !== null) {
        throw new Error(
          `${this.host}: no '${event}' event within ${ms} ms (exit ${this.child.exitCode}); events ${JSON.stringify(this.events)}; stderr tail: ${this.stderr.slice(-3000)}`,
        );
      }
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 250).unref();
      });
    }
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    this.child.kill(signal);
  }
}

export interface SendResult {
  code: number | null;
  result: Event | undefined;
  events: Event[];
  stderr: string;
  elapsedMs: number;
}

/**
 * `dpc-node send --json` from a lab host; resolves with its last JSON line that is not a progress
 * event (`result`) and every JSON line it printed (`events`, progress included).
 */
export async function labSend(
  lab: Lab,
  host: string,
  dir: string,
  ini: string,
  to: string,
  text: string,
  opts: { timeoutMs?: number } = {},
): Promise<SendResult> {
  const data = join(dir, `${host}-send`);
  await mkdir(data, { recursive: true });
  const file = join(dir, `${host}-send.ini`);
  await writeFile(file, ini);
  const t0 = Date.now();
  const r = await lab.exec(host, process.execPath, [DPC_NODE, 'send', '--json', '--config', file, '--data-dir', data, '--to', to, text], {
    timeoutMs: opts.timeoutMs ?? 90_000,
  });
  const events = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Event);
  // The outcome (delivered, failed, queued, error): a racing tier may still report progress after it.
  const result = events.filter((e) => e.event !== 'progress').at(-1) ?? events.at(-1);
  return { code: r.code, result, events, stderr: r.stderr, elapsedMs: Date.now() - t0 };
}
