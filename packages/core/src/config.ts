import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { parse as parseIni } from 'ini';
import { ConfigError } from './errors.js';

// Every section and key of the spec with its documented default, plus [dht] and [hub].
// Time values are in seconds, as in the spec's INI files.

type Kind =
  | { t: 'bool' }
  | { t: 'int'; min?: number; max?: number }
  | { t: 'number'; min?: number; max?: number }
  | { t: 'string' }
  | { t: 'enum'; values: readonly string[] }
  | { t: 'list'; item?: 'hostport' }
  | { t: 'host' }
  | { t: 'address' };

interface KeySpec<T> {
  kind: Kind;
  default: T;
  doc: string;
}
const bool = (d: boolean, doc: string): KeySpec<boolean> => ({ kind: { t: 'bool' }, default: d, doc });
const int = (d: number, doc: string, min = 0, max = Number.MAX_SAFE_INTEGER): KeySpec<number> => ({
  kind: { t: 'int', min, max },
  default: d,
  doc,
});
const num = (d: number, doc: string, min = 0, max = Number.MAX_VALUE): KeySpec<number> => ({
  kind: { t: 'number', min, max },
  default: d,
  doc,
});
const secs = (d: number, doc: string) => num(d, `${doc} (seconds)`, 0, 86_400 * 365);
const str = (d: string, doc: string): KeySpec<string> => ({ kind: { t: 'string' }, default: d, doc });
const list = (d: string[], doc: string): KeySpec<string[]> => ({ kind: { t: 'list' }, default: d, doc });
const oneOf = <const V extends string>(values: readonly V[], d: V, doc: string): KeySpec<V> => ({
  kind: { t: 'enum', values },
  default: d,
  doc,
});
const port = (d: number, doc: string) => int(d, doc, 0, 65535);

