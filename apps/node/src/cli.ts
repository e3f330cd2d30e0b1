#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  type DpcConfig,
  defaultConfig,
  defaultDataDir,
  hostPort,
  isDpcError,
  isNodeId,
  loadConfig,
  loadOrCreateIdentity,
  TIERS,
  type TierName,
} from '@dpc/core';
import { describeOutcome } from '@dpc/orchestrator';
import { type ApiServer, jsonReplacer, loadApiToken, startApi } from './api.js';
import { emitDashboard } from './dashboard-cli.js';
import { NodeMonitor } from './dashboard-state.js';
import { runDemo } from './demo.js';
import { runDoctor } from './doctor.js';
import { createLogger, type Logger, type LogLevel } from './log.js';
import { DpcNode } from './node.js';
import { type NodeFile, pidAlive, readRunningNode, removeNodeFile, writeNodeFile } from './node-file.js';
import { checkPorts } from './ports.js';
import { connectRunning } from './remote.js';

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
  start     run a node until SIGINT/SIGTERM or 'dpc-node stop' (roles from the config file)
  send      send one message to a peer and wait for its acknowledgement (through
            the running node of the data directory, or a short-lived one)
  status    what the running node of the data directory is doing
  peers     the running node's sessions
  stop      stop the running node of the data directory
  doctor    what this node can do from where it stands
  demo      start a small local network and show every installed tier at work

Common options:
  --data-dir DIR     identity and stores (default ~/.dpc)
  --config FILE      INI config (examples: apps/node/examples/seed-node.ini, relay-volunteer.ini, peer.ini)
  --json             machine-readable output (one JSON object per line)
  --log-level L      debug | info | warn | error (default from [log] level)
  --log-json         JSON log lines on stderr
  -h, --help         help for a command: dpc-node <command> --help
  -V, --version      print the version

One node runs per data directory: 'start' writes <data-dir>/node.json (pid, API URL, node id)
and 'send', 'status', 'peers' and 'stop' talk to that node over its WebSocket API.
Exit status: 0 success (send: delivered), 75 send: accepted but not yet confirmed,
1 failed, 2 usage or config error.`,
  id: `Usage: dpc-node id [--data-dir DIR] [--json]

Prints the node id, creating the Ed25519 identity in the data directory on first use.`,
  start: `Usage: dpc-node start --config FILE [--data-dir DIR] [--json] [--allow-loopback]

Runs a node until SIGINT, SIGTERM or 'dpc-node stop', then shuts down cleanly (also during
start-up). One node per data directory: it writes <data-dir>/node.json (pid, API URL, node id;
removed on a clean stop) so that send, status, peers and stop reach it. Every fixed port
([p2p] listen_port, [dht] port, [api] port, [relay] port) is checked before the node joins
the network; a taken one is an error naming its key. Roles come from the config:
a node with no [dht] seed_nodes is a bootstrap node; [relay] volunteer = true offers a relay;
[hub] serve = true runs a Hub on [hub] port (its URL is in the 'listening' event).
With --json, one JSON object per line on stdout for each event: listening, connected (tier,
time; inbound: true on the receiving side), message (sender, text), resumed (outbox resent at
start), upgraded, path-lost (the path broke), disconnected (the peer closed it cleanly), error, tier-not-installed (an optional tier
package is absent), and the tiers' own events (relay: session, session-end, refused). The WebSocket API ([api]) needs the token
in <data-dir>/api-token.
When no seed answers within [dht] bootstrap_timeout, the node says so (a 'retrying' event with
--json) and tries again after 1, 2, 5, 10, 30, then every 60 s, until it joins or is stopped.
--allow-loopback   announce and dial loopback addresses (single-machine tests and demos)
--no-retry         exit (status 1) when no seed answers instead of retrying
--clock-offset-ms N   sign records as if the clock were N ms off (e.g. -3600000; clock-skew tests)`,
  send: `Usage: dpc-node send --config FILE --to PEER_ID [--data-dir DIR] [--json] [--tier T] [--timeout S] TEXT

