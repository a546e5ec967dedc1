/**
 * A tiny typed schema for configuration: each key is declared once — its
 * parser (type and validation), default, environment variable and doc line —
 * and the TypeScript type of the whole configuration is inferred from the
 * declarations ({@link Out}). The loader (src/registry/config.ts) reads the
 * tree with {@link readConfig}; the README table and unknown-key checks come
 * from {@link describeKeys}.
 *
 * Three kinds of node:
 * - a **key** ({@link key}, {@link text}, {@link flag}, {@link count},
 *   {@link seconds}, {@link bytes}, {@link oneOf}, {@link list},
 *   {@link localPath}, {@link dataPath}): one settable value;
 * - a **section** ({@link section}): named children, optionally turned into
 *   another value by a `build` function (cross-key checks, derived shapes);
 * - a **union** ({@link union}): a `type` key choosing one section among
 *   variants; a key of a variant other than the chosen one is an error, and a
 *   `required` key is required only in its variant.
 *
 * Pure: no errors of its own. A bad value is reported through
 * {@link ParseContext.fail}, which the loader turns into its ConfigError.
 */
import path from 'node:path';
import { BYTES_HINT, parseBytes } from './bytes.js';
import { DURATION_HINT, parseDuration } from './duration.js';

/** What a key's parser and a section's `build` may use. */
export interface ParseContext {
  /** The dotted key (or section) being read: `uploads.maxAge`. */
  readonly key: string;
  readonly env: NodeJS.ProcessEnv;
  /** The data folder, absolute: {@link dataPath} keys resolve against it. */
  readonly dataDir: string;
  /** Stops loading with `message`, naming `key` + `suffix` (`quotas` + `[0].limit`). */
  fail(message: string, suffix?: string): never;
}

/** One settable key; `T` is its value once read (`| undefined` when it has neither default nor `required`). */
export interface Key<T> {
  readonly node: 'key';
  /** The meaning, one line for the README table. */
  readonly doc: string;
  /** As a person writes it (`24h`): shown in the docs and parsed like any value. */
  readonly default: unknown;
  readonly required: boolean;
  /** The environment variable, when not derived from the key ({@link envName}). */
  readonly env: string | undefined;
  /** Called only with a value (never undefined). */
  readonly parse: (raw: unknown, ctx: ParseContext) => T;
}

export interface Section<T> {
  readonly node: 'section';
  readonly shape: Shape;
  readonly build: (value: never, ctx: ParseContext) => T;
}

export interface Union<T> {
  readonly node: 'union';
  /** Doc line of the `type` key. */
  readonly doc: string;
  readonly default: string;
  readonly variants: Readonly<Record<string, Section<unknown>>>;
  /** Phantom: the union's value type. */
  readonly _out?: T;
}

export type Node = Key<unknown> | Section<unknown> | Union<unknown>;
export type Shape = { readonly [name: string]: Node };

/** The value a node reads as. */
export type Out<N> = N extends Key<infer T> ? T : N extends Section<infer T> ? T : N extends Union<infer T> ? T : never;
/** The value a shape reads as (a section without `build`). */
export type ShapeOut<S extends Shape> = { -readonly [K in keyof S]: Out<S[K]> };

/** The spec every key builder takes. */
export interface KeySpec<D = unknown> {
  doc: string;
  default?: D;
  required?: boolean;
  env?: string;
}
/** `T`, or `T | undefined` when the spec has neither a default nor `required: true`. */
export type Opt<T, S> = S extends { default: NonNullable<unknown> } | { required: true } ? T : T | undefined;

/** A key with its own parser: the building block of the others. */
export function key<T, S extends KeySpec>(spec: S & { parse: (raw: unknown, ctx: ParseContext) => T }): Key<Opt<T, S>> {
  return { node: 'key', doc: spec.doc, default: spec.default, required: spec.required ?? false, env: spec.env, parse: spec.parse };
}

/** A non-empty string; `check` adds a rule (returns the message when broken). */
export function text<S extends KeySpec<string>>(spec: S & { check?: (value: string) => string | undefined }): Key<Opt<string, S>> {
  return key({
    ...spec,
    parse: (raw, ctx) => {
      if (typeof raw !== 'string' || raw === '') return ctx.fail('must be a non-empty string');
      const broken = spec.check?.(raw);
      return broken === undefined ? raw : ctx.fail(broken);
    },
  });
}

