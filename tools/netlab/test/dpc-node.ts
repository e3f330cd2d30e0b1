import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Lab } from '@dpc/netlab';

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
      this.stderr = (this.stderr + d).slice(-20_000);
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

  static async start(lab: Lab, host: string, dir: string, ini: string): Promise<LabNode> {
    const data = join(dir, host);
    await mkdir(data, { recursive: true });
    const file = join(dir, `${host}.ini`);
    await writeFile(file, ini);
    const child = lab.spawn(
      host,
      process.execPath,
      [DPC_NODE, 'start', '--json', '--config', file, '--data-dir', data, '--log-level', 'debug'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const node = new LabNode(host, child);
    await node.next('listening', () => true, 30_000);
    return node;
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
  stderr: string;
  elapsedMs: number;
}

/** `dpc-node send --json` from a lab host; resolves with its last JSON line. */
export async function labSend(lab: Lab, host: string, dir: string, ini: string, to: string, text: string): Promise<SendResult> {
  const data = join(dir, `${host}-send`);
  await mkdir(data, { recursive: true });
  const file = join(dir, `${host}-send.ini`);
  await writeFile(file, ini);
  const t0 = Date.now();
  const r = await lab.exec(host, process.execPath, [DPC_NODE, 'send', '--json', '--config', file, '--data-dir', data, '--to', to, text], {
    timeoutMs: 90_000,
  });
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('{'));
  const last = lines.at(-1);
  return { code: r.code, result: last ? (JSON.parse(last) as Event) : undefined, stderr: r.stderr, elapsedMs: Date.now() - t0 };
}
