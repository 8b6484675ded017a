/**
 * Target configuration: a JSON document (all fields optional) and its validation. Field names, types,
 * defaults and ranges come from `config-schema.ts`, which `docs/configuration.md` is generated from;
 * this file adds what a table cannot say (NQN syntax, secrets, cross-field rules, resolved paths).
 * A namespace path that does not exist is created as a sparse file of `sizeBytes`; a block device is
 * used as is (`sizeBytes` optional, at most the device size).
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { DISCOVERY_NQN, NQN_MAX_BYTES } from '../protocol/constants.js';
import { DH_GROUP_NAMES, type DhchapKey, DhchapKeyError, HASH_NAMES, parseDhchapKey } from '../protocol/dhchap.js';
import { ConfigError } from '../protocol/errors.js';
import { DEFAULT_TENANT_LIMITS, type TenantLimits } from '../runtime/budget.js';
import type { AuthPolicy, HostCredentials } from './auth.js';
import {
  CONFIG_SCHEMA,
  type Field,
  fieldNames,
  type IntegerField,
  integerDefaults,
  LIMIT_FIELDS,
  type ListField,
  MAX_PORTS,
  objectAt,
  type StringField,
  TENANT_LIMIT_FIELDS,
} from './config-schema.js';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from './logger.js';
import type { MetricsConfig } from './metrics.js';

export type HostAccess = 'read-write' | 'read-only';

export interface HostRule {
  /** A host NQN, or `*` for any host. */
  nqn: string;
  access: HostAccess;
}

export interface NamespaceConfig {
  nsid: number;
  /** Absolute after validation. */
  path: string;
  /** Required for files; for block devices defaults to the device size. */
  sizeBytes?: number;
  blockSize: 512 | 4096;
}

export interface SubsystemConfig {
  nqn: string;
  /** Every host must authenticate (hosts without a configured key are refused). */
  requireAuthentication: boolean;
  serial: string;
  model: string;
  hosts: HostRule[];
  namespaces: NamespaceConfig[];
}

/** NVMe/TCP limits: one number per field of `LIMIT_FIELDS` (config-schema.ts says what each means). */
export type TargetLimits = { [K in keyof typeof LIMIT_FIELDS]: number };

/** One port the target listens on. */
export interface ListenAddress {
  host: string;
  port: number;
}

export interface TargetConfig {
  /** The ports, at least one; each exports every subsystem (PORTID = index + 1). */
  listen: ListenAddress[];
  /** Worker threads serving the ports (0: the main thread serves them). */
  ioThreads: number;
  dataDir: string;
  digests: { header: boolean; data: boolean };
  limits: TargetLimits;
  /** Storage-function limits: defaults, and overrides per host NQN. */
  programs: {
    defaults: TenantLimits;
    tenants: Map<string, TenantLimits>;
    /** Bounds of one scheduler turn: how long a tenant's synchronous chain may run before it yields. */
    scheduler: { maxTurnMicros: number; maxTurnInstructions: number };
    /** Execution workers: -1 one per core beyond the first (at least 1), 0 none (steps on the I/O thread). */
    executionWorkers: number;
    /** Nice levels the execution workers run below the target's threads (Linux, per thread). */
    executionWorkerNice: number;
    /** CPU weight per host NQN on the execution workers (absent: 1). */
    weights: Map<string, number>;
  };
  subsystems: SubsystemConfig[];
  /** DH-HMAC-CHAP: credentials per host NQN and the target's preferences. */
  auth: AuthConfig;
  /** Prometheus endpoint (listen null: off) and its label caps. */
  metrics: MetricsConfig;
  /** The log's format and least severe level. */
  log: { format: LogFormat; level: LogLevel };
}

export interface AuthConfig extends AuthPolicy {
  hosts: Map<string, HostCredentials>;
}

export const DEFAULT_SUBSYSTEM_NQN = 'nqn.2026-11.io.nearbpf:default';
const schemaField = (path: string, name: string): Field => objectAt(path).fields[name];
const schemaDefault = <T>(path: string, name: string): T => (schemaField(path, name) as { default?: unknown }).default as T;
const schemaRange = (path: string, name: string): [number, number] => {
  const f = schemaField(path, name) as IntegerField;
  return [f.min, f.max];
};
const schemaMaxLength = (path: string, name: string): number => (schemaField(path, name) as StringField).maxLength ?? 4096;
export const DEFAULT_LISTEN = {
  host: schemaDefault<string>('listen', 'host'),
  port: schemaDefault<number>('listen', 'port'),
} as const;
export const DEFAULT_DATA_DIR = (CONFIG_SCHEMA.fields.dataDir as StringField).default as string;
const GIB = 1024 * 1024 * 1024;