/** `true`/`false` (also `1`/`0`, `yes`/`no` in text). */
export function flag<S extends KeySpec<boolean>>(spec: S): Key<Opt<boolean, S>> {
  return key({
    ...spec,
    parse: (raw, ctx) => {
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === '1' || raw === 'yes') return true;
      if (raw === 'false' || raw === '0' || raw === 'no') return false;
      return ctx.fail(`must be true or false (got ${JSON.stringify(raw)})`);
    },
  });
}

/** A non-negative integer; below `atLeast` it is raised to it (not refused). */
export function count<S extends KeySpec<number>>(spec: S & { atLeast?: number }): Key<Opt<number, S>> {
  return key({
    ...spec,
    parse: (raw, ctx) => {
      const n = typeof raw === 'string' ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) return ctx.fail(`must be a non-negative integer (got ${JSON.stringify(raw)})`);
      return Math.max(spec.atLeast ?? 0, n);
    },
  });
}

/** A duration in the one grammar (src/shared/duration.ts), read as seconds. */
export function seconds<S extends KeySpec<string | number>>(spec: S): Key<Opt<number, S>> {
  return key({ ...spec, parse: (raw, ctx) => parseDuration(raw) ?? ctx.fail(`must be ${DURATION_HINT} (got ${JSON.stringify(raw)})`) });
}

/** A byte count in the one grammar (src/shared/bytes.ts). */
export function bytes<S extends KeySpec<string | number>>(spec: S): Key<Opt<number, S>> {
  return key({ ...spec, parse: (raw, ctx) => parseBytes(raw) ?? ctx.fail(`must be ${BYTES_HINT} (got ${JSON.stringify(raw)})`) });
}

/** One of `values`. */
export function oneOf<const V extends readonly string[], S extends KeySpec<V[number]>>(values: V, spec: S): Key<Opt<V[number], S>> {
  return key({
    ...spec,
    parse: (raw, ctx): V[number] => (typeof raw === 'string' && values.includes(raw) ? raw : ctx.fail(`must be one of ${values.join(', ')} (got ${JSON.stringify(raw)})`)),
  });
}

/** A list given in YAML (or as text in the environment), read by `parse`; default empty. */
export function list<T>(spec: { doc: string; env?: string; parse: (raw: unknown, ctx: ParseContext) => T[] }): Key<T[]> {
  return key({ ...spec, default: [] as unknown[], parse: spec.parse });
}

/** A file path, resolved against the working directory. */
export function localPath<S extends KeySpec<string>>(spec: S): Key<Opt<string, S>> {
  const read = text({ doc: spec.doc });
  return key({ ...spec, parse: (raw, ctx) => path.resolve(read.parse(raw, ctx) as string) });
}

/** A path inside the data folder (absolute paths allowed), defaulting to `spec.default`. */
export function dataPath(spec: { doc: string; default: string; env?: string }): Key<string> {
  const read = text({ doc: spec.doc });
  return key({ ...spec, parse: (raw, ctx) => path.resolve(ctx.dataDir, read.parse(raw, ctx) as string) });
}

/** A group of keys; `build` turns the read values into the section's value (cross-key rules). */
export function section<S extends Shape>(shape: S): Section<ShapeOut<S>>;
export function section<S extends Shape, T>(shape: S, build: (value: ShapeOut<S>, ctx: ParseContext) => T): Section<T>;
export function section(shape: Shape, build?: (value: never, ctx: ParseContext) => unknown): Section<unknown> {
  return { node: 'section', shape, build: build ?? ((v: never) => v) };
}

type Flat<T> = { [K in keyof T]: T[K] };
type Variants<V extends Record<string, Section<unknown>>> = { [K in Extract<keyof V, string>]: Flat<{ type: K } & Out<V[K]>> }[Extract<keyof V, string>];

/** A discriminated union: the `type` key chooses which variant's keys apply; the value is `{ type, ...variant }`. */
export function union<const V extends Record<string, Section<unknown>>>(spec: { doc: string; default: Extract<keyof V, string> }, variants: V): Union<Variants<V>> {
  return { node: 'union', doc: spec.doc, default: spec.default, variants };
}

/** `uploads.maxAge` → `PIER_UPLOADS_MAX_AGE`. */
export function envName(key: string): string {
  return `PIER_${key.replace(/\./g, '_').replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}`;
}

