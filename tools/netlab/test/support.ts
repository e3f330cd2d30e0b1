import { execFileSync } from 'node:child_process';
import { checkPrerequisites, type Tool } from '@dpc/netlab';

/**
 * Whether the lab suites can run here. Without root or the tools they are reported skipped with
 * the reason; in CI (CI=true) a missing prerequisite fails instead, so nothing is silently skipped.
 */
export function labAvailability(tools: Tool[] = ['ip', 'nft', 'conntrack', 'ethtool']): boolean {
  const p = checkPrerequisites(tools);
  if (p.ok) return true;
  if (process.env.CI === 'true' || process.env.CI === '1') throw new Error(`netlab: CI must run the lab suites, but ${p.reason}`);
  console.warn(`netlab: skipped: ${p.reason}`);
  return false;
}

/** Lab namespaces of run `id` that still exist. */
export function leftoverNamespaces(id: string): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`dl${id}-`));
}

/** Parses the JSON lines a probe or fixture printed. */
export function jsonLines<T = Record<string, unknown>>(stdout: string): T[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as T);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}