Sends TEXT to PEER_ID (dpc-node-<32 hex digits>) and waits for the acknowledgement, printing the
tier, time to connect and delivery. When a node runs on the data directory (dpc-node start), the
message goes through it over its WebSocket API; otherwise a short-lived node is started, which
connects through the orchestrator. The message is written to the outbox in the data directory
first, so the node (or a later start) resends it if it was not confirmed. Exit status: 0 delivered, 75 accepted but not yet confirmed (queued), 1 failed,
2 usage or config error.
--tier T       only try this tier (repeatable; short-lived node only): ${TIERS.join(', ')}
--timeout S    give up after S seconds (default: [connection] total_timeout)
--linger S     keep the session open S seconds after delivery, printing its events
While it waits, send says what for: joining the DHT, looking up the peer, each tier tried and
how it ended, queued for deferred delivery, waiting for the acknowledgement (lines starting
with '…' on stderr; with --json, {"event":"progress","step":…} lines on stdout before the result).`,
  status: `Usage: dpc-node status [--data-dir DIR] [--json]

Shows the node running on the data directory: pid, node id, API URL, sessions and counters.
Exit status 1 when no node runs there.`,
  peers: `Usage: dpc-node peers [--data-dir DIR] [--json]

Lists the sessions of the node running on the data directory: peer id, tier, connected,
unacknowledged messages. Exit status 1 when no node runs there.`,
  stop: `Usage: dpc-node stop [--data-dir DIR] [--json]

Stops the node running on the data directory (through its API, or SIGTERM to its pid) and waits
until it has exited. Exit status 0 also when none was running.`,
  doctor: `Usage: dpc-node doctor --config FILE [--data-dir DIR] [--json]

Shows what this node can do from where it stands: global IPv6, local and external IPv4, the
DHT (how many of the configured seeds answer, nodes known), the NAT mapping (the same for every
DHT node, or varying: a symmetric NAT), relays found, the Hub, and which tiers are installed and
enabled; then a one-line verdict ("reachable directly on …", "behind a symmetric NAT: peers will
use relays", …). It only reads: nothing is announced, no contacts saved, no tier started.
Exit status 1 when no seed answers.`,
  demo: `Usage: dpc-node demo [--json]

Starts a small network on this machine (a bootstrap node, peers, a relay volunteer and every
installed tier), connects the peers over each available tier, sends messages and prints a
summary. Needs nothing configured; exits 0 when every exchange succeeded.`,
};

export class UsageError extends Error {}

/** No node runs on the data directory (status, peers). */
export class NotRunningError extends Error {
  readonly code = 'DPC_NOT_RUNNING';
  constructor(dataDir: string) {
    super(`no node is running on ${dataDir} (start one with: dpc-node start --config FILE --data-dir ${dataDir})`);
  }
}

/** The version of this package. */
export function version(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

const NODE_ID_FORM = 'dpc-node-<32 hex digits>, as printed by dpc-node id';

/** `send` exit status: accepted into the outbox but not yet confirmed (EX_TEMPFAIL). */
export const EXIT_QUEUED = 75;

async function readConfig(file: string | undefined, logger: Logger, required: boolean): Promise<DpcConfig> {
  if (!file) {
    if (required)
      throw new UsageError('--config FILE is required (examples: apps/node/examples/seed-node.ini, relay-volunteer.ini, peer.ini)');
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
  if (command === '--version' || command === '-V' || command === 'version') {
    process.stdout.write(`dpc-node ${version()}\n`);
    return 0;
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
      'no-retry': { type: 'boolean', default: false },
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
    case 'status':
    case 'peers':
    case 'stop':
      return runControl(command, dataDir, json);
    case 'start': {
      const config = await readConfig(values.config, preLogger, true);
      const running = await readRunningNode(dataDir);
      if (running) throw new AlreadyRunningError(dataDir, running);
      const logger = createLogger({
        level: (values['log-level'] as LogLevel) ?? config.log.level,
        json: values['log-json'] || config.log.json,
      });
      await checkPorts(config);
      const allowLoopback = values['allow-loopback'] ?? false;
      const clockOffsetMs = clockOffset(values['clock-offset-ms']);
      return runStart(() => new DpcNode({ dataDir, config, logger, allowLoopback, clockOffsetMs }), {
        json,
        logger,
        dataDir,
        retry: !values['no-retry'],
      });
    }
    case 'send': {
      const config = await readConfig(values.config, preLogger, true);
      const to = values.to;
      const text = positionals.join(' ');
      if (!to) throw new UsageError(`--to PEER_ID is required (${NODE_ID_FORM})`);
      if (!isNodeId(to)) throw new UsageError(`--to ${JSON.stringify(to)} is not a node id: expected ${NODE_ID_FORM}`);
      if (!text) throw new UsageError('TEXT to send is required');
      const tiers = values.tier as TierName[] | undefined;
      for (const t of tiers ?? []) if (!TIERS.includes(t)) throw new UsageError(`unknown tier '${t}': one of ${TIERS.join(', ')}`);
      const timeoutS = values.timeout !== undefined ? Number(values.timeout) : config.connection.total_timeout;
      if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new UsageError('--timeout takes a positive number of seconds');
      const lingerS = values.linger !== undefined ? Number(values.linger) : 0;
      if (!Number.isFinite(lingerS) || lingerS < 0) throw new UsageError('--linger takes a number of seconds');
      const running = await readRunningNode(dataDir);
      const self = running?.nodeId ?? (await loadOrCreateIdentity(dataDir)).nodeId;
      if (to === self) throw new UsageError(`--to ${to} is this node's own id: send to another node`);
      if (running) {
        if (tiers)
          throw new UsageError(`--tier needs a short-lived node, but node ${running.pid} runs on ${dataDir}: stop it or leave out --tier`);
        return runRemoteSend(dataDir, running, { to, text, json, timeoutMs: timeoutS * 1000 });
      }
      const logger = createLogger({
        level: (values['log-level'] as LogLevel) ?? config.log.level,
        json: values['log-json'] || config.log.json,
      });
      const node = new DpcNode({
        dataDir,
        config,
        logger,
        allowLoopback: values['allow-loopback'] ?? false,
        clockOffsetMs: clockOffset(values['clock-offset-ms']),
      });
      return runSend(node, { to, text, json, logger, timeoutMs: timeoutS * 1000, lingerMs: lingerS * 1000, ...(tiers && { tiers }) });
    }
  }
  return 2;
}