/** One settable key, for docs, the environment and unknown-key checks. */
export interface KeyInfo {
  key: string;
  env: string;
  default: unknown;
  doc: string;
  /** Set for a key of a union variant: `['storage.type', 's3']`. */
  variant?: [typeKey: string, type: string];
  /** The declaration (unions: their `type` key has none). */
  decl?: Key<unknown>;
}

function join(prefix: string, name: string): string {
  return prefix ? `${prefix}.${name}` : name;
}

/** Every key under `node`, in declaration order. */
export function describeKeys(node: Node, prefix = '', variant?: [string, string]): KeyInfo[] {
  const withVariant = (info: KeyInfo): KeyInfo => (variant ? { ...info, variant } : info);
  if (node.node === 'key') return [withVariant({ key: prefix, env: node.env ?? envName(prefix), default: node.default, doc: node.doc, decl: node })];
  if (node.node === 'section') return Object.entries(node.shape).flatMap(([name, child]) => describeKeys(child, join(prefix, name), variant));
  const typeKey = join(prefix, 'type');
  const out: KeyInfo[] = [withVariant({ key: typeKey, env: envName(typeKey), default: node.default, doc: node.doc })];
  const seen = new Set([typeKey]);
  for (const [type, v] of Object.entries(node.variants)) {
    for (const info of describeKeys(v, prefix, [typeKey, type])) {
      if (!seen.has(info.key)) out.push(info);
      seen.add(info.key);
    }
  }
  return out;
}

export interface ReadOptions {
  env: NodeJS.ProcessEnv;
  /** The key (a {@link localPath}) holding the data folder; read first. */
  dataKey: string;
  /** Builds the error for a bad value at `key`. */
  error: (key: string, message: string) => Error;
}

/**
 * Reads `root` from `values` (dotted key → raw value as given by a file, the
 * environment, flags or a test; unset keys take their defaults) into its
 * typed value. Throws `options.error(key, message)` for the first bad key.
 */
export function readConfig<T>(root: Section<T>, values: ReadonlyMap<string, unknown>, options: ReadOptions): T {
  const ctx = (key: string, dataDir: string): ParseContext => ({
    key,
    env: options.env,
    dataDir,
    fail: (message: string, suffix = '') => {
      throw options.error(`${key}${suffix}`, message);
    },
  });
  const readKey = (k: Key<unknown>, key: string, dataDir: string, variant?: [string, string]): unknown => {
    const raw = values.get(key) ?? k.default;
    if (raw === undefined) {
      if (k.required) throw options.error(key, variant ? `required when ${variant[0]} is ${variant[1]}` : 'is required');
      return undefined;
    }
    return k.parse(raw, ctx(key, dataDir));
  };
  const dataDecl = describeKeys(root).find((i) => i.key === options.dataKey)?.decl;
  if (!dataDecl) throw new Error(`readConfig: no key ${options.dataKey}`);
  const dataDir = readKey(dataDecl, options.dataKey, process.cwd()) as string;

  const read = (node: Node, key: string, variant?: [string, string]): unknown => {
    if (node.node === 'key') return readKey(node, key, dataDir, variant);
    if (node.node === 'section') {
      const value: Record<string, unknown> = {};
      for (const [name, child] of Object.entries(node.shape)) value[name] = read(child, join(key, name), variant);
      return node.build(value as never, ctx(key, dataDir));
    }
    const typeKey = join(key, 'type');
    const types = Object.keys(node.variants);
    const type = oneOf(types, { doc: node.doc, default: node.default }).parse(values.get(typeKey) ?? node.default, ctx(typeKey, dataDir));
    const chosen = node.variants[type]!;
    const own = new Set(describeKeys(chosen, key).map((i) => i.key));
    for (const [other, v] of Object.entries(node.variants)) {
      if (other === type) continue;
      for (const info of describeKeys(v, key)) {
        const raw = values.get(info.key);
        // A value equal to the default is not a choice (database.synchronous: normal).
        if (!own.has(info.key) && raw !== undefined && raw !== info.default) throw options.error(info.key, `only for ${typeKey} ${other} (${typeKey} is ${type})`);
      }
    }
    return { type, ...(read(chosen, key, [typeKey, type]) as object) };
  };
  return read(root, '') as T;
}