/** The config schema: section → key → type, default and meaning. */
export const CONFIG_SCHEMA = {
  connection: {
    enable_ipv6: bool(true, 'try tier 1, IPv6 direct'),
    ipv6_timeout: secs(10, 'tier 1 deadline'),
    enable_ipv4: bool(true, 'try tier 2, IPv4 direct'),
    ipv4_timeout: secs(10, 'tier 2 deadline'),
    enable_hub_webrtc: bool(true, 'try tier 3, WebRTC via the Hub'),
    webrtc_timeout: secs(30, 'tier 3 deadline'),
    // The spec defaults this to false only because its UDP path was unencrypted; dpc runs
    // TLS 1.3 over the punched path, so the tier is on by default.
    enable_hole_punching: bool(true, 'try tier 4, DHT-coordinated UDP hole punching'),
    hole_punch_timeout: secs(15, 'tier 4 deadline'),
    enable_relays: bool(true, 'try tier 5, volunteer relays'),
    relay_timeout: secs(20, 'tier 5 deadline'),
    enable_gossip: bool(true, 'fall back to tier 6, gossip store-and-forward'),
    gossip_timeout: secs(5, 'how long to wait before accepting gossip'),
    mode: oneOf(['racing', 'sequential'] as const, 'racing', 'racing (staggered, Happy-Eyeballs style) or sequential (the spec)'),
    // 0 would fail every connect at once: at least a tenth of a second.
    total_timeout: num(90, 'deadline for a whole connect() (seconds)', 0.1, 86_400 * 365),
    race_stagger: secs(0.25, 'racing mode: delay between tier starts'),
    race_grace: secs(0.3, 'racing mode: how long a better tier may still win after a worse one succeeded'),
  },
  p2p: {
    listen_port: port(8888, 'TCP port of the direct listener'),
    listen_host: { kind: { t: 'host' }, default: 'dual', doc: "'dual' (IPv6 and IPv4) or one address" } as KeySpec<string>,
    external_address: {
      kind: { t: 'address' },
      default: '',
      doc: 'address to announce: IPv4 `a.b.c.d[:port]` for tier 2 (e.g. a port forward; default: learned from DHT peers), or IPv6 `[2001:db8::1]:port` or bare for tier 1',
    } as KeySpec<string>,
  },
  webrtc: {
    stun_servers: list(['stun:stun.l.google.com:19302'], 'STUN server URLs, comma separated'),
  },
  turn: {
    username: str('', 'TURN username'),
    credential: str('', 'TURN password'),
    servers: list([], 'TURN server URLs, comma separated'),
  },
  hole_punch: {
    udp_punch_port: port(8890, 'UDP port used for punching'),
    nat_detection_enabled: bool(true, 'detect NAT type via DHT peers'),
    stun_timeout: secs(5, 'reflexive address discovery deadline'),
    punch_attempts: int(3, 'punch rounds', 1, 100),
    birthday_timeout: secs(30, 'tier 4 deadline of a birthday punch (cone ↔ symmetric), instead of hole_punch_timeout when longer'),
  },
  relay: {
    enabled: bool(true, 'use relays as a client'),
    prefer_region: str('', 'prefer relays of this region'),
    cache_timeout: secs(300, 'how long relay offers are cached'),
    volunteer: bool(false, 'offer this node as a relay'),
    max_peers: int(20, 'relay sessions when volunteering', 0, 1_000_000),
    bandwidth_limit_mbps: num(50, 'relay bandwidth cap (Mbit/s)'),
    region: str('', 'region announced in the relay offer'),
    port: port(8891, 'TCP port of the relay service when volunteering (0 picks a free one)'),
    public_ip: str('', 'address announced in the relay offer (default: the external address learned from the DHT)'),
    reserve: oneOf(['auto', 'always', 'never'] as const, 'auto', 'keep standing reservations with relays: auto = when behind NAT'),
    keepalive: secs(25, 'ping period of reserved relay links; a failed ping takes the reservation again'),
  },
  gossip: {
    enabled: bool(true, 'take part in gossip'),
    max_hops: int(8, 'hop limit (the spec says 5; keyspace-scoped routing needs about log2(nodes) hops, so 8)', 0, 64),
    fanout: int(3, 'peers each message is forwarded to (epidemic mode, replicas = 0)', 1, 64),
    replicas: int(2, "copies kept by the nodes closest to the destination in the DHT keyspace (0: the spec's epidemic forwarding)", 0, 16),
    ttl_seconds: int(86_400, 'message lifetime (seconds)', 1),
    sync_interval: secs(300, 'anti-entropy period'),
    cleanup_interval: secs(600, 'expired-message sweep period'),
    priority: oneOf(['low', 'normal', 'high'] as const, 'normal', 'gossip message priority'),
  },
  dht: {
    port: port(8889, 'UDP port of the DHT'),
    host: {
      kind: { t: 'host' },
      default: 'dual',
      doc: "'dual' (IPv6 and IPv4 on one socket) or one address to bind (127.0.0.1 = loopback only; an IPv6 address = IPv6 only)",
    } as KeySpec<string>,
    k: int(20, 'bucket size', 1, 256),
    alpha: int(3, 'lookup parallelism', 1, 64),
    bootstrap_timeout: secs(10, 'deadline for joining via the seeds'),
    lookup_timeout: secs(10, 'deadline for one lookup'),
    bucket_refresh_interval: secs(3600, 'bucket refresh period'),
    announce_interval: secs(1800, 'endpoint record republish period'),
    seed_nodes: {
      kind: { t: 'list', item: 'hostport' },
      default: [],
      doc: 'host:port of bootstrap nodes, comma separated ([v6]:port for IPv6)',
    } as KeySpec<string[]>,
  },
  hub: {
    url: str('', 'Hub WebSocket URL (empty: no Hub); on a node that serves a Hub, the URL nodes dial, named in its login challenges'),
    auto_connect: bool(true, 'connect to the Hub on start'),
    serve: bool(false, 'run a Hub in this node'),
    host: { kind: { t: 'host' }, default: '0.0.0.0', doc: 'Hub bind address' } as KeySpec<string>,
    port: port(8886, 'Hub WebSocket port (0 picks a free one)'),
    redis_url: str('', 'Redis shared by several Hub instances (empty: one instance)'),
    cluster_secret: str(
      '',
      'with redis_url: secret shared by every Hub instance, authenticating their messages through Redis (HMAC-SHA256, at least 16 characters)',
    ),
    turn_secret: str('', "coturn's static-auth-secret: the Hub hands out TURN credentials in coturn's REST format"),
    turn_servers: list([], 'TURN URLs the Hub hands out with those credentials, comma separated'),
    turn_ttl: secs(600, 'lifetime of the TURN credentials the Hub hands out'),
    tls_cert: str('', 'serve wss://: PEM file of the Hub certificate (chain); with tls_key'),
    tls_key: str('', 'serve wss://: PEM file of the Hub private key; with tls_cert'),
    ca: str('', 'PEM file of the CA that signed a wss:// Hub certificate (a private CA; empty: the system CAs)'),
  },
  api: {
    enabled: bool(true, 'serve the local WebSocket API (stats, sessions, send, events)'),
    host: { kind: { t: 'host' }, default: '127.0.0.1', doc: 'API bind address (keep it on loopback)' } as KeySpec<string>,
    port: port(8887, 'API TCP port (0 picks a free one)'),
  },
  log: {
    level: oneOf(['debug', 'info', 'warn', 'error'] as const, 'info', 'log level'),
    json: bool(false, 'log JSON lines instead of text'),
  },
} as const;