export const DEFAULT_LIMITS: Readonly<TargetLimits> = integerDefaults(LIMIT_FIELDS);

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function checkKeys(obj: Json, allowed: readonly string[], at: string): void {
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) throw new ConfigError(at ? `${at}.${k}` : k, 'unknown field');
}

function int(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new ConfigError(field, `must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
  }
  return v;
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(field, 'must be a non-empty string');
  return v;
}

function ascii(v: unknown, field: string, maxBytes: number): string {
  const s = str(v, field);
  if (!/^[\x20-\x7e]*$/.test(s) || s.length > maxBytes)
    throw new ConfigError(field, `must be at most ${maxBytes} printable ASCII characters`);
  return s;
}

export function validateNqn(v: unknown, field: string): string {
  const s = str(v, field);
  if (Buffer.byteLength(s) > NQN_MAX_BYTES) throw new ConfigError(field, `NQN longer than ${NQN_MAX_BYTES} bytes`);
  if (!s.startsWith('nqn.')) throw new ConfigError(field, 'NQN must start with "nqn."');
  return s;
}

/** Validate a parsed JSON config (all fields optional) into a full `TargetConfig`. Throws `ConfigError`. */
export function validateConfig(input: unknown, baseDir = process.cwd()): TargetConfig {
  const raw = input ?? {};
  if (!isObject(raw)) throw new ConfigError('(root)', 'must be a JSON object');
  checkKeys(raw, fieldNames(CONFIG_SCHEMA), '');

  const listen = listenAddresses(raw.listen);
  const ioThreads = raw.ioThreads === undefined ? 0 : int(raw.ioThreads, 'ioThreads', 0, MAX_PORTS);

  const dataDir = resolve(baseDir, raw.dataDir === undefined ? DEFAULT_DATA_DIR : str(raw.dataDir, 'dataDir'));

  const digestsRaw = raw.digests ?? {};
  if (!isObject(digestsRaw)) throw new ConfigError('digests', 'must be an object');
  checkKeys(digestsRaw, fieldNames(objectAt('digests')), 'digests');
  const bool = (v: unknown, field: string, dflt: boolean) => {
    if (v === undefined) return dflt;
    if (typeof v !== 'boolean') throw new ConfigError(field, 'must be true or false');
    return v;
  };
  const digests = {
    header: bool(digestsRaw.header, 'digests.header', schemaDefault('digests', 'header')),
    data: bool(digestsRaw.data, 'digests.data', schemaDefault('digests', 'data')),
  };

  const limitsRaw = raw.limits ?? {};
  if (!isObject(limitsRaw)) throw new ConfigError('limits', 'must be an object');
  checkKeys(limitsRaw, fieldNames(objectAt('limits')), 'limits');
  const limits = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof TargetLimits)[]) {
    if (limitsRaw[key] !== undefined)
      limits[key] = int(limitsRaw[key], `limits.${key}`, LIMIT_FIELDS[key].min, LIMIT_FIELDS[key].max);
  }
  const mdts = limits.maxDataTransferBytes;
  if ((mdts & (mdts - 1)) !== 0) throw new ConfigError('limits.maxDataTransferBytes', 'must be a power of two (MDTS)');
  if (limits.inCapsuleDataBytes % 16 !== 0)
    throw new ConfigError('limits.inCapsuleDataBytes', 'must be a multiple of 16 (IOCCSZ units)');
  if (limits.maxInFlightBytesPerConnection < mdts) {
    throw new ConfigError('limits.maxInFlightBytesPerConnection', 'must be at least maxDataTransferBytes');
  }

  const subsRaw = raw.subsystems ?? [defaultSubsystemJson()];
  if (!Array.isArray(subsRaw) || subsRaw.length === 0) throw new ConfigError('subsystems', 'must be a non-empty array');
  const maxSubsystems = (CONFIG_SCHEMA.fields.subsystems as { maxItems: number }).maxItems;
  if (subsRaw.length > maxSubsystems) throw new ConfigError('subsystems', `at most ${maxSubsystems} subsystems`);
  const seen = new Set<string>();
  const subsystems = subsRaw.map((s, i) => {
    const sub = validateSubsystem(s, `subsystems[${i}]`, dataDir, i);
    if (seen.has(sub.nqn)) throw new ConfigError(`subsystems[${i}].nqn`, 'duplicate subsystem NQN');
    seen.add(sub.nqn);
    return sub;
  });
  const auth = authConfig(raw.auth, baseDir);
  return {
    listen,
    ioThreads,
    dataDir,
    digests,
    limits,
    programs: programLimits(raw.programs),
    subsystems,
    auth,
    metrics: metricsConfig(raw.metrics),
    log: logConfig(raw.log),
  };
}

/** `listen`: one object or an array of them; no two ports on the same host and port (port 0 excepted). */
function listenAddresses(input: unknown): ListenAddress[] {
  if (input === undefined) return [{ ...DEFAULT_LISTEN }];
  const list = Array.isArray(input) ? input : [input];
  if (list.length === 0) throw new ConfigError('listen', 'must list at least one port');
  if (list.length > MAX_PORTS) throw new ConfigError('listen', `at most ${MAX_PORTS} ports`);
  const seen = new Set<string>();
  return list.map((item, i) => {
    const at = Array.isArray(input) ? `listen[${i}]` : 'listen';
    if (!isObject(item)) throw new ConfigError(at, 'must be an object');
    checkKeys(item, fieldNames(objectAt('listen')), at);
    const a = {
      host: item.host === undefined ? DEFAULT_LISTEN.host : str(item.host, `${at}.host`),
      port: item.port === undefined ? DEFAULT_LISTEN.port : int(item.port, `${at}.port`, ...schemaRange('listen', 'port')),
    };
    const key = formatHostPort(a);
    if (a.port !== 0 && seen.has(key)) throw new ConfigError(at, `duplicate port ${key}`);
    seen.add(key);
    return a;
  });
}

function logConfig(input: unknown): TargetConfig['log'] {
  const raw = input ?? {};
  if (!isObject(raw)) throw new ConfigError('log', 'must be an object');
  checkKeys(raw, fieldNames(objectAt('log')), 'log');
  const pick = <T extends string>(k: 'format' | 'level', values: readonly T[]): T => {
    const v = raw[k] ?? schemaDefault<T>('log', k);
    if (typeof v !== 'string' || !values.includes(v as T))
      throw new ConfigError(
        `log.${k}`,
        `must be one of ${values.map((x) => JSON.stringify(x)).join(', ')}, got ${JSON.stringify(v)}`,
      );
    return v as T;
  };
  return { format: pick('format', LOG_FORMATS), level: pick('level', LOG_LEVELS) };
}

/** `HOST:PORT`, `[IPv6]:PORT`. */
export function parseHostPort(v: unknown, field: string): { host: string; port: number } {
  const s = str(v, field);
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) throw new ConfigError(field, `must be HOST:PORT (or [IPv6]:PORT), got ${JSON.stringify(s)}`);
  return { host: m[1] ?? m[2], port };
}

function metricsConfig(input: unknown): MetricsConfig {
  const raw = input ?? {};
  if (!isObject(raw)) throw new ConfigError('metrics', 'must be an object');
  checkKeys(raw, fieldNames(objectAt('metrics')), 'metrics');
  const capped = (k: 'maxTenants' | 'maxProgramsPerTenant') =>
    raw[k] === undefined ? schemaDefault<number>('metrics', k) : int(raw[k], `metrics.${k}`, ...schemaRange('metrics', k));
  return {
    listen: raw.listen === undefined || raw.listen === null ? null : parseHostPort(raw.listen, 'metrics.listen'),
    maxTenants: capped('maxTenants'),
    maxProgramsPerTenant: capped('maxProgramsPerTenant'),
  };
}

function secret(v: Json, field: string, fileField: string, at: string, baseDir: string): DhchapKey | undefined {
  if (v[field] !== undefined && v[fileField] !== undefined)
    throw new ConfigError(`${at}.${field}`, `give ${field} or ${fileField}, not both`);
  let text: string;
  if (v[field] !== undefined) text = str(v[field], `${at}.${field}`);
  else if (v[fileField] !== undefined) {
    const file = resolve(baseDir, str(v[fileField], `${at}.${fileField}`));
    try {
      text = readFileSync(file, 'utf8').split('\n')[0];
    } catch (e) {
      throw new ConfigError(`${at}.${fileField}`, `cannot read ${file}: ${(e as Error).message}`);
    }
  } else return undefined;
  try {
    return parseDhchapKey(text);
  } catch (e) {
    // Never echo the secret itself.
    if (e instanceof DhchapKeyError) throw new ConfigError(`${at}.${v[field] !== undefined ? field : fileField}`, e.message);
    throw e;
  }
}

function authConfig(input: unknown, baseDir: string): AuthConfig {
  const raw = input ?? {};
  if (!isObject(raw)) throw new ConfigError('auth', 'must be an object');
  checkKeys(raw, fieldNames(objectAt('auth')), 'auth');
  const list = <T extends string>(v: unknown, field: string, allowed: readonly T[], dflt: readonly T[]): T[] => {
    if (v === undefined) return [...dflt];
    if (!Array.isArray(v) || v.length === 0) throw new ConfigError(field, 'must be a non-empty array');
    return v.map((x, i) => {
      if (!allowed.includes(x as T)) throw new ConfigError(`${field}[${i}]`, `must be one of ${allowed.join(', ')}`);
      return x as T;
    });
  };
  const hashes = list(
    raw.hashes,
    'auth.hashes',
    HASH_NAMES,
    (schemaField('auth', 'hashes') as ListField).default as typeof HASH_NAMES,
  );
  const dhGroups = list(
    raw.dhGroups,
    'auth.dhGroups',
    DH_GROUP_NAMES,
    (schemaField('auth', 'dhGroups') as ListField).default as typeof DH_GROUP_NAMES,
  );
  const hostsRaw = raw.hosts ?? {};
  if (!isObject(hostsRaw)) throw new ConfigError('auth.hosts', 'must be an object keyed by host NQN');
  const hosts = new Map<string, HostCredentials>();
  for (const [nqn, v] of Object.entries(hostsRaw)) {
    const at = `auth.hosts.${nqn}`;
    validateNqn(nqn, at);
    if (!isObject(v)) throw new ConfigError(at, 'must be an object');
    checkKeys(v, fieldNames(objectAt('auth.hosts')), at);
    const key = secret(v, 'key', 'keyFile', at, baseDir);
    if (!key) throw new ConfigError(`${at}.key`, 'a host entry needs key or keyFile');
    const controllerKey = secret(v, 'controllerKey', 'controllerKeyFile', at, baseDir);
    if (controllerKey?.secret.equals(key.secret)) {
      throw new ConfigError(`${at}.controllerKey`, 'must differ from the host key (a reflected response would pass)');
    }
    hosts.set(nqn, { key, controllerKey });
  }
  return { hosts, hashes, dhGroups };
}

function programLimits(input: unknown): TargetConfig['programs'] {
  const raw = input ?? {};
  if (!isObject(raw)) throw new ConfigError('programs', 'must be an object');
  checkKeys(raw, fieldNames(objectAt('programs')), 'programs');
  const keys = Object.keys(TENANT_LIMIT_FIELDS) as (keyof TenantLimits)[];
  const parse = (v: unknown, base: TenantLimits, at: string): TenantLimits => {
    if (!isObject(v)) throw new ConfigError(at, 'must be an object');
    checkKeys(v, keys, at);
    const out = { ...base };
    for (const k of keys) {
      if (v[k] !== undefined) out[k] = int(v[k], `${at}.${k}`, TENANT_LIMIT_FIELDS[k].min, TENANT_LIMIT_FIELDS[k].max);
    }
    return out;
  };
  const defaults =
    raw.defaults === undefined ? { ...DEFAULT_TENANT_LIMITS } : parse(raw.defaults, DEFAULT_TENANT_LIMITS, 'programs.defaults');
  const tenants = new Map<string, TenantLimits>();
  const tenantsRaw = raw.tenants ?? {};
  if (!isObject(tenantsRaw)) throw new ConfigError('programs.tenants', 'must be an object keyed by host NQN');
  for (const [nqn, v] of Object.entries(tenantsRaw)) tenants.set(nqn, parse(v, defaults, `programs.tenants.${nqn}`));
  const schedulerRaw = raw.scheduler ?? {};
  if (!isObject(schedulerRaw)) throw new ConfigError('programs.scheduler', 'must be an object');
  checkKeys(schedulerRaw, fieldNames(objectAt('programs.scheduler')), 'programs.scheduler');
  const turn = (k: 'maxTurnMicros' | 'maxTurnInstructions') =>
    schedulerRaw[k] === undefined
      ? schemaDefault<number>('programs.scheduler', k)
      : int(schedulerRaw[k], `programs.scheduler.${k}`, ...schemaRange('programs.scheduler', k));
  const scheduler = { maxTurnMicros: turn('maxTurnMicros'), maxTurnInstructions: turn('maxTurnInstructions') };
  const executionWorkers =
    raw.executionWorkers === undefined
      ? schemaDefault<number>('programs', 'executionWorkers')
      : int(raw.executionWorkers, 'programs.executionWorkers', ...schemaRange('programs', 'executionWorkers'));
  const weightsRaw = raw.weights ?? {};
  if (!isObject(weightsRaw)) throw new ConfigError('programs.weights', 'must be an object keyed by host NQN');
  const weights = new Map<string, number>();
  for (const [nqn, v] of Object.entries(weightsRaw)) {
    const at = `programs.weights.${nqn}`;
    if (!isObject(v)) throw new ConfigError(at, 'must be an object');
    checkKeys(v, fieldNames(objectAt('programs.weights')), at);
    weights.set(nqn, v.weight === undefined ? 1 : int(v.weight, `${at}.weight`, ...schemaRange('programs.weights', 'weight')));
  }
  const executionWorkerNice =
    raw.executionWorkerNice === undefined
      ? schemaDefault<number>('programs', 'executionWorkerNice')
      : int(raw.executionWorkerNice, 'programs.executionWorkerNice', ...schemaRange('programs', 'executionWorkerNice'));
  return { defaults, tenants, scheduler, executionWorkers, executionWorkerNice, weights };
}

function defaultSubsystemJson(): Json {
  return {
    nqn: DEFAULT_SUBSYSTEM_NQN,
    namespaces: [{ nsid: 1, path: 'default-ns1.img', sizeBytes: GIB, blockSize: 512 }],
  };
}

function validateSubsystem(s: unknown, at: string, dataDir: string, index: number): SubsystemConfig {
  if (!isObject(s)) throw new ConfigError(at, 'must be an object');
  checkKeys(s, fieldNames(objectAt('subsystems')), at);
  let requireAuthentication = false;
  if (s.requireAuthentication !== undefined) {
    if (typeof s.requireAuthentication !== 'boolean')
      throw new ConfigError(`${at}.requireAuthentication`, 'must be true or false');
    requireAuthentication = s.requireAuthentication;
  }
  const nqn = validateNqn(s.nqn, `${at}.nqn`);
  if (nqn === DISCOVERY_NQN) throw new ConfigError(`${at}.nqn`, 'the discovery NQN is reserved');
  const serial =
    s.serial === undefined
      ? `nearbpf${String(index + 1).padStart(4, '0')}`
      : ascii(s.serial, `${at}.serial`, schemaMaxLength('subsystems', 'serial'));
  const model =
    s.model === undefined
      ? schemaDefault<string>('subsystems', 'model')
      : ascii(s.model, `${at}.model`, schemaMaxLength('subsystems', 'model'));
  const hostsRaw = s.hosts ?? [{ nqn: '*', access: 'read-write' }];
  if (!Array.isArray(hostsRaw)) throw new ConfigError(`${at}.hosts`, 'must be an array');
  const maxHosts = (objectAt('subsystems').fields.hosts as { maxItems: number }).maxItems;
  if (hostsRaw.length > maxHosts) throw new ConfigError(`${at}.hosts`, `at most ${maxHosts} rules`);
  const hosts = hostsRaw.map((h, j): HostRule => {
    const hat = `${at}.hosts[${j}]`;
    if (!isObject(h)) throw new ConfigError(hat, 'must be an object');
    checkKeys(h, fieldNames(objectAt('subsystems.hosts')), hat);
    const hnqn = h.nqn === '*' ? '*' : validateNqn(h.nqn, `${hat}.nqn`);
    const access = h.access ?? schemaDefault<HostAccess>('subsystems.hosts', 'access');
    if (access !== 'read-write' && access !== 'read-only')
      throw new ConfigError(`${hat}.access`, 'must be "read-write" or "read-only"');
    return { nqn: hnqn, access };
  });
  const nsRaw = s.namespaces;
  if (!Array.isArray(nsRaw) || nsRaw.length === 0) throw new ConfigError(`${at}.namespaces`, 'must be a non-empty array');
  const maxNamespaces = (objectAt('subsystems').fields.namespaces as { maxItems: number }).maxItems;
  if (nsRaw.length > maxNamespaces) throw new ConfigError(`${at}.namespaces`, `at most ${maxNamespaces} namespaces`);
  const nsids = new Set<number>();
  const namespaces = nsRaw.map((n, j): NamespaceConfig => {
    const nat = `${at}.namespaces[${j}]`;
    if (!isObject(n)) throw new ConfigError(nat, 'must be an object');
    checkKeys(n, fieldNames(objectAt('subsystems.namespaces')), nat);
    const nsid = n.nsid === undefined ? j + 1 : int(n.nsid, `${nat}.nsid`, ...schemaRange('subsystems.namespaces', 'nsid'));
    if (nsids.has(nsid)) throw new ConfigError(`${nat}.nsid`, 'duplicate nsid');
    nsids.add(nsid);
    const path = str(n.path, `${nat}.path`);
    const blockSize =
      n.blockSize === undefined
        ? schemaDefault<512 | 4096>('subsystems.namespaces', 'blockSize')
        : int(n.blockSize, `${nat}.blockSize`, 512, 4096);
    if (blockSize !== 512 && blockSize !== 4096) throw new ConfigError(`${nat}.blockSize`, 'must be 512 or 4096');
    let sizeBytes: number | undefined;
    if (n.sizeBytes !== undefined) {
      sizeBytes = int(n.sizeBytes, `${nat}.sizeBytes`, blockSize, schemaRange('subsystems.namespaces', 'sizeBytes')[1]);
      if (sizeBytes % blockSize !== 0) throw new ConfigError(`${nat}.sizeBytes`, `must be a multiple of blockSize ${blockSize}`);
    }
    return { nsid, path: isAbsolute(path) ? path : resolve(dataDir, path), sizeBytes, blockSize };
  });
  return { nqn, requireAuthentication, serial, model, hosts, namespaces };
}

/** Read and validate a JSON config file; relative paths in it are relative to the file's folder. */
export async function loadConfigFile(file: string): Promise<TargetConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new ConfigError('(file)', `cannot read ${file}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError('(file)', `${file} is not valid JSON: ${(e as Error).message}`);
  }
  return validateConfig(json, resolve(file, '..'));
}

