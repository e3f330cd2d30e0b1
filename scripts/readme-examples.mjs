#!/usr/bin/env node
// Runs every README example fenced as ```ts run (or ```js run): types are stripped with
// TypeScript, the code runs as an ES module inside its package folder (so the package's own
// dependencies resolve) with a 30 s limit. Fails when any example throws or hangs.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ts from 'typescript';

const root = resolve(import.meta.dirname, '..');
const dirs = ['packages', 'apps'].flatMap((d) => readdirSync(join(root, d)).map((n) => join(root, d, n)));
let ran = 0;
let failed = 0;
for (const dir of dirs) {
  let md;
  try {
    md = readFileSync(join(dir, 'README.md'), 'utf8');
  } catch {
    continue;
  }
  const blocks = [...md.matchAll(/```(ts|js) run\n([\s\S]*?)```/g)].map((m) => m[2]);
  blocks.forEach((code, i) => {
    const js = ts.transpileModule(code, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
    const file = join(dir, `.readme-example-${i}.mjs`);
    writeFileSync(file, js);
    const r = spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    rmSync(file, { force: true });
    ran++;
    const name = `${dir.slice(root.length + 1)}/README.md example ${i + 1}`;
    if (r.status === 0) console.log(`ok   ${name}`);
    else {
      failed++;
      console.log(`FAIL ${name} (exit ${r.status}${r.signal ? `, ${r.signal}` : ''})\n${r.stdout}\n${r.stderr}`);
    }
  });
}
console.log(`readme examples: ${ran - failed} passed, ${failed} failed`);
process.exit(failed === 0 && ran > 0 ? 0 : 1);
