import { execFile, spawnSync } from 'node:child_process';
import { LabCommandError } from './errors.js';

/**
 * Thin helpers over `ip`, `nft`, `ethtool`, `conntrack` and /proc/sys, always aimed at a lab
 * namespace (`ip -n <ns>` or `ip netns exec <ns>`): nothing here configures the root namespace.
 */

/** Runs a command, resolving with stdout; rejects with a LabCommandError carrying stderr. */
export function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new LabCommandError([cmd, ...args], String(stderr), err));
      else resolve(String(stdout));
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** `ip -n <ns> <args…>` */
export function ipIn(ns: string, ...args: string[]): Promise<string> {
  return run('ip', ['-n', ns, ...args]);
}

/** Runs a program inside a namespace. */
export function execIn(ns: string, cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

export async function addNamespace(ns: string): Promise<void> {
  await run('ip', ['netns', 'add', ns]);
  await ipIn(ns, 'link', 'set', 'lo', 'up');
}

/**
 * Sets sysctls of one namespace by writing /proc/sys from a shell inside it (keys with dots,
 * e.g. `net.ipv4.ip_forward`). Values are numbers, so nothing needs quoting.
 */
export async function setSysctls(ns: string, values: Record<string, number>): Promise<void> {
  const script = Object.entries(values)
    .map(([key, v]) => `echo ${Math.trunc(v)} > /proc/sys/${key.replaceAll('.', '/')}`)
    .join(' && ');
  if (script) await execIn(ns, 'sh', ['-c', script]);
}

/**
 * Keeps bridged frames out of the IP hooks in this namespace. Where br_netfilter is loaded
 * (Docker loads it), bridged IPv4/IPv6 would otherwise cross the namespace's nftables chains.
 */
export async function disableBridgeNetfilter(ns: string): Promise<void> {
  const keys = ['bridge-nf-call-iptables', 'bridge-nf-call-ip6tables', 'bridge-nf-call-arptables'];
  const script = keys.map((k) => `if [ -e /proc/sys/net/bridge/${k} ]; then echo 0 > /proc/sys/net/bridge/${k}; fi`).join('; ');
  await execIn(ns, 'sh', ['-c', script]);
}

/** Creates a veth pair with one end in each namespace (never in the root namespace). */
export async function addVethPair(nsA: string, ifA: string, nsB: string, ifB: string): Promise<void> {
  await ipIn(nsA, 'link', 'add', ifA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB);
}

/** Turns checksum and segmentation offloads off, so frames forwarded from userspace are complete. */
export async function disableOffloads(ns: string, ifname: string): Promise<void> {
  await execIn(ns, 'ethtool', ['-K', ifname, 'tx', 'off', 'rx', 'off', 'gso', 'off', 'tso', 'off', 'gro', 'off']);
}

/** Loads an nftables ruleset into a namespace. */
export async function loadNftables(ns: string, ruleset: string): Promise<void> {
  await execIn(ns, 'nft', ['-f', '-'], { input: ruleset });
}

/** Empties the connection-tracking table of a namespace (so NAT mappings start fresh). */
export async function flushConntrack(ns: string): Promise<void> {
  try {
    await execIn(ns, 'conntrack', ['-F']);
  } catch (err) {
    // conntrack exits 1 with "table is empty" on some versions; that is a success here.
    if (!/empty|0 flow entries/i.test((err as LabCommandError).stderr ?? '')) throw err;
  }
}

/** Names of all namespaces on the machine (`ip netns list`). */
export function listNamespaces(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter(Boolean);
}

/**
 * Kills every process in a namespace and deletes it. Synchronous on purpose: it also runs from
 * `process.on('exit')` and signal handlers, where nothing asynchronous completes.
 */
export function destroyNamespaceSync(ns: string): void {
  for (let attempt = 0; attempt < 3; attempt++) {
    const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
    const list = (pids.stdout ?? '')
      .split('\n')
      .map((s) => Number.parseInt(s, 10))
      .filter((p) => Number.isInteger(p) && p > 0 && p !== process.pid);
    if (list.length === 0) break;
    for (const pid of list) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    spawnSync('sleep', ['0.05']);
  }
  spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}
