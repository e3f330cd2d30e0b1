#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { type DpcConfig, defaultConfig, defaultDataDir, loadConfig, loadOrCreateIdentity, TIERS, type TierName } from '@dpc/core';
import { jsonReplacer, loadApiToken, startApi } from './api.js';
import { runDemo } from './demo.js';
import { runDoctor } from './doctor.js';
import { createLogger, type Logger, type LogLevel } from './log.js';
import { DpcNode } from './node.js';

const COMMON = {
  'data-dir': { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean', default: false },
  'log-level': { type: 'string' },
  'log-json': { type: 'boolean', default: false },
  'allow-loopback': { type: 'boolean', default: false },
  'clock-offset-ms': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

const HELP: Record<string, string> = {
  main: `dpc-node — the reference node of the dpc connectivity stack

Usage: dpc-node <command> [options]

Commands:
  id        print this node's id (creates the identity if needed)
  start     run a node until SIGINT/SIGTERM (roles from the config file)
  send      connect to a peer, send one message, wait for its acknowledgement
  doctor    what this node can do from where it stands
  demo      start a small local network and show every installed tier at work

Common options:
  --data-dir DIR     identity and stores (default ~/.dpc)
  --config FILE      INI config (see packages/core/examples)
  --json             machine-readable output (one JSON object per line)
  --log-level L      debug | info | warn | error (default from [log] level)
  --log-json         JSON log lines on stderr
  -h, --help         help for a command: dpc-node <command> --help`,
  id: `Usage: dpc-node id [--data-dir DIR] [--json]

Prints the node id, creating the Ed25519 identity in the data directory on first use.`,
  start: `Usage: dpc-node start --config FILE [--data-dir DIR] [--json] [--allow-loopback]

Runs a node until SIGINT or SIGTERM, then shuts down cleanly. Roles come from the config:
a node with no [dht] seed_nodes is a bootstrap node; [relay] volunteer = true offers a relay.
With --json, one JSON object per line on stdout for each event: listening, connected (tier,
time), message (sender, text), resumed (outbox resent at start), upgraded, path-lost, error, tier-not-installed (an optional tier
package is absent), and the tiers' own events (relay: session, session-end, refused). The WebSocket API ([api]) needs the token
in <data-dir>/api-token.
--allow-loopback   announce and dial loopback addresses (single-machine tests and demos)
--clock-offset-ms N   sign records as if the clock were N ms off (e.g. -3600000; clock-skew tests)`,
  send: `Usage: dpc-node send --config FILE --to PEER_ID [--data-dir DIR] [--json] [--tier T] [--timeout S] TEXT

Starts a node, connects to PEER_ID through the orchestrator, sends TEXT, waits for the
acknowledgement and prints the tier, time to connect and delivery. The message is written to
the outbox in the data directory first, so a later start of this node resends it if it was not
confirmed. Exit status: 0 delivered, 75 accepted but not yet confirmed (queued), 1 failed,
2 usage or config error.
--tier T       only try this tier (repeatable): ${TIERS.join(', ')}
--timeout S    give up after S seconds (default: [connection] total_timeout)
--linger S     keep the session open S seconds after delivery, printing its events`,
  doctor: `Usage: dpc-node doctor --config FILE [--data-dir DIR] [--json]

Shows what this node can do from where it stands: global IPv6, local and external IPv4, the
DHT (reachable, size), the Hub, relays found, and which tiers are installed and enabled.`,
  demo: `Usage: dpc-node demo [--json]

Starts a small network on this machine (a bootstrap node, peers, a relay volunteer and every
installed tier), connects the peers over each available tier, sends messages and prints a
summary. Needs nothing configured; exits 0 when every exchange succeeded.`,
};

export class UsageError extends Error {}

/** `send` exit status: accepted into the outbox but not yet confirmed (EX_TEMPFAIL). */
export const EXIT_QUEUED = 75;

async function readConfig(file: string | undefined, logger: Logger, required: boolean): Promise<DpcConfig> {
  if (!file) {
    if (required) throw new UsageError('--config FILE is required (see packages/core/examples for examples)');
    return defaultConfig();
  }
  const { config } = await loadConfig(file, { onWarning: (m) => logger.warn(m) });
  return config;
}

function out(json: boolean, obj: Record<string, unknown>, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(obj, jsonReplacer)}\n` : `${text}\n`);
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${HELP.main}\n`);
    return command ? 0 : 2;
  }
  if (!(command in HELP) || command === 'main') {
    process.stderr.write(`dpc-node: unknown command '${command}'\n\n${HELP.main}\n`);
    return 2;
  }
  const { values, positionals } = parseArgs({
    args: rest,
    options: {
      ...COMMON,
      to: { type: 'string' },
      tier: { type: 'string', multiple: true },
      timeout: { type: 'string' },
      linger: { type: 'string' },
    },
    allowPositionals: command === 'send',
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${HELP[command]}\n`);
    return 0;
  }
  const preLogger = createLogger({ level: (values['log-level'] as LogLevel) ?? 'info', json: values['log-json'] });
  const dataDir = values['data-dir'] ?? defaultDataDir();
  const json = values.json ?? false;

  switch (command) {
    case 'id': {
      const id = await loadOrCreateIdentity(dataDir);
      out(json, { nodeId: id.nodeId, dataDir }, id.nodeId);
      return 0;
    }
    case 'demo':
      return runDemo({ json, logLevel: (values['log-level'] as LogLevel) ?? 'warn' });
    case 'doctor': {
      const config = await readConfig(values.config, preLogger, true);
      return runDoctor({ config, dataDir, json, logger: preLogger, allowLoopback: values['allow-loopback'] ?? false });
    }
    case 'start':
    case 'send': {
      const config = await readConfig(values.config, preLogger, true);
      const logger = createLogger({
        level: (values['log-level'] as LogLevel) ?? config.log.level,
        json: values['log-json'] || config.log.json,
      });
      const clockOffsetMs = Number(values['clock-offset-ms'] ?? 0);
      if (!Number.isSafeInteger(clockOffsetMs)) throw new UsageError('--clock-offset-ms takes a whole number of milliseconds');
      const node = new DpcNode({ dataDir, config, logger, allowLoopback: values['allow-loopback'] ?? false, clockOffsetMs });
      if (command === 'start') return runStart(node, { json, logger });
      const to = values.to;
      const text = positionals.join(' ');
      if (!to) throw new UsageError('--to PEER_ID is required');
      if (!text) throw new UsageError('TEXT to send is required');
      const tiers = values.tier as TierName[] | undefined;
      for (const t of tiers ?? []) if (!TIERS.includes(t)) throw new UsageError(`unknown tier '${t}': one of ${TIERS.join(', ')}`);
      const timeoutS = values.timeout !== undefined ? Number(values.timeout) : config.connection.total_timeout;
      if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new UsageError('--timeout takes a positive number of seconds');
      const lingerS = values.linger !== undefined ? Number(values.linger) : 0;
      if (!Number.isFinite(lingerS) || lingerS < 0) throw new UsageError('--linger takes a number of seconds');
      return runSend(node, { to, text, json, logger, timeoutMs: timeoutS * 1000, lingerMs: lingerS * 1000, ...(tiers && { tiers }) });
    }
  }
  return 2;
}

async function runStart(node: DpcNode, opts: { json: boolean; logger: Logger }): Promise<number> {
  const emit = (event: string, data: Record<string, unknown>, text: string) => out(opts.json, { event, ...data }, text);
  node.on('listening', (e) => emit('listening', e, `listening as ${e.nodeId} on ${e.tcp.join(', ')} (dht ${e.dht})`));
  node.on('connected', (e) =>
    emit(
      'connected',
      { peerId: e.peerId, tier: e.tier, ms: Math.round(e.ms) },
      `connected to ${e.peerId} via ${e.tier} in ${Math.round(e.ms)} ms`,
    ),
  );
  node.on('message', (e) => emit('message', e, `<${e.from}> (${e.tier}) ${e.text}`));
  node.on('upgraded', (e) => emit('upgraded', e, `session with ${e.peerId} moved from ${e.from} to ${e.to}`));
  node.on('path-lost', (e) =>
    emit(
      'path-lost',
      { peerId: e.peerId, tier: e.tier, ...(e.error && { error: e.error }) },
      `path to ${e.peerId} over ${e.tier} lost${e.error ? `: ${e.error.message}` : ''}`,
    ),
  );
  node.on('resumed', (e) => emit('resumed', e, `resending unacknowledged messages to ${e.peers.join(', ')}`));
  node.on('tier-event', (e) =>
    emit(
      e.event,
      { tier: e.tier, ...e.fields },
      `${e.tier} ${e.event}${Object.entries(e.fields)
        .map(([k, v]) => ` ${k}=${Array.isArray(v) ? v.join(',') : String(v)}`)
        .join('')}`,
    ),
  );
  node.on('tier-not-installed', (e) => emit('tier-not-installed', e, `tier ${e.tier} not installed (${e.package}): running without it`));
  node.on('error', (e) => emit('error', { error: e.error, context: e.context }, `error (${e.context}): ${e.error.message}`));
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await node.start();
  const cfg = node.opts.config.api;
  let api: Awaited<ReturnType<typeof startApi>> | undefined;
  if (cfg.enabled) {
    api = await startApi(node, { host: cfg.host, port: cfg.port, token: await loadApiToken(node.opts.dataDir), logger: opts.logger });
    emit('api', { url: api.url }, `WebSocket API on ${api.url} (token in ${node.opts.dataDir}/api-token)`);
  }
  await stopped;
  opts.logger.info('shutting down');
  await api?.close();
  await node.stop();
  emit('stopped', {}, 'stopped');
  return 0;
}

async function runSend(
  node: DpcNode,
  opts: { to: string; text: string; json: boolean; logger: Logger; timeoutMs: number; lingerMs: number; tiers?: TierName[] },
): Promise<number> {
  const signal = AbortSignal.timeout(opts.timeoutMs);
  let accepted: number | undefined;
  try {
    await node.start({ signal });
    opts.logger.info('looking up peer and connecting', { to: opts.to });
    const r = await node.send(opts.to, opts.text, {
      signal,
      ...(opts.tiers && { tiers: opts.tiers }),
      onAccepted: (seq) => {
        accepted = seq;
      },
    });
    out(
      opts.json,
      {
        event: 'delivered',
        to: opts.to,
        tier: r.tier,
        connect_ms: Math.round(r.connectMs),
        delivered_ms: Math.round(r.deliveredMs ?? 0),
        ...(r.remoteAddress && { remote_address: r.remoteAddress }),
      },
      `delivered to ${opts.to} via ${r.tier} (connected in ${Math.round(r.connectMs)} ms, acknowledged after ${Math.round(r.deliveredMs ?? 0)} ms)`,
    );
    if (opts.lingerMs > 0) {
      // Keep the session open (for scripts watching what happens to a live path).
      const say = (event: string, data: object, text: string) => out(opts.json, { event, ...data }, text);
      node.on('path-lost', (e) =>
        say('path-lost', { peerId: e.peerId, tier: e.tier, ...(e.error && { error: e.error }) }, `path over ${e.tier} lost`),
      );
      node.on('upgraded', (e) => say('upgraded', e, `moved from ${e.from} to ${e.to}`));
      node.on('message', (e) => say('message', e, `<${e.from}> (${e.tier}) ${e.text}`));
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, opts.lingerMs);
        process.once('SIGTERM', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return 0;
  } catch (err) {
    const e = err as Error & { code?: string; tiers?: unknown };
    if (accepted !== undefined) {
      // In the outbox: the next start of this node (same data directory) sends it again.
      const session = node.orchestrator?.session(opts.to);
      out(
        opts.json,
        { event: 'queued', to: opts.to, seq: accepted, tier: session?.tier ?? null, reason: e.message },
        `queued for ${opts.to}, not yet confirmed (${e.message}); it stays in the outbox of ${node.opts.dataDir} and is sent again when the node runs`,
      );
      return EXIT_QUEUED;
    }
    out(
      opts.json,
      { event: 'failed', to: opts.to, error: { code: e.code, message: e.message, ...(e.tiers ? { tiers: e.tiers } : {}) } },
      `not delivered: ${e.message}`,
    );
    return 1;
  } finally {
    await node.stop();
  }
}