/** The access a host gets to a subsystem, or null if it may not connect. Exact NQN rules beat `*`. */
export function hostAccess(sub: Pick<SubsystemConfig, 'hosts'>, hostNqn: string): HostAccess | null {
  const exact = sub.hosts.find((h) => h.nqn === hostNqn);
  if (exact) return exact.access;
  return sub.hosts.find((h) => h.nqn === '*')?.access ?? null;
}

/** Shown instead of a key in `--print-config`: secrets never leave the process. */
export const REDACTED = '(redacted)';

/**
 * The effective configuration as JSON, every default filled in and paths resolved: what `serve
 * --print-config` prints. Keys are replaced by `REDACTED`; validating the output again gives the same
 * configuration except for the keys.
 */
export function effectiveConfigJson(config: TargetConfig): Record<string, unknown> {
  const hosts: Record<string, unknown> = {};
  for (const [nqn, cred] of config.auth.hosts) {
    hosts[nqn] = cred.controllerKey ? { key: REDACTED, controllerKey: REDACTED } : { key: REDACTED };
  }
  return {
    listen: config.listen.map((a) => ({ ...a })),
    ioThreads: config.ioThreads,
    dataDir: config.dataDir,
    digests: { ...config.digests },
    limits: { ...config.limits },
    programs: {
      defaults: { ...config.programs.defaults },
      tenants: Object.fromEntries(config.programs.tenants),
      scheduler: { ...config.programs.scheduler },
      executionWorkers: config.programs.executionWorkers,
      executionWorkerNice: config.programs.executionWorkerNice,
      weights: Object.fromEntries([...config.programs.weights].map(([nqn, weight]) => [nqn, { weight }])),
    },
    auth: { hosts, hashes: [...config.auth.hashes], dhGroups: [...config.auth.dhGroups] },
    metrics: {
      ...(config.metrics.listen ? { listen: formatHostPort(config.metrics.listen) } : {}),
      maxTenants: config.metrics.maxTenants,
      maxProgramsPerTenant: config.metrics.maxProgramsPerTenant,
    },
    log: { ...config.log },
    subsystems: config.subsystems.map((s) => ({
      nqn: s.nqn,
      requireAuthentication: s.requireAuthentication,
      serial: s.serial,
      model: s.model,
      hosts: s.hosts.map((h) => ({ ...h })),
      namespaces: s.namespaces.map((n) => ({ ...n })),
    })),
  };
}

export function formatHostPort(a: { host: string; port: number }): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