type Schema = typeof CONFIG_SCHEMA;
type ValueOf<S> = S extends KeySpec<infer T> ? T : never;
/** The typed, validated configuration. */
export type DpcConfig = { -readonly [Sec in keyof Schema]: { -readonly [K in keyof Schema[Sec]]: ValueOf<Schema[Sec][K]> } };
export type ConfigSection = keyof DpcConfig;

export interface LoadConfigOptions {
  /** Environment to read `DPC_<SECTION>_<KEY>` overrides from. Default process.env; pass {} to ignore. */
  env?: Record<string, string | undefined>;
  /** Receives warnings (unknown sections and keys). Default: collected only. */
  onWarning?: (message: string) => void;
}

export interface LoadedConfig {
  config: DpcConfig;
  warnings: string[];
}

/** The configuration with every default. */
export function defaultConfig(): DpcConfig {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [sec, keys] of Object.entries(CONFIG_SCHEMA)) {
    out[sec] = {};
    for (const [key, spec] of Object.entries(keys)) {
      const d = (spec as KeySpec<unknown>).default;
      (out[sec] as Record<string, unknown>)[key] = Array.isArray(d) ? [...d] : d;
    }
  }
  return out as DpcConfig;
}

/** Edit distance (insert, delete, substitute), for "did you mean". */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length] as number;
}

/** The closest of `names` to a misspelt `name` (at most a third of its letters off), as "; did you mean X?". */
export function didYouMean(name: string, names: Iterable<string>): string {
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const n of names) {
    const d = editDistance(name.toLowerCase(), n);
    if (d < bestD) {
      best = n;
      bestD = d;
    }
  }
  return best ? `; did you mean ${best}?` : '';
}

function parseValue(raw: unknown, spec: KeySpec<unknown>, where: { file?: string; section: string; key: string }): unknown {
  const text = typeof raw === 'string' ? raw.trim() : raw;
  const bad = (expected: string): never => {
    throw new ConfigError({ ...where, value: String(raw), expected });
  };
  const k = spec.kind;
  switch (k.t) {
    case 'bool':
      if (text === true || text === false) return text;
      if (typeof text === 'string') {
        const l = text.toLowerCase();
        if (['true', 'yes', 'on', '1'].includes(l)) return true;
        if (['false', 'no', 'off', '0'].includes(l)) return false;
      }
      return bad('true or false');
    case 'int':
    case 'number': {
      if (typeof text !== 'string' || text === '' || !/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) {
        return bad(k.t === 'int' ? 'an integer' : 'a number');
      }
      const n = Number(text);
      if (k.t === 'int' && !Number.isInteger(n)) bad('an integer');
      if ((k.min !== undefined && n < k.min) || (k.max !== undefined && n > k.max)) {
        bad(`a ${k.t === 'int' ? 'whole ' : ''}number from ${k.min} to ${k.max}`);
      }
      return n;
    }
    case 'string':
      return typeof text === 'string' || typeof text === 'boolean' ? String(text) : bad('text');
    case 'enum':
      return typeof text === 'string' && k.values.includes(text) ? text : bad(`one of ${k.values.join(', ')}`);
    case 'list':
      if (typeof text !== 'string') return bad('a comma-separated list');
      {
        const items = text
          .split(',')
          .map((x) => x.trim())
          .filter((x) => x.length > 0);
        if (k.item === 'hostport') {
          for (const item of items)
            if (!isHostPort(item))
              throw new ConfigError({ ...where, value: item, expected: 'host:port ([IPv6]:port for IPv6), comma separated' });
        }
        return items;
      }
    case 'host':
      if (text === 'dual') return text;
      if (typeof text === 'string' && isIP(text) !== 0) return text;
      return bad("'dual' or an IP address");
    case 'address':
      if (text === '' || (typeof text === 'string' && parseExternalAddress(text))) return text;
      return bad('an IPv4 address[:port], an IPv6 address, or [IPv6]:port');
  }
}

/** `host:port` with a port 1–65535 (`[v6]:port` for IPv6), as `[dht] seed_nodes` takes them. */
function isHostPort(text: string): boolean {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]\s]+):(\d{1,5})$/.exec(text);
  if (!m) return false;
  if (text.startsWith('[') && isIP(m[1] as string) !== 6) return false;
  const port = Number(m[2]);
  return port >= 1 && port <= 65535;
}

/** `host:port` for people and logs, an IPv6 host in brackets: `[::1]:41503`, `127.0.0.1:41503`. */
export function hostPort(host: string, port: number | string): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** `[p2p] external_address` taken apart; `port` undefined when the listen port is meant. */
export interface ExternalAddress {
  family: 4 | 6;
  ip: string;
  port?: number;
}

