import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_SCHEMA, defaultConfig, loadConfig, parseConfig, parseExternalAddress } from '@dpc/core';
import { describe, expect, it } from 'vitest';

const examples = new URL('../examples/', import.meta.url);

describe('config', () => {
  it('holds every section of the spec with its documented defaults', () => {
    const c = defaultConfig();
    expect(Object.keys(c).sort()).toEqual([
      'api',
      'connection',
      'dht',
      'gossip',
      'hole_punch',
      'hub',
      'log',
      'p2p',
      'relay',
      'turn',
      'webrtc',
    ]);
    expect(c.connection).toMatchObject({
      enable_ipv6: true,
      ipv6_timeout: 10,
      enable_ipv4: true,
      ipv4_timeout: 10,
      webrtc_timeout: 30,
      hole_punch_timeout: 15,
      relay_timeout: 20,
      gossip_timeout: 5,
    });
    expect(c.p2p).toEqual({ listen_port: 8888, listen_host: 'dual', external_address: '' });
    expect(c.hole_punch).toEqual({
      udp_punch_port: 8890,
      nat_detection_enabled: true,
      stun_timeout: 5,
      punch_attempts: 3,
      birthday_timeout: 30,
    });
    expect(c.relay).toMatchObject({ enabled: true, cache_timeout: 300, volunteer: false, bandwidth_limit_mbps: 50 });
    expect(c.gossip).toEqual({
      enabled: true,
      max_hops: 8,
      fanout: 3,
      replicas: 2,
      ttl_seconds: 86400,
      sync_interval: 300,
      cleanup_interval: 600,
      priority: 'normal',
    });
    expect(c.dht).toMatchObject({ port: 8889, host: 'dual', k: 20, alpha: 3, seed_nodes: [] });
    expect(c.hub).toMatchObject({ url: '', auto_connect: true, serve: false, port: 8886, turn_secret: '', redis_url: '' });
  });

  it.each(['1-local-network.ini', '2-internet-with-hub.ini', '3-offline-hub-independent.ini', '4-disaster-resilience.ini'])(
    'loads the spec example %s cleanly',
    async (name) => {
      const { config, warnings } = await loadConfig(new URL(name, examples).pathname, { env: {} });
      expect(warnings).toEqual([]);
      expect(config.connection.enable_ipv6).toBe(true);
      if (name.startsWith('1')) expect(config.connection.enable_gossip).toBe(false);
      if (name.startsWith('4')) {
        expect(config.connection).toMatchObject({ ipv6_timeout: 20, webrtc_timeout: 60, relay_timeout: 40, gossip_timeout: 10 });
      }
    },
  );

  it('parses inline comments, lists and every type', () => {
    const { config } = parseConfig(
      '[p2p]\nlisten_host = 0.0.0.0  # IPv4 only\nlisten_port = 9000\n[dht]\nseed_nodes = 198.51.100.1:8889, 198.51.100.2:8889\n[relay]\nbandwidth_limit_mbps = 12.5\nvolunteer = yes\n',
      { env: {} },
    );
    expect(config.p2p).toMatchObject({ listen_host: '0.0.0.0', listen_port: 9000 });
    expect(parseConfig('[dht]\nhost = 127.0.0.1\n', { env: {} }).config.dht.host).toBe('127.0.0.1');
    expect(parseConfig('[dht]\nhost = ::1\n', { env: {} }).config.dht.host).toBe('::1');
    expect(config.dht.seed_nodes).toEqual(['198.51.100.1:8889', '198.51.100.2:8889']);
    expect(config.relay.bandwidth_limit_mbps).toBe(12.5);
    expect(config.relay.volunteer).toBe(true);
  });

  it('a bad value names the file, section, key, value and what was expected', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dpc-config-'));
    const file = join(dir, 'bad.ini');
    await writeFile(file, '[connection]\nipv6_timeout = soon\n');
    const err = await loadConfig(file, { env: {} }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'DPC_CONFIG', file, section: 'connection', key: 'ipv6_timeout', value: 'soon' });
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toContain('[connection] ipv6_timeout');
    expect((err as Error).message).toContain('"soon"');
    expect((err as Error).message).toContain('expected a number');
  });

  it.each([
    ['[p2p]\nlisten_port = 70000\n', 'listen_port'],
    ['[p2p]\nlisten_host = everywhere\n', 'listen_host'],
    ['[connection]\nenable_ipv4 = maybe\n', 'enable_ipv4'],
    ['[gossip]\npriority = urgent\n', 'priority'],
    ['[dht]\nk = 2.5\n', 'k'],
    ['[dht]\nhost = localhost\n', 'host'],
    ['[connection]\nrelay_timeout = -1\n', 'relay_timeout'],
  ])('rejects garbage %j', (text, key) => {
    expect(() => parseConfig(text, { env: {}, file: 'x.ini' })).toThrow(expect.objectContaining({ code: 'DPC_CONFIG', key }));
  });

  it('warns about unknown sections and keys without failing', () => {
    const seen: string[] = [];
    const { warnings } = parseConfig('[connection]\nenable_ipv7 = true\n[colour]\nx = 1\n', {
      env: {},
      file: 'w.ini',
      onWarning: (m) => seen.push(m),
    });
    expect(warnings).toHaveLength(2);
    expect(seen).toEqual(warnings);
    expect(warnings[0]).toContain('enable_ipv7');
    expect(warnings[1]).toContain('[colour]');
  });

  it('environment DPC_<SECTION>_<KEY> overrides the file, and is validated too', () => {
    const { config } = parseConfig('[connection]\nipv6_timeout = 3\n', {
      env: { DPC_CONNECTION_IPV6_TIMEOUT: '7', DPC_DHT_SEED_NODES: 'a:1,b:2' },
    });
    expect(config.connection.ipv6_timeout).toBe(7);
    expect(config.dht.seed_nodes).toEqual(['a:1', 'b:2']);
    expect(() => parseConfig('', { env: { DPC_DHT_K: 'many' } })).toThrow(/DPC_DHT_K.*\[dht\] k/);
  });

  it('a missing file is a clear ConfigError', async () => {
    await expect(loadConfig('/nonexistent/dpc.ini')).rejects.toMatchObject({
      code: 'DPC_CONFIG',
      message: expect.stringContaining('no such file'),
    });
  });

  it('every schema key has a default that validates', () => {
    for (const [sec, keys] of Object.entries(CONFIG_SCHEMA)) {
      for (const [key, spec] of Object.entries(keys)) {
        expect(spec.doc, `${sec}.${key}`).toBeTruthy();
      }
    }
  });

  it('external_address takes IPv4[:port], bare IPv6 or [IPv6]:port, and refuses the rest', () => {
    const table: Array<[string, ReturnType<typeof parseExternalAddress>]> = [
      ['198.51.100.7', { family: 4, ip: '198.51.100.7' }],
      ['198.51.100.7:9000', { family: 4, ip: '198.51.100.7', port: 9000 }],
      ['2001:db8::1', { family: 6, ip: '2001:db8::1' }],
      ['[2001:db8::1]', { family: 6, ip: '2001:db8::1' }],
      ['[2001:db8::1]:9000', { family: 6, ip: '2001:db8::1', port: 9000 }],
      ['2001:db8::1:9000', { family: 6, ip: '2001:db8::1:9000' }], // bare: every group is address
      ['[198.51.100.7]:9000', undefined],
      ['198.51.100.7:0', undefined],
      ['198.51.100.7:70000', undefined],
      ['[2001:db8::1]:', undefined],
      ['example.org:9000', undefined],
      ['999.1.1.1', undefined],
    ];
    for (const [v, want] of table) expect(parseExternalAddress(v), v).toEqual(want);
    expect(parseConfig('[p2p]\nexternal_address = [2001:db8::1]:9000\n').config.p2p.external_address).toBe('[2001:db8::1]:9000');
    expect(() => parseConfig('[p2p]\nexternal_address = example.org\n')).toThrow(/external_address/);
  });
});

