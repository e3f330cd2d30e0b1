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
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
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