/**
 * Parses `[p2p] external_address`: `198.51.100.7`, `198.51.100.7:9000`, `2001:db8::1` (bare) or
 * `[2001:db8::1]:9000`; undefined when it is none of these (or the port is out of range).
 */
export function parseExternalAddress(value: string): ExternalAddress | undefined {
  const v = value.trim();
  const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(v) ?? /^(\d+\.\d+\.\d+\.\d+)(?::(\d{1,5}))?$/.exec(v) ?? /^([0-9a-fA-F:.]+)()$/.exec(v);
  if (!m) return undefined;
  const ip = m[1] as string;
  const family = isIP(ip);
  if (family === 0) return undefined;
  if (family === 4 && v.startsWith('[')) return undefined;
  const port = m[2] ? Number(m[2]) : undefined;
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  return { family: family as 4 | 6, ip, ...(port !== undefined && { port }) };
}

/**
 * Builds a config from parsed INI sections (as the `ini` package returns them) and the
 * environment. Throws ConfigError naming file, section, key, value and what was expected.
 */
export function configFromObject(parsed: Record<string, unknown>, opts: LoadConfigOptions & { file?: string } = {}): LoadedConfig {
  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    opts.onWarning?.(m);
  };
  const file = opts.file;
  const config = defaultConfig() as unknown as Record<string, Record<string, unknown>>;
  const schema = CONFIG_SCHEMA as unknown as Record<string, Record<string, KeySpec<unknown>>>;
  for (const [section, body] of Object.entries(parsed)) {
    if (!Object.hasOwn(schema, section)) {
      warn(
        `${file ?? 'config'}: unknown section [${section}] ignored${didYouMean(section, Object.keys(schema)).replace(/mean (\S+)\?$/, 'mean [$1]?')}`,
      );
      continue;
    }
    if (typeof body !== 'object' || body === null) {
      warn(`${file ?? 'config'}: key ${section} outside any section ignored`);
      continue;
    }
    for (const [key, raw] of Object.entries(body)) {
      const spec = schema[section]?.[key];
      if (!spec) {
        warn(`${file ?? 'config'}: unknown key ${key} in [${section}] ignored${didYouMean(key, Object.keys(schema[section] ?? {}))}`);
        continue;
      }
      (config[section] as Record<string, unknown>)[key] = parseValue(raw, spec, { ...(file && { file }), section, key });
    }
  }
  const env = opts.env ?? process.env;
  for (const [section, keys] of Object.entries(schema)) {
    for (const [key, spec] of Object.entries(keys)) {
      const name = `DPC_${section}_${key}`.toUpperCase();
      const v = env[name];
      if (v !== undefined) {
        (config[section] as Record<string, unknown>)[key] = parseValue(v, spec, { file: `environment ${name}`, section, key });
      }
    }
  }
  return { config: config as unknown as DpcConfig, warnings };
}

/** Parses INI text (the `ini` package) into a validated config. */
export function parseConfig(text: string, opts: LoadConfigOptions & { file?: string } = {}): LoadedConfig {
  // The ini package reads `[p2p` (no closing bracket) as a key and goes on with the previous
  // section: the node would start on defaults. A malformed section header is an error.
  const lines = text.split(/\r?\n/);
  for (const [i, line] of lines.entries()) {
    const t = line.trim();
    if (t.startsWith('[') && !/^\[[^[\]]+\]\s*$/.test(line)) {
      throw new ConfigError(
        { ...(opts.file && { file: opts.file }) },
        `${opts.file ?? 'config'}:${i + 1}: malformed section header ${JSON.stringify(t)}, expected [section] alone on its line`,
      );
    }
    // The ini package reads a line without '=' as `line = true`: a typo would be an unknown key
    // (a warning) or, worse, a boolean set by accident. A malformed line is an error.
    if (t !== '' && !t.startsWith('[') && !t.startsWith(';') && !t.startsWith('#') && !t.includes('=')) {
      throw new ConfigError(
        { ...(opts.file && { file: opts.file }) },
        `${opts.file ?? 'config'}:${i + 1}: malformed line ${JSON.stringify(t)}, expected key = value, [section], or a comment (; or #)`,
      );
    }
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = parseIni(text) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(
      { ...(opts.file && { file: opts.file }) },
      `${opts.file ?? 'config'}: not a valid INI file: ${(err as Error).message}`,
    );
  }
  return configFromObject(parsed, opts);
}

/** Reads and validates an INI config file. A missing file is a ConfigError naming it. */
export async function loadConfig(file: string, opts: LoadConfigOptions = {}): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError({ file }, `${file}: cannot read config file (${code === 'ENOENT' ? 'no such file' : code})`);
  }
  return parseConfig(text, { ...opts, file });
}

/** Seconds (as in the INI) to milliseconds. */
export const secondsToMs = (s: number): number => Math.round(s * 1000);
