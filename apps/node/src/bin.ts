#!/usr/bin/env node
import { isDpcError } from '@dpc/core';
import { main, UsageError } from './cli.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`dpc-node: ${(err as Error).message}\nTry 'dpc-node ${process.argv[2] ?? ''} --help'.\n`);
      process.exitCode = 2;
    } else if (isDpcError(err, 'DPC_CONFIG')) {
      process.stderr.write(`dpc-node: config error: ${(err as Error).message}\n`);
      process.exitCode = 2;
    } else if (isDpcError(err)) {
      // A typed error is the message the user needs; the stack is for bugs.
      process.stderr.write(`dpc-node: ${(err as Error).message} (${(err as { code: string }).code})\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`dpc-node: ${(err as Error)?.stack ?? err}\n`);
      process.exitCode = 1;
    }
  },
);
