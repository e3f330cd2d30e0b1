import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { defaultConfig, loadConfig } from '@dpc/core';
import { DEFAULT_RELAY_PORT } from '@dpc/relay';
import { describe, expect, it } from 'vitest';

const repo = resolve(new URL('../../..', import.meta.url).pathname);
const examples = new URL('../examples/', import.meta.url).pathname;
const read = (rel: string) => readFileSync(join(repo, rel), 'utf8');

describe('example configs of dpc-node', () => {
  it('a seed node, a relay volunteer and a peer load without warnings and hold their role', async () => {
    expect(readdirSync(examples).sort()).toEqual(['hub.ini', 'peer.ini', 'relay-volunteer.ini', 'seed-node.ini']);
    const load = async (name: string) => {
      const { config, warnings } = await loadConfig(join(examples, name), { env: {} });
      expect(warnings, name).toEqual([]);
      return config;
    };
    const seed = await load('seed-node.ini');
    expect(seed.dht.seed_nodes).toEqual([]);
    expect(seed.relay.volunteer).toBe(false);
    const relay = await load('relay-volunteer.ini');
    expect(relay.relay).toMatchObject({ volunteer: true, port: 8891, region: 'eu-west' });
    expect(relay.dht.seed_nodes).toEqual(['192.0.2.1:8889']);
    const peer = await load('peer.ini');
    expect(peer.dht.seed_nodes).toEqual(['192.0.2.1:8889', '[2001:db8::1]:8889']);
    expect(peer.relay).toMatchObject({ enabled: true, volunteer: false });
    const hub = await load('hub.ini');
    expect(hub.hub).toMatchObject({
      serve: true,
      port: 8886,
      url: 'wss://hub.example.org:8886/',
      tls_cert: '/etc/dpc/hub-cert.pem',
      tls_key: '/etc/dpc/hub-key.pem',
    });
  });
});

describe('documentation as npm users and readers meet it', () => {
  it('the README links only files inside the repository, the spec included', () => {
    const text = read('README.md');
    expect(text).not.toMatch(/\.\.\/shared|\/work\//);
    const links = [...text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1] as string).filter((l) => !/^[a-z]+:/.test(l));
    expect(links).toContain('docs/spec/connection-fallback.md');
    for (const l of links) {
      const target = resolve(repo, l);
      expect(target.startsWith(`${repo}/`), l).toBe(true);
      expect(existsSync(target), l).toBe(true);
    }
    const spec = read('docs/spec/connection-fallback.md');
    expect(spec).toContain('How dpc differs from this specification');
    expect(spec).toContain('# Connection Fallback Logic - 6-Tier Hierarchy');
  });

  it.each([
    ['packages/core', '@dpc/core'],
    ['packages/dht', '@dpc/dht'],
    ['packages/direct', '@dpc/direct'],
    ['packages/orchestrator', '@dpc/orchestrator'],
    ['packages/relay', '@dpc/relay'],
    ['packages/store', '@dpc/store'],
    ['apps/node', '@dpc/node'],
  ])('%s/README.md says the package is ESM-only and shows its import', (dir, name) => {
    const text = read(`${dir}/README.md`);
    expect(text).toMatch(/ESM only/);
    expect(text).toContain(`from '${name}'`);
    expect(JSON.parse(read(`${dir}/package.json`)).type).toBe('module');
    expect(existsSync(join(repo, dirname(`${dir}/README.md`)))).toBe(true);
  });

  it("the relay README's default port is the config default, and the server's", () => {
    const port = defaultConfig().relay.port;
    expect(DEFAULT_RELAY_PORT).toBe(port);
    const row = read('packages/relay/README.md')
      .split('\n')
      .find((l) => l.startsWith('| `host` / `port`'));
    expect(row).toContain(`\`${port}\``);
  });
});
