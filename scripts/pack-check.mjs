#!/usr/bin/env node
// Every publishable package: `npm pack`, install the tarballs into an empty folder, import each.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const dirs = ['packages', 'apps'].flatMap((d) => {
  try {
    return readdirSync(join(root, d)).map((n) => join(root, d, n));
  } catch {
    return [];
  }
});
const pkgs = dirs
  .map((dir) => ({ dir, pkg: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }))
  .filter(({ pkg }) => !pkg.private);
const work = mkdtempSync(join(tmpdir(), 'dpc-pack-'));
try {
  const tarballs = pkgs.map(({ dir }) => {
    const out = execFileSync('npm', ['pack', '--silent', '--pack-destination', work], { cwd: dir, encoding: 'utf8' })
      .trim()
      .split('\n')
      .pop();
    return join(work, out);
  });
  const app = join(work, 'app');
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'pack-check', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs], { cwd: app, stdio: 'inherit' });
  for (const { pkg } of pkgs) {
    const code = `const m = await import(${JSON.stringify(pkg.name)}); if (Object.keys(m).length === 0) throw new Error('no exports'); console.log('imported ${pkg.name}:', Object.keys(m).length, 'exports');`;
    writeFileSync(join(app, 'check.mjs'), code);
    execFileSync('node', ['check.mjs'], { cwd: app, stdio: 'inherit' });
  }
  console.log(`pack check: ${pkgs.length} packages pack, install and import`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