/** `--clock-offset-ms`: a whole number of milliseconds, default 0. */
function clockOffset(value: string | undefined): number {
  const ms = Number(value ?? 0);
  if (!Number.isSafeInteger(ms)) throw new UsageError('--clock-offset-ms takes a whole number of milliseconds');
  return ms;
}

/** A node already runs on the data directory (`start` twice). */
export class AlreadyRunningError extends Error {
  readonly code = 'DPC_ALREADY_RUNNING';
  constructor(dataDir: string, info: NodeFile) {
    super(
      `a node (pid ${info.pid}, ${info.nodeId}) already runs on ${dataDir}; use dpc-node send/status/peers/stop, or another --data-dir`,
    );
  }
}

async function runRemoteSend(
  dataDir: string,
  info: NodeFile,
  opts: { to: string; text: string; json: boolean; timeoutMs: number },
): Promise<number> {
  const remote = await connectRunning(dataDir, info);
  try {
    if (!opts.json) process.stderr.write(`sending through the running node (pid ${info.pid}); waiting for ${opts.to} to acknowledge\n`);
    const r = await remote.call<{
      delivered?: boolean;
      tier: TierName | null;
      connectMs?: number;
      deliveredMs?: number;
      seq: number;
      reason?: string;
    }>('send', { to: opts.to, text: opts.text, wait: 'delivered', timeout_ms: opts.timeoutMs });
    if (r.delivered === false) {
      out(
        opts.json,
        { event: 'queued', to: opts.to, seq: r.seq, tier: r.tier ?? null, reason: r.reason, via: 'running-node' },
        `queued for ${opts.to}, not yet confirmed (${r.reason}); the running node (pid ${info.pid}) keeps sending it`,
      );
      return EXIT_QUEUED;
    }
    out(
      opts.json,
      {
        event: 'delivered',
        to: opts.to,
        tier: r.tier,
        connect_ms: Math.round(r.connectMs ?? 0),
        delivered_ms: Math.round(r.deliveredMs ?? 0),
        via: 'running-node',
      },
      `delivered to ${opts.to} via ${r.tier} by the running node (acknowledged after ${Math.round(r.deliveredMs ?? 0)} ms)`,
    );
    return 0;
  } catch (err) {
    const e = err as Error & { code?: string };
    out(opts.json, { event: 'failed', to: opts.to, error: { code: e.code, message: e.message } }, `not delivered: ${e.message}`);
    return 1;
  } finally {
    remote.close();
  }
}

