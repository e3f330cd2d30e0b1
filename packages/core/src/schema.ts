import { SchemaError } from './errors.js';

/**
 * A tiny schema language for untrusted decoded values. A `Schema<T>` checks a value and
 * returns it typed, or throws a SchemaError naming the path of the first bad field.
 * Validators never allocate in proportion to attacker-chosen sizes beyond the value itself.
 */
export type Schema<T> = (value: unknown, path?: string) => T;
export type Infer<S> = S extends Schema<infer T> ? T : never;

const fail = (path: string, msg: string): never => {
  throw new SchemaError(path, msg);
};
const describe = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : v instanceof Uint8Array ? 'bytes' : typeof v);

export const s = {
  string(opts: { max?: number; min?: number; pattern?: RegExp } = {}): Schema<string> {
    const max = opts.max ?? 4096;
    return (v, p = '') => {
      if (typeof v !== 'string') return fail(p, `expected string, got ${describe(v)}`);
      if (v.length > max) return fail(p, `string longer than ${max}`);
      if (opts.min !== undefined && v.length < opts.min) return fail(p, `string shorter than ${opts.min}`);
      if (opts.pattern && !opts.pattern.test(v)) return fail(p, `does not match ${opts.pattern}`);
      return v;
    };
  },
  number(opts: { min?: number; max?: number; integer?: boolean } = {}): Schema<number> {
    return (v, p = '') => {
      if (typeof v !== 'number' || !Number.isFinite(v)) return fail(p, `expected finite number, got ${describe(v)}`);
      if (opts.integer && !Number.isInteger(v)) return fail(p, 'expected an integer');
      if (opts.min !== undefined && v < opts.min) return fail(p, `below minimum ${opts.min}`);
      if (opts.max !== undefined && v > opts.max) return fail(p, `above maximum ${opts.max}`);
      return v;
    };
  },
  int(opts: { min?: number; max?: number } = {}): Schema<number> {
    return s.number({ ...opts, integer: true });
  },
  boolean(): Schema<boolean> {
    return (v, p = '') => (typeof v === 'boolean' ? v : fail(p, `expected boolean, got ${describe(v)}`));
  },
  bytes(opts: { max?: number; length?: number } = {}): Schema<Uint8Array> {
    const max = opts.max ?? 65536;
    return (v, p = '') => {
      if (!(v instanceof Uint8Array)) return fail(p, `expected bytes, got ${describe(v)}`);
      if (opts.length !== undefined && v.length !== opts.length) return fail(p, `expected ${opts.length} bytes, got ${v.length}`);
      if (v.length > max) return fail(p, `more than ${max} bytes`);
      return v;
    };
  },
  literal<const L extends string | number | boolean>(lit: L): Schema<L> {
    return (v, p = '') => (v === lit ? (v as L) : fail(p, `expected ${JSON.stringify(lit)}`));
  },
  oneOf<const L extends string>(values: readonly L[]): Schema<L> {
    return (v, p = '') =>
      typeof v === 'string' && (values as readonly string[]).includes(v) ? (v as L) : fail(p, `expected one of ${values.join(', ')}`);
  },
  nullable<T>(inner: Schema<T>): Schema<T | null> {
    return (v, p = '') => (v === null ? null : inner(v, p));
  },
  optional<T>(inner: Schema<T>): Schema<T | undefined> {
    return (v, p = '') => (v === undefined ? undefined : inner(v, p));
  },
  array<T>(item: Schema<T>, opts: { max?: number } = {}): Schema<T[]> {
    const max = opts.max ?? 1024;
    return (v, p = '') => {
      if (!Array.isArray(v)) return fail(p, `expected array, got ${describe(v)}`);
      if (v.length > max) return fail(p, `more than ${max} items`);
      return v.map((x, i) => item(x, `${p}[${i}]`));
    };
  },
  /** A string-keyed map with bounded size. */
  record<T>(value: Schema<T>, opts: { max?: number; key?: Schema<string> } = {}): Schema<Record<string, T>> {
    const max = opts.max ?? 1024;
    return (v, p = '') => {
      if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) {
        return fail(p, `expected map, got ${describe(v)}`);
      }
      const keys = Object.keys(v);
      if (keys.length > max) return fail(p, `more than ${max} entries`);
      const out: Record<string, T> = Object.create(null);
      for (const k of keys) {
        opts.key?.(k, `${p}.<key>`);
        out[k] = value((v as Record<string, unknown>)[k], `${p}.${k}`);
      }
      return out;
    };
  },
  /** An object with exactly these fields (unknown fields are rejected). */
  object<Shape extends Record<string, Schema<unknown>>>(
    shape: Shape,
    opts: { allowUnknown?: boolean } = {},
  ): Schema<{ [K in keyof Shape]: Infer<Shape[K]> }> {
    const keys = Object.keys(shape);
    return (v, p = '') => {
      if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) {
        return fail(p, `expected object, got ${describe(v)}`);
      }
      const obj = v as Record<string, unknown>;
      if (!opts.allowUnknown) {
        for (const k of Object.keys(obj)) if (!(k in shape)) fail(`${p}.${k}`, 'unknown field');
      }
      const out: Record<string, unknown> = {};
      for (const k of keys) {
        const r = (shape[k] as Schema<unknown>)(obj[k], p ? `${p}.${k}` : k);
        if (r !== undefined) out[k] = r;
      }
      return out as { [K in keyof Shape]: Infer<Shape[K]> };
    };
  },
  /** A tagged union on field `tag`. */
  union<const Tag extends string, M extends Record<string, Schema<unknown>>>(tag: Tag, members: M): Schema<Infer<M[keyof M]>> {
    return (v, p = '') => {
      if (typeof v !== 'object' || v === null) return fail(p, `expected object, got ${describe(v)}`);
      const t = (v as Record<string, unknown>)[tag];
      if (typeof t !== 'string' || !Object.hasOwn(members, t)) return fail(`${p}.${tag}`, `unknown ${tag} ${JSON.stringify(t)}`);
      return (members[t] as Schema<unknown>)(v, p) as Infer<M[keyof M]>;
    };
  },
  unknown(): Schema<unknown> {
    return (v) => v;
  },
};
