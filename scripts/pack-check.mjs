#!/usr/bin/env node
// Every publishable package: `npm pack`, check what the tarball holds (no build state such as
// .tsbuildinfo, every source map's sources inside the tarball), install the tarballs into an
// empty folder, import each.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, resolve } from 'node:path';

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
  const problems = tarballs.flatMap((t) => tarballProblems(t));
  if (problems.length > 0) {
    for (const p of problems) console.error(`pack check: ${p}`);
    throw new Error(`pack check: ${problems.length} problem(s) in the tarballs`);
  }
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

/**
 * What a tarball must not hold: build state (`.tsbuildinfo`), and source maps whose sources are
 * not in the tarball (a debugger or editor following them finds nothing).
 */
function tarballProblems(tarball) {
  const name = tarball.split('/').pop();
  const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((f) => f.replace(/^package\//, ''));
  const have = new Set(files);
  const out = [];
  for (const f of files) {
    if (f.endsWith('.tsbuildinfo')) out.push(`${name}: ships build state ${f}`);
    if (!f.endsWith('.map')) continue;
    const map = JSON.parse(execFileSync('tar', ['-xzOf', tarball, `package/${f}`], { encoding: 'utf8' }));
    (map.sources ?? []).forEach((src, i) => {
      if (map.sourcesContent?.[i] != null) return;
      const target = posix.normalize(posix.join(dirname(f), map.sourceRoot ?? '', src));
      if (!have.has(target)) out.push(`${name}: ${f} points to ${target}, which the tarball does not hold`);
    });
  }
  return out;
}