/** `status`, `peers`, `stop`: the node running on the data directory. */
async function runControl(command: 'status' | 'peers' | 'stop', dataDir: string, json: boolean): Promise<number> {
  const info = await readRunningNode(dataDir);
  if (!info) {
    if (command === 'stop') {
      out(json, { event: 'not-running', dataDir }, `no node is running on ${dataDir}`);
      return 0;
    }
    throw new NotRunningError(dataDir);
  }
  if (command === 'stop') {
    let how = 'api';
    try {
      const remote = await connectRunning(dataDir, info);
      await remote.call('stop').finally(() => remote.close());
    } catch {
      how = 'signal';
      process.kill(info.pid, 'SIGTERM');
    }
    const deadline = Date.now() + 15_000;
    while (pidAlive(info.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (pidAlive(info.pid)) {
      out(
        json,
        { event: 'error', error: { code: 'DPC_STOP_TIMEOUT', message: 'still running after 15 s' }, pid: info.pid },
        `node ${info.pid} is still running after 15 s`,
      );
      return 1;
    }
    out(json, { event: 'stopped', pid: info.pid, nodeId: info.nodeId, via: how }, `stopped node ${info.nodeId} (pid ${info.pid})`);
    return 0;
  }
  const remote = await connectRunning(dataDir, info);
  try {
    type Session = { peerId: string; tier: string | null; connected: boolean; deferred: boolean; unacked: number };
    const sessions = await remote.call<Session[]>('sessions');
    if (command === 'peers') {
      if (json) for (const s of sessions) out(true, { event: 'peer', ...s }, '');
      else if (sessions.length === 0) process.stdout.write('no sessions\n');
      else
        for (const s of sessions)
          process.stdout.write(`${s.peerId}  ${s.tier ?? '-'}  ${s.connected ? 'connected' : 'disconnected'}  unacked=${s.unacked}\n`);
      return 0;
    }
    const stats = await remote.call<{ counters: Record<string, number>; dht: unknown }>('stats');
    out(
      json,
      {
        event: 'status',
        running: true,
        pid: info.pid,
        nodeId: info.nodeId,
        api: info.api,
        startedAt: info.startedAt,
        sessions: sessions.length,
        dht: stats.dht,
        counters: stats.counters,
      },
      `node ${info.nodeId} running (pid ${info.pid}, since ${info.startedAt})\nAPI ${info.api}\nsessions: ${sessions.length} (${sessions.filter((s) => s.connected).length} connected)`,
    );
    return 0;
  } finally {
    remote.close();
  }
}

/** On a terminal, a start that takes longer says so this often, ms. */
const START_TICK_MS = 3_000;

/** Waits between attempts to join through seeds that did not answer, ms (the last one repeats). */
export const SEED_RETRY_BACKOFF_MS = [1000, 2000, 5000, 10_000, 30_000, 60_000] as const;

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

async function runStart(
  makeNode: () => DpcNode,
  opts: { json: boolean; logger: Logger; dataDir: string; retry: boolean },
): Promise<number> {
  const emit = (event: string, data: Record<string, unknown>, text: string) => out(opts.json, { event, ...data }, text);
  // Signals always work, also during start-up: they abort the start (a slow DHT join included).
  // A second signal while shutting down ends the process at once.
  const shutdown = new AbortController();
  const onSignal = () => {
    if (shutdown.signal.aborted) process.exit(130);
    shutdown.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A long-running node keeps trying seeds that do not answer (a fresh node each attempt: a
  // failed start releases everything), with backoff, and says so.
  for (let attempt = 1; ; attempt++) {
    const node = makeNode();
    try {
      return await runStartedNode(node, shutdown, { ...opts, emit });
    } catch (err) {
      if (!opts.retry || !isDpcError(err, 'DPC_DHT_BOOTSTRAP') || shutdown.signal.aborted) throw err;
      const delayMs = SEED_RETRY_BACKOFF_MS[Math.min(attempt - 1, SEED_RETRY_BACKOFF_MS.length - 1)] as number;
      emit(
        'retrying',
        { reason: 'seeds-unreachable', attempt, delay_ms: delayMs, seeds: node.opts.config.dht.seed_nodes, error: err },
        `${(err as Error).message}; retrying in ${delayMs / 1000} s (attempt ${attempt + 1}; Ctrl-C to stop)`,
      );
      await sleep(delayMs, shutdown.signal);
      if (shutdown.signal.aborted) {
        emit('stopped', {}, 'stopped');
        return 0;
      }
    }
  }
}

async function runStartedNode(
  node: DpcNode,
  shutdown: AbortController,
  opts: { json: boolean; logger: Logger; emit: (event: string, data: Record<string, unknown>, text: string) => void },
): Promise<number> {
  const { emit } = opts;
  node.on('listening', (e) =>
    emit('listening', e, `listening as ${e.nodeId} on ${e.tcp.join(', ')} (dht ${e.dht})${e.hub ? ` (hub ${e.hub})` : ''}`),
  );
  node.on('connected', (e) =>
    emit(
      'connected',
      { peerId: e.peerId, tier: e.tier, ms: Math.round(e.ms) },
      `connected to ${e.peerId} via ${e.tier} in ${Math.round(e.ms)} ms`,
    ),
  );
  node.on('accepted', (e) =>
    emit('connected', { peerId: e.peerId, tier: e.tier, ms: 0, inbound: true }, `${e.peerId} connected via ${e.tier}`),
  );
  node.on('disconnected', (e) =>
    emit(
      'disconnected',
      { peerId: e.peerId, tier: e.tier, ...(e.reason !== undefined && { reason: e.reason }) },
      `${e.peerId} closed the session over ${e.tier}${e.reason ? ` (${e.reason})` : ''}`,
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
  const dataDir = node.opts.dataDir;
  // Before start, so the dashboard and /metrics see every connect.
  const monitor = node.opts.config.api.enabled ? new NodeMonitor(node) : undefined;
  let api: ApiServer | undefined;
  let wroteNodeFile = false;
  try {
    // On a terminal a slow join says it is still at work (with --json the events say enough).
    const t0 = performance.now();
    const ticker =
      !opts.json && process.stderr.isTTY
        ? setInterval(() => {
            const seeds = node.opts.config.dht.seed_nodes;
            process.stderr.write(
              `… still starting after ${Math.round((performance.now() - t0) / 1000)} s: joining the DHT through ${seeds.join(', ') || 'no seeds'} (Ctrl-C to stop)\n`,
            );
          }, START_TICK_MS)
        : undefined;
    try {
      await node.start({ signal: shutdown.signal });
    } catch (err) {
      if (shutdown.signal.aborted) {
        emit('stopped', {}, 'stopped during start-up');
        return 0;
      }
      throw err;
    } finally {
      clearInterval(ticker);
    }
    const cfg = node.opts.config.api;
    if (cfg.enabled) {
      api = await startApi(node, {
        host: cfg.host,
        port: cfg.port,
        token: await loadApiToken(dataDir),
        logger: opts.logger,
        onStop: () => shutdown.abort(),
        ...(monitor && { monitor }),
      }).catch((err: Error & { code?: string }) => {
        throw Object.assign(new Error(`[api] port = ${cfg.port}: ${err.message}; choose another port in the config`, { cause: err }), {
          code: 'DPC_PORT_IN_USE',
        });
      });
    }
    wroteNodeFile = true;
    await writeNodeFile(dataDir, { pid: process.pid, nodeId: node.nodeId, api: api?.url ?? null, startedAt: new Date().toISOString() });
    // After node.json: a script that saw this event can use send/status/peers/stop.
    if (api) emit('api', { url: api.url }, `WebSocket API on ${api.url} (token in ${dataDir}/api-token)`);
    if (api) emitDashboard(emit, api, dataDir);
    if (!shutdown.signal.aborted) await new Promise((r) => shutdown.signal.addEventListener('abort', r, { once: true }));
    opts.logger.info('shutting down');
  } finally {
    if (wroteNodeFile) await removeNodeFile(dataDir).catch(() => {});
    await api?.close();
    monitor?.close();
    await node.stop();
  }
  emit('stopped', {}, 'stopped');
  return 0;
}

async function runSend(
  node: DpcNode,
  opts: { to: string; text: string; json: boolean; logger: Logger; timeoutMs: number; lingerMs: number; tiers?: TierName[] },
): Promise<number> {
  const signal = AbortSignal.timeout(opts.timeoutMs);
  let accepted: number | undefined;
  // What send is waiting for: progress events with --json (stdout), lines on stderr otherwise.
  // The result is the last line: outcomes of racing attempts still ending after it (a loser's
  // timeout) are not printed.
  let finished = false;
  const progress = (step: string, data: Record<string, unknown>, text: string) => {
    if (finished) return;
    if (opts.json) process.stdout.write(`${JSON.stringify({ event: 'progress', step, ...data }, jsonReplacer)}\n`);
    else process.stderr.write(`… ${text}\n`);
  };
  try {
    const seeds = node.opts.config.dht.seed_nodes;
    progress('joining', { seeds }, seeds.length ? `joining the DHT through ${seeds.join(', ')}` : 'starting (no [dht] seed_nodes)');
    await node.start({ signal });
    const r = await node.send(opts.to, opts.text, {
      signal,
      ...(opts.tiers && { tiers: opts.tiers }),
      onProgress: (e) => {
        if (e.step === 'lookup') progress('lookup', { to: e.peerId }, `looking up ${e.peerId} in the DHT`);
        else if (e.step === 'found')
          progress('found', { to: e.peerId, tiers: e.tiers }, `found its record; trying ${e.tiers.join(', ') || 'no tier'}`);
        else if (e.step === 'trying') progress('trying', { tier: e.tier }, `trying ${e.tier}`);
        else if (e.step === 'outcome') progress('outcome', { ...e.outcome }, describeOutcome(e.outcome));
        else progress('deferred', { to: e.peerId }, 'no live path: queued for deferred delivery (tier 6)');
      },
      onAccepted: (seq) => {
        accepted = seq;
        progress('waiting', { seq }, `in the outbox (seq ${seq}); waiting for ${opts.to} to acknowledge`);
      },
    });
    finished = true;
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
    finished = true;
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
    const hint = e.code === 'DPC_CONNECT_FAILED' ? await loopbackHint(node, opts.to) : undefined;
    out(
      opts.json,
      {
        event: 'failed',
        to: opts.to,
        error: { code: e.code, message: e.message, ...(e.tiers ? { tiers: e.tiers } : {}), ...(hint && { hint }) },
      },
      `not delivered: ${e.message}${hint ? `\nhint: ${hint}` : ''}`,
    );
    return 1;
  } finally {
    await node.stop();
  }
}

/**
 * Why a connect failed when the peer announces only loopback addresses and this node was not
 * started with --allow-loopback (loopback candidates are never dialled then): a hint, else undefined.
 */
async function loopbackHint(node: DpcNode, to: string): Promise<string | undefined> {
  if (node.opts.allowLoopback || !node.dht) return undefined;
  const record = await node.dht.findPeer(to, { signal: AbortSignal.timeout(3000) }).catch(() => undefined);
  if (!record) return undefined;
  const b = record.body;
  const ips = [...b.ipv6, ...b.ipv4_local, ...b.ipv4_external].map((a) => hostPort(a.ip, a.port));
  const loopback = (ip: string) => ip.startsWith('127.') || ip.startsWith('[::1]') || ip.startsWith('[::ffff:127.');
  if (ips.length === 0 || !ips.every(loopback)) return undefined;
  return `${to} announces only loopback addresses (${[...new Set(ips)].join(', ')}), which are dialled only with --allow-loopback: add --allow-loopback to send to a node on this machine`;
}
