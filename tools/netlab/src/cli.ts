#!/usr/bin/env node
/**
 * dpc-netlab — build a lab topology by hand and work inside it.
 *
 *   dpc-netlab up <topology.json> [--id <id>]   build it; stays up until `down`
 *   dpc-netlab ls [<id>]                        labs, hosts, namespaces and addresses
 *   dpc-netlab exec [--lab <id>] <host> -- <cmd> [args…]
 *   dpc-netlab flush [<id>]                     empty the routers' conntrack tables
 *   dpc-netlab down [<id>]                      tear a lab down
 *   dpc-netlab gc [--all]                       remove labs left by crashed runs (--all: every lab)
 *   dpc-netlab selfcheck                        prove the routers behave as labelled
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { collectGarbage, destroyRunSync, type LabState, listStates, readState } from './cleanup.js';
import { createLab } from './lab.js';
import { flushConntrack } from './namespaces.js';
import { checkPrerequisites } from './prerequisites.js';
import { runSelfCheck } from './selfcheck.js';
import { validateTopology } from './topology.js';

const USAGE = `usage:
  dpc-netlab up <topology.json> [--id <id>]
  dpc-netlab ls [<id>]
  dpc-netlab exec [--lab <id>] <host> -- <cmd> [args...]
  dpc-netlab flush [<id>]
  dpc-netlab down [<id>]
  dpc-netlab gc [--all]
  dpc-netlab selfcheck`;

function die(message: string, code = 1): never {
  console.error(`dpc-netlab: ${message}`);
  process.exit(code);
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (!v) die(`${name} needs a value`);
  args.splice(i, 2);
  return v;
}

/** The lab a command is about: the id given, or the only one running. */
function pickLab(id: string | undefined): LabState {
  if (id) return readState(id) ?? die(`no lab ${id} (see dpc-netlab ls)`);
  const all = listStates();
  if (all.length === 1) return all[0]!;
  if (all.length === 0) die('no lab is up (dpc-netlab up <topology.json>)');
  die(`several labs are up (${all.map((s) => s.id).join(', ')}); say which with --lab <id>`);
}

function describe(state: LabState): string {
  const rows = Object.entries(state.hosts).map(([name, h]) => {
    const where = h.role === 'lan' ? `lan of ${h.router}` : h.role;
    return `  ${name.padEnd(12)} ${where.padEnd(16)} ${h.namespace.padEnd(22)} ${[...h.ipv4, ...h.ipv6].join(' ')}`;
  });
  return [`lab ${state.id} (${state.persistent ? 'up' : `owned by pid ${state.ownerPid}`})`, ...rows].join('\n');
}

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  const needLab = () => {
    const p = checkPrerequisites();
    if (!p.ok) die(p.reason);
  };
  switch (command) {
    case 'up': {
      needLab();
      const id = option(args, '--id');
      const file = args[0] ?? die(USAGE, 2);
      const topology = validateTopology(JSON.parse(readFileSync(file, 'utf8')));
      const lab = await createLab(topology, { persistent: true, ...(id ? { id } : {}) });
      console.log(describe(readState(lab.id)!));
      console.log(`\nrun something:  dpc-netlab exec --lab ${lab.id} <host> -- <cmd>\ntear down:      dpc-netlab down ${lab.id}`);
      return;
    }
    case 'ls': {
      const states = args[0] ? [pickLab(args[0])] : listStates();
      console.log(states.length ? states.map(describe).join('\n\n') : 'no lab is up');
      return;
    }
    case 'exec': {
      needLab();
      const id = option(args, '--lab');
      const dash = args.indexOf('--');
      const host = args[0];
      const cmd = dash >= 0 ? args.slice(dash + 1) : args.slice(1);
      if (!host || host === '--' || cmd.length === 0) die(USAGE, 2);
      const state = pickLab(id);
      const h = state.hosts[host] ?? die(`no host ${host} in lab ${state.id} (hosts: ${Object.keys(state.hosts).join(', ')})`);
      const r = spawnSync('ip', ['netns', 'exec', h.namespace, ...cmd], { stdio: 'inherit' });
      process.exit(r.status ?? 1);
      return;
    }
    case 'flush': {
      needLab();
      const state = pickLab(args[0]);
      const routers = Object.values(state.hosts).filter((h) => h.role === 'router' || h.role === 'carrier');
      await Promise.all(routers.map((h) => flushConntrack(h.namespace)));
      console.log(`flushed conntrack on ${routers.length} router(s) of lab ${state.id}`);
      return;
    }
    case 'down': {
      needLab();
      const state = pickLab(args[0]);
      destroyRunSync(state.id, state.namespaces);
      console.log(`lab ${state.id} is down`);
      return;
    }
    case 'gc': {
      needLab();
      const removed = collectGarbage({ all: args.includes('--all') });
      console.log(removed.length ? `removed lab(s) ${removed.join(', ')}` : 'nothing to remove');
      return;
    }
    case 'selfcheck': {
      needLab();
      const report = await runSelfCheck();
      for (const r of report.results) console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name}: ${r.detail}`);
      process.exit(report.ok ? 0 : 1);
      return;
    }
    default:
      die(USAGE, command ? 2 : 0);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => die(err instanceof Error ? err.message : String(err)));
