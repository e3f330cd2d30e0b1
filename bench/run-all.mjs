#!/usr/bin/env node
// `npm run bench`: every benchmark, one after the other, each with the command BENCHMARKS.md
// names. Bench-only dependencies (bittorrent-dht, js-libp2p) are installed into bench/ and
// bench/relay/ on first use. The lab benchmark needs root and is skipped (said so) without it.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const run = (cmd, args, cwd = join(here, '..')) => {
  console.log(`\n=== ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd, stdio: 'inherit' });
  if (r.status !== 0) console.log(`(exit ${r.status})`);
  return r.status === 0;
};
const ensureDeps = (dir) => {
  if (!existsSync(join(dir, 'node_modules'))) execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: dir, stdio: 'inherit' });
};

let ok = true;
ok = run('node', ['bench/secure-channel.mjs']) && ok;
ok = run('node', ['bench/gossip-sync.mjs']) && ok;
ensureDeps(here);
ok = run('node', ['--expose-gc', 'bench/dht.mjs', '100', '1000']) && ok;
ensureDeps(join(here, 'relay'));
ok = run('node', ['bench/relay/relay.mjs']) && ok;
ok = run('node', ['bench/hub.mjs', '2000', '20000', '3']) && ok;
if (process.getuid?.() === 0) ok = run('node', ['bench/orchestrator-lab.mjs', '3']) && ok;
else console.log('\n=== bench/orchestrator-lab.mjs skipped: it needs root (network namespaces)');
process.exit(ok ? 0 : 1);
