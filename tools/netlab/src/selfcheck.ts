import type { ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, type Lab } from './lab.js';
import { checkPrerequisites } from './prerequisites.js';
import { PROBE_SCRIPT } from './probe.js';
import type { Topology } from './topology.js';

/**
 * The lab proves its routers behave as labelled. Two opinions: coturn's
 * `turnutils_natdiscovery` (RFC 5780 behaviour discovery against a coturn server on a public
 * host with two addresses), and our own UDP probe (one local port, two destinations: does the
 * external port stay the same?).
 */

export interface SelfCheckResult {
  name: string;
  ok: boolean;
  /** What was observed (natdiscovery's verdict line, mapped addresses, …). */
  detail: string;
}

export interface SelfCheckReport {
  ok: boolean;
  results: SelfCheckResult[];
  /** Full natdiscovery output per host, for the curious. */
  natdiscovery: Record<string, string>;
}

export const SELFCHECK_TOPOLOGY: Topology = {
  publicHosts: [{ name: 'stun', ipv4Addresses: 2 }],
  routers: [
    { name: 'cone', kind: 'cone', lan: [{ name: 'conehost' }] },
    { name: 'sym', kind: 'symmetric', lan: [{ name: 'symhost' }] },
    { name: 'dbl', kind: 'double-nat', lan: [{ name: 'dblhost' }] },
    { name: 'noudp', kind: 'udp-blocked', lan: [{ name: 'noudphost' }] },
  ],
};

const ECHO_PORTS = [7000, 7001];
const TCP_PORT = 7100;

/** The verdict line of natdiscovery (e.g. "NAT with Endpoint Independent Mapping!"). */
export function natDiscoveryVerdict(output: string): string {
  const lines = output.split('\n').map((l) => l.trim());
  return lines.find((l) => /^NAT with |^No NAT|Mapping!|Filtering!/.test(l)) ?? (lines.find((l) => /timeout/i.test(l)) || 'no verdict');
}

function waitForLine(child: ChildProcess, what: string, ms = 5_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} not ready after ${ms} ms`)), ms);
    child.stdout?.once('data', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}`));
    });
  });
}

