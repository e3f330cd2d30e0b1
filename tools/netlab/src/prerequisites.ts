import { spawnSync } from 'node:child_process';
import { LabUnavailableError } from './errors.js';

/** Programs the lab may need, each with the Debian package that provides it. */
export const TOOLS = {
  ip: 'iproute2',
  nft: 'nftables',
  conntrack: 'conntrack',
  ethtool: 'ethtool',
  turnserver: 'coturn',
  turnutils_natdiscovery: 'coturn',
} as const;
export type Tool = keyof typeof TOOLS;

export type Prerequisites = { ok: true } | { ok: false; reason: string; error: LabUnavailableError };

function found(tool: string): boolean {
  const r = spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
  return r.status === 0;
}

/**
 * Whether this machine can run the lab: Linux, root, and the tools (default `ip` and `nft`).
 * Says why not, so test suites can report themselves skipped with the reason.
 */
export function checkPrerequisites(tools: Tool[] = ['ip', 'nft']): Prerequisites {
  const fail = (reason: string): Prerequisites => ({ ok: false, reason, error: new LabUnavailableError(reason) });
  if (process.platform !== 'linux') return fail(`needs Linux network namespaces (this is ${process.platform})`);
  if (process.getuid?.() !== 0) return fail('not root (network namespaces and nftables need root)');
  const missing = tools.filter((t) => !found(t));
  if (missing.length) {
    const pkgs = [...new Set(missing.map((t) => TOOLS[t]))];
    return fail(`missing ${missing.join(', ')} (apt-get install ${pkgs.join(' ')})`);
  }
  return { ok: true };
}