describe('config mistakes a person makes', () => {
  it('a section header without its closing bracket is an error naming file and line', () => {
    expect(() => parseConfig('[connection]\ntotal_timeout = 5\n[p2p\nlisten_port = 1\n', { file: 'n.ini', env: {} })).toThrow(
      /n\.ini:3: malformed section header "\[p2p", expected \[section\]/,
    );
    // The ini package would read this line as a key too: also an error.
    expect(() => parseConfig('[p2p] ; the listener\nlisten_port = 1\n', { env: {} })).toThrow(/config:1: malformed section header/);
    expect(parseConfig('[p2p]  \nlisten_port = 1\n', { env: {} }).config.p2p.listen_port).toBe(1);
  });

  it('a line that is not key = value, a header or a comment is an error naming file and line', () => {
    expect(() => parseConfig('[p2p]\n; a comment\n# another\n\nthis is not a key value\n', { file: 'n.ini', env: {} })).toThrow(
      /n\.ini:5: malformed line "this is not a key value", expected key = value/,
    );
    expect(() => parseConfig('[relay]\nvolunteer\n', { env: {} })).toThrow(/config:2: malformed line "volunteer"/);
  });

  it('a bad seed names the file, section, key and the bad entry', () => {
    for (const bad of ['nothost', 'example.org', '[::1]', '[10.0.0.1]:9', '::1:8889', 'h:0', 'h:70000']) {
      expect(() => parseConfig(`[dht]\nseed_nodes = 192.0.2.1:8889, ${bad}\n`, { file: 'n.ini', env: {} }), bad).toThrow(
        new RegExp(`n\\.ini \\[dht\\] seed_nodes: invalid value "${bad.replace(/[[\].]/g, '\\$&')}", expected host:port`),
      );
    }
    expect(
      parseConfig('[dht]\nseed_nodes = 192.0.2.1:8889, [2001:db8::1]:8889, seed.example:8889\n', { env: {} }).config.dht.seed_nodes,
    ).toEqual(['192.0.2.1:8889', '[2001:db8::1]:8889', 'seed.example:8889']);
    expect(() => parseConfig('', { file: 'n.ini', env: { DPC_DHT_SEED_NODES: 'zz' } })).toThrow(/environment DPC_DHT_SEED_NODES/);
  });

  it('total_timeout = 0 is rejected', () => {
    expect(() => parseConfig('[connection]\ntotal_timeout = 0\n', { file: 'n.ini', env: {} })).toThrow(/\[connection\] total_timeout/);
    expect(parseConfig('[connection]\ntotal_timeout = 0.5\n', { env: {} }).config.connection.total_timeout).toBe(0.5);
  });

  it('unknown keys and sections get a "did you mean"', () => {
    const { warnings } = parseConfig('[connection]\ntotal_timout = 5\n[p2p]\nlisten_prt = 1\nzzzzzz = 2\n[relays]\nvolunteer = true\n', {
      env: {},
    });
    expect(warnings[0]).toContain('did you mean total_timeout?');
    expect(warnings[1]).toContain('did you mean listen_port?');
    expect(warnings[2]).not.toContain('did you mean');
    expect(warnings[3]).toContain('did you mean [relay]?');
  });
});