/** Starts coturn (STUN only, RFC 5780 on) on a host with two addresses. */
export async function startStunServer(lab: Lab, host: string): Promise<ChildProcess> {
  const [a, b] = lab.hosts[host]?.ipv4 ?? [];
  if (!a || !b) throw new Error(`${host} needs two IPv4 addresses for RFC 5780`);
  const args = ['-n', '--no-cli', '-S', '-z', '--no-tls', '--no-dtls', '-L', a, '-L', b, '--log-file', 'stdout', '--simple-log'];
  args.push('--pidfile', join(tmpdir(), `dpc-netlab-${lab.id}-turnserver.pid`));
  const child = lab.spawn(host, 'turnserver', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  // Ready once it has opened its listeners on both addresses (3478 and the alternate 3479).
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`turnserver exited: ${log.slice(-2000)}`);
    const probe = await lab.exec(host, 'sh', ['-c', 'cat /proc/net/udp']);
    const hex = (ip: string, port: number) =>
      `${ip
        .split('.')
        .reverse()
        .map((o) => Number(o).toString(16).padStart(2, '0'))
        .join('')
        .toUpperCase()}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
    if ([hex(a, 3478), hex(b, 3478), hex(a, 3479), hex(b, 3479)].every((h) => probe.stdout.includes(h))) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`turnserver did not listen in time: ${log.slice(-2000)}`);
}

/** Runs `turnutils_natdiscovery <flag> <server>` on a host and returns its output. */
export async function natDiscovery(lab: Lab, host: string, server: string, flag: '-m' | '-f'): Promise<string> {
  const r = await lab.exec(host, 'turnutils_natdiscovery', [flag, server], { timeoutMs: 30_000 });
  return r.stdout + r.stderr;
}

/** Sends UDP probes from one local port to each target; returns the mapped addresses seen. */
export async function udpMapping(
  lab: Lab,
  host: string,
  targets: string[],
  localPort = 40_000,
): Promise<{ received: number; mapped: string[] }> {
  const r = await lab.exec(host, process.execPath, [PROBE_SCRIPT, 'send', String(localPort), '2', '20', '500', ...targets]);
  const lines = r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { received: number; mapped: string[] });
  return { received: lines.reduce((n, l) => n + l.received, 0), mapped: [...new Set(lines.flatMap((l) => l.mapped))] };
}

/** Builds the self-check topology, runs every check, tears the lab down, and reports. */
export async function runSelfCheck(opts: { natDiscovery?: boolean } = {}): Promise<SelfCheckReport> {
  const useCoturn = opts.natDiscovery ?? checkPrerequisites(['ip', 'nft', 'turnserver', 'turnutils_natdiscovery']).ok;
  const lab = await createLab(SELFCHECK_TOPOLOGY);
  const results: SelfCheckResult[] = [];
  const outputs: Record<string, string> = {};
  const check = (name: string, ok: boolean, detail: string) => results.push({ name, ok, detail });
  try {
    const stun = lab.hosts.stun!;
    const [a, b] = stun.ipv4 as [string, string];
    const echo = lab.spawn('stun', process.execPath, [PROBE_SCRIPT, 'echo', ECHO_PORTS.join(','), a, b]);
    await waitForLine(echo, 'UDP echo');
    const tcp = lab.spawn('stun', process.execPath, [PROBE_SCRIPT, 'tcp-listen', String(TCP_PORT)]);
    await waitForLine(tcp, 'TCP listener');
    const targets = [`${a}:${ECHO_PORTS[0]}`, `${b}:${ECHO_PORTS[1]}`];

    // Our own probe: one local port, two destinations.
    const cone = await udpMapping(lab, 'conehost', targets);
    check(
      'cone keeps one external port for two destinations (own probe)',
      cone.received >= 2 && cone.mapped.length === 1,
      cone.mapped.join(' '),
    );
    const sym = await udpMapping(lab, 'symhost', targets);
    check(
      'symmetric picks a new external port per destination (own probe)',
      sym.received >= 2 && sym.mapped.length === 2,
      sym.mapped.join(' '),
    );
    const dbl = await udpMapping(lab, 'dblhost', targets);
    const carrier = lab.routers.dbl!.externalIpv4;
    check(
      'double NAT is seen from the carrier address, one port (own probe)',
      dbl.mapped.length === 1 && dbl.mapped[0]!.startsWith(`${carrier}:`),
      dbl.mapped.join(' '),
    );
    const noudp = await udpMapping(lab, 'noudphost', targets);
    check('udp-blocked drops UDP (own probe)', noudp.received === 0, `${noudp.received} replies`);
    const tcpr = await lab.exec('noudphost', process.execPath, [PROBE_SCRIPT, 'tcp-connect', `${a}:${TCP_PORT}`, '5000']);
    const tcpOk = (JSON.parse(tcpr.stdout.trim() || '{}') as { connected?: boolean }).connected === true;
    check('udp-blocked lets TCP through', tcpOk, tcpr.stdout.trim());
    const inbound = await udpMapping(lab, 'stun', [`${lab.routers.cone!.externalIpv4}:40000`], 7200);
    check('cone drops unsolicited inbound UDP', inbound.received === 0, `${inbound.received} replies`);

    if (useCoturn) {
      await lab.flushConntrack();
      await startStunServer(lab, 'stun');
      const expect: Array<[host: string, flag: '-m' | '-f', verdict: RegExp]> = [
        ['conehost', '-m', /Endpoint Independent Mapping/i],
        ['symhost', '-m', /Address and Port Dependent Mapping/i],
        ['dblhost', '-m', /Endpoint Independent Mapping/i],
        ['conehost', '-f', /Address and Port Dependent Filtering/i],
      ];
      for (const [host, flag, verdict] of expect) {
        const out = await natDiscovery(lab, host, a, flag);
        outputs[`${host} ${flag}`] = out;
        const v = natDiscoveryVerdict(out);
        check(`natdiscovery ${flag} from ${host}: ${verdict.source}`, verdict.test(v), v);
      }
    }
  } finally {
    await lab.destroy();
  }
  return { ok: results.every((r) => r.ok), results, natdiscovery: outputs };
}
