#!/usr/bin/env node
import { isDpcError } from '@dpc/core';
import { main, UsageError } from './cli.js';

const json = process.argv.includes('--json');
/** Codes of usage and configuration problems: exit status 2. */
const USAGE_CODES = new Set(['DPC_CONFIG', 'DPC_API_DISABLED']);

function fail(err: unknown, code: string | undefined, message: string, exit: number, hint = ''): void {
  // In --json mode a fatal error is an `error` event on stdout too, so scripts see it.
  if (json) process.stdout.write(`${JSON.stringify({ event: 'error', fatal: true, error: { code: code ?? null, message } })}\n`);
  process.stderr.write(`dpc-node: ${message}${hint}\n`);
  process.exitCode = exit;
  void err;
  exitSoon();
}

/**
 * After a command has finished (and the node stopped, its store closed), a library timer left
 * behind must not keep the process alive: werift keeps refreshing a TURN allocation for minutes
 * after its connection closed. The process exits on its own when nothing is left; otherwise after
 * this grace period.
 */
const EXIT_GRACE_MS = 1_000;

function exitSoon(): void {
  setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
}

// Until the command settles the process stays up. The awaited calls hold it themselves
// (ConnectionOrchestrator.connect / stop and PeerSession.send keep a ref'd timer until they
// settle, as the tiers' sockets and timers are unref'd); this is the backstop for whatever else a
// command awaits on unref'd handles only, which would otherwise end with exit 0 and no result.
const running = setInterval(() => {}, 60_000);

main(process.argv.slice(2))
  .finally(() => clearInterval(running))
  .then(
    (code) => {
      process.exitCode = code;
      exitSoon();
    },
    (err: unknown) => {
      const e = err as Error & { code?: string };
      if (err instanceof UsageError || e?.code?.startsWith('ERR_PARSE_ARGS')) {
        fail(err, 'DPC_USAGE', e.message, 2, `\nTry 'dpc-node ${process.argv[2] ?? ''} --help'.`);
      } else if (isDpcError(err, 'DPC_CONFIG')) {
        fail(err, e.code, `config error: ${e.message}`, 2);
      } else if (isDpcError(err) && USAGE_CODES.has(e.code as string)) {
        fail(err, e.code, e.message, 2);
      } else if (isDpcError(err)) {
        // A typed error is the message the user needs; the stack is for bugs.
        fail(err, e.code, `${e.message} (${e.code})`, 1);
      } else if (typeof e?.code === 'string' && /^E[A-Z]+$/.test(e.code) && 'syscall' in e) {
        // A system error (EACCES on the data directory, ENOSPC, …): the message names the path.
        fail(err, e.code, e.message, 1);
      } else {
        fail(err, undefined, String(e?.stack ?? err), 1);
      }
    },
  );
