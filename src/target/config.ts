/**
 * Target configuration: a JSON document (all fields optional, defaults below) and its validation.
 *
 * ```json
 * {
 *   "listen": { "host": "127.0.0.1", "port": 4420 },
 *   "dataDir": "./nearbpf-data",                // relative namespace paths are resolved here
 *   "digests": { "header": true, "data": true }, // what the target grants when a host asks in ICReq
 *   "limits": {
 *     "maxConnections": 256,                     // TCP connections, all queues together
 *     "maxControllers": 64,                      // associations (admin queues)
 *     "maxIoQueues": 8,                          // per controller
 *     "maxQueueDepth": 128,                      // entries per queue (MQES + 1, SQSIZE + 1)
 *     "maxDataTransferBytes": 1048576,           // MDTS: power of two, >= 8192 (MDTS 0 would mean "no limit")
 *     "inCapsuleDataBytes": 16384,               // I/O queue in-capsule data (IOCCSZ - 64 bytes)
 *     "maxH2CDataBytes": 131072,                 // MAXH2CDATA, also the size of each R2T
 *     "maxC2HDataBytes": 131072,                 // data bytes per C2HData PDU we send
 *     "maxInFlightBytesPerConnection": 16777216, // data buffered per connection before socket.pause()
 *     "maxKeepAliveTimeoutMs": 3600000,          // larger KATO in Connect is refused
 *     "idleTimeoutMs": 300000,                   // association dropped after this long without a command when KATO is 0
 *     "handshakeTimeoutMs": 5000,                // ICReq + Connect (+ authentication) must finish within this
 *     "maxPendingConnections": 32,               // connections still in that handshake, all together: a separate
 *     "maxPendingConnectionsPerAddress": 8,      //   pool; when full, the oldest pending one is dropped for a new one
 *     "maxConnectionsPerHost": 32,               // queues of one host NQN, all its associations together
 *     "maxConnectionsPerAddress": 64,            // queues from one source address
 *     "maxAssociationsPerHost": 8,               // admin queues of one host NQN
 *     "maxAssociationsPerAddress": 16,           // admin queues from one source address
 *     "maxPendingImageBytesPerAssociation": 16777216, // bytes of half-sent program images (LOAD chunks)
 *     "maxPendingImageBytesPerHost": 33554432,   //   per association, per host NQN and overall;
 *     "maxPendingImageBytes": 134217728,         //   memory is allocated as chunks arrive
 *     "pendingLoadTimeoutMs": 30000,             // a half-sent load without a chunk this long is dropped
 *     "verifierWorkers": 0,                      // verifier threads (0: one per core beyond the first, 1..4)
 *     "maxVerificationsPerTenant": 2,            // loads of one host verifying or queued; tenants served round-robin
 *     "verifyTimeoutMs": 60000,                  // wall clock per verification: the worker is replaced
 *     "verifyMemoryBytes": 536870912,            // heap per verifier worker: beyond it the verification fails
 *     "maxMapMemoryBytesPerTenant": 67108864,    // map memory of one host's loaded programs
 *     "maxMapMemoryBytes": 536870912,            //   and of all hosts
 *     "maxProgramMemoryBytesPerTenant": 16777216, // loaded code (instructions x 64, JIT output included)
 *     "maxProgramMemoryBytes": 268435456,        //   per host and overall
 *     "maxDeallocateRangeBytes": 67108864,       // per Dataset Management range (advertised as DMRSL)
 *     "readCacheBytes": 67108864                 // write-through page cache per namespace (0 = none)
 *   },
 *   "programs": {                               // storage functions: limits per tenant (host NQN)
 *     "defaults": { "maxSteps": 1024, "maxInstructionsPerStep": 2000000, ... }, // any TenantLimits field
 *     "tenants": { "nqn.2014-08.org.nvmexpress:uuid:...": { "maxSteps": 64 } }, // overrides per host
 *     "scheduler": { "maxTurnMicros": 100, "maxTurnInstructions": 200000 } // a synchronous chain yields after this much
 *   },
 *   "auth": {                                   // DH-HMAC-CHAP (NVMe in-band authentication)
 *     "hosts": {                                 // per host NQN: a host with a key must authenticate on every queue
 *       "nqn.2014-08.org.nvmexpress:uuid:...": {
 *         "key": "DHHC-1:01:...:",               // or "keyFile": "host.key" (first line); nvme gen-dhchap-key format
 *         "controllerKey": "DHHC-1:..."          // optional (or "controllerKeyFile"): the target proves itself too
 *       }
 *     },
 *     "hashes": ["sha512", "sha384", "sha256"],  // preference order (default as shown)
 *     "dhGroups": ["ffdhe2048", "ffdhe3072", "ffdhe4096", "ffdhe6144", "ffdhe8192", "null"]
 *   },
 *   "subsystems": [{
 *     "nqn": "nqn.2026-11.io.nearbpf:default",
 *     "requireAuthentication": false,            // true: a host without a key is refused (Connect Invalid Host)
 *     "serial": "nearbpf0001",                   // optional, <= 20 ASCII characters
 *     "model": "nearbpf",                        // optional, <= 40 ASCII characters
 *     "hosts": [{ "nqn": "*", "access": "read-write" }], // "*" = any host; exact NQNs take precedence
 *     "namespaces": [{ "nsid": 1, "path": "default-ns1.img", "sizeBytes": 1073741824, "blockSize": 512 }]
 *   }]
 * }
 * ```
 * A namespace path that does not exist is created as a sparse file of `sizeBytes`; a block device is used
 * as is (`sizeBytes` optional, at most the device size).
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { DISCOVERY_NQN, NQN_MAX_BYTES } from '../protocol/constants.js';
import { DH_GROUP_NAMES, type DhchapKey, DhchapKeyError, HASH_NAMES, parseDhchapKey } from '../protocol/dhchap.js';
import { ConfigError } from '../protocol/errors.js';
import { DEFAULT_TENANT_LIMITS, type TenantLimits } from '../runtime/budget.js';
import { DEFAULT_MAX_TURN_INSTRUCTIONS, DEFAULT_MAX_TURN_MICROS } from '../runtime/scheduler.js';
import { type AuthPolicy, DEFAULT_AUTH_POLICY, type HostCredentials } from './auth.js';

/** Upper bound of every storage-function limit in the configuration (each is a count or a size). */
const MAX_PROGRAM_LIMIT = 2 ** 40;

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

export interface TargetLimits {
  maxConnections: number;
  maxControllers: number;
  maxIoQueues: number;
  maxQueueDepth: number;
  maxDataTransferBytes: number;
  inCapsuleDataBytes: number;
  maxH2CDataBytes: number;
  maxC2HDataBytes: number;
  maxInFlightBytesPerConnection: number;
  maxKeepAliveTimeoutMs: number;
  idleTimeoutMs: number;
  handshakeTimeoutMs: number;
  maxPendingConnections: number;
  maxPendingConnectionsPerAddress: number;
  maxConnectionsPerHost: number;
  maxConnectionsPerAddress: number;
  maxAssociationsPerHost: number;
  maxAssociationsPerAddress: number;
  maxPendingImageBytesPerAssociation: number;
  maxPendingImageBytesPerHost: number;
  maxPendingImageBytes: number;
  pendingLoadTimeoutMs: number;
  verifierWorkers: number;
  maxVerificationsPerTenant: number;
  verifyTimeoutMs: number;
  verifyMemoryBytes: number;
  maxMapMemoryBytesPerTenant: number;
  maxMapMemoryBytes: number;
  maxProgramMemoryBytesPerTenant: number;
  maxProgramMemoryBytes: number;
  maxDeallocateRangeBytes: number;
  /** Write-through cache of 4 KiB pages per namespace, for small reads (0 disables it). */
  readCacheBytes: number;
}

export interface TargetConfig {
  listen: { host: string; port: number };
  dataDir: string;
  digests: { header: boolean; data: boolean };
  limits: TargetLimits;
  /** Storage-function limits: defaults, and overrides per host NQN. */
  programs: {
    defaults: TenantLimits;
    tenants: Map<string, TenantLimits>;
    /** Bounds of one scheduler turn: how long a tenant's synchronous chain may run before it yields. */
    scheduler: { maxTurnMicros: number; maxTurnInstructions: number };
  };
  subsystems: SubsystemConfig[];
  /** DH-HMAC-CHAP: credentials per host NQN and the target's preferences. */
  auth: AuthConfig;
}

export interface AuthConfig extends AuthPolicy {
  hosts: Map<string, HostCredentials>;
}

export const DEFAULT_SUBSYSTEM_NQN = 'nqn.2026-11.io.nearbpf:default';
export const DEFAULT_LISTEN = { host: '127.0.0.1', port: 4420 } as const;
export const DEFAULT_DATA_DIR = './nearbpf-data';
const GIB = 1024 * 1024 * 1024;

export const DEFAULT_LIMITS: Readonly<TargetLimits> = {
  maxConnections: 256,
  maxControllers: 64,
  maxIoQueues: 8,
  maxQueueDepth: 128,
  maxDataTransferBytes: 1 << 20,
  inCapsuleDataBytes: 16384,
  maxH2CDataBytes: 128 * 1024,
  maxC2HDataBytes: 128 * 1024,
  maxInFlightBytesPerConnection: 16 << 20,
  maxKeepAliveTimeoutMs: 3_600_000,
  idleTimeoutMs: 300_000,
  handshakeTimeoutMs: 5_000,
  maxPendingConnections: 32,
  maxPendingConnectionsPerAddress: 8,
  maxConnectionsPerHost: 32,
  maxConnectionsPerAddress: 64,
  maxAssociationsPerHost: 8,
  maxAssociationsPerAddress: 16,
  maxPendingImageBytesPerAssociation: 16 << 20,
  maxPendingImageBytesPerHost: 32 << 20,
  maxPendingImageBytes: 128 << 20,
  pendingLoadTimeoutMs: 30_000,
  verifierWorkers: 0,
  maxVerificationsPerTenant: 2,
  verifyTimeoutMs: 60_000,
  verifyMemoryBytes: 512 << 20,
  maxMapMemoryBytesPerTenant: 64 << 20,
  maxMapMemoryBytes: 512 << 20,
  maxProgramMemoryBytesPerTenant: 16 << 20,
  maxProgramMemoryBytes: 256 << 20,
  maxDeallocateRangeBytes: 64 << 20,
  readCacheBytes: 64 << 20,
};

/** Hard ceilings on the limits themselves, so a config cannot ask for absurd memory. */
const LIMIT_RANGES: Record<keyof TargetLimits, [number, number]> = {
  maxConnections: [1, 65536],
  maxControllers: [1, 0xffef],
  maxIoQueues: [1, 1024],
  maxQueueDepth: [2, 1024],
  maxDataTransferBytes: [8192, 16 << 20],
  inCapsuleDataBytes: [0, 1 << 20],
  maxH2CDataBytes: [4096, 16 << 20],
  maxC2HDataBytes: [4096, 16 << 20],
  maxInFlightBytesPerConnection: [64 * 1024, 1 << 30],
  maxKeepAliveTimeoutMs: [1000, 86_400_000],
  idleTimeoutMs: [1000, 86_400_000],
  handshakeTimeoutMs: [100, 600_000],
  maxPendingConnections: [1, 65536],
  maxPendingConnectionsPerAddress: [1, 65536],
  maxConnectionsPerHost: [1, 65536],
  maxConnectionsPerAddress: [1, 65536],
  maxAssociationsPerHost: [1, 0xffef],
  maxAssociationsPerAddress: [1, 0xffef],
  maxPendingImageBytesPerAssociation: [4096, 1 << 30],
  maxPendingImageBytesPerHost: [4096, 1 << 30],
  maxPendingImageBytes: [4096, 2 ** 34],
  pendingLoadTimeoutMs: [100, 3_600_000],
  verifierWorkers: [0, 64],
  maxVerificationsPerTenant: [1, 1024],
  verifyTimeoutMs: [100, 3_600_000],
  verifyMemoryBytes: [16 << 20, 2 ** 34],
  maxMapMemoryBytesPerTenant: [0, 2 ** 40],
  maxMapMemoryBytes: [0, 2 ** 40],
  maxProgramMemoryBytesPerTenant: [4096, 2 ** 40],
  maxProgramMemoryBytes: [4096, 2 ** 40],
  maxDeallocateRangeBytes: [4096, 2 ** 40],
  readCacheBytes: [0, 2 ** 34],
};

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
  checkKeys(raw, ['listen', 'dataDir', 'digests', 'limits', 'programs', 'auth', 'subsystems'], '');

  const listenRaw = raw.listen ?? {};
  if (!isObject(listenRaw)) throw new ConfigError('listen', 'must be an object');
  checkKeys(listenRaw, ['host', 'port'], 'listen');
  const listen = {
    host: listenRaw.host === undefined ? DEFAULT_LISTEN.host : str(listenRaw.host, 'listen.host'),
    port: listenRaw.port === undefined ? DEFAULT_LISTEN.port : int(listenRaw.port, 'listen.port', 0, 65535),
  };

  const dataDir = resolve(baseDir, raw.dataDir === undefined ? DEFAULT_DATA_DIR : str(raw.dataDir, 'dataDir'));

  const digestsRaw = raw.digests ?? {};
  if (!isObject(digestsRaw)) throw new ConfigError('digests', 'must be an object');
  checkKeys(digestsRaw, ['header', 'data'], 'digests');
  const bool = (v: unknown, field: string, dflt: boolean) => {
    if (v === undefined) return dflt;
    if (typeof v !== 'boolean') throw new ConfigError(field, 'must be true or false');
    return v;
  };
  const digests = { header: bool(digestsRaw.header, 'digests.header', true), data: bool(digestsRaw.data, 'digests.data', true) };

  const limitsRaw = raw.limits ?? {};
  if (!isObject(limitsRaw)) throw new ConfigError('limits', 'must be an object');
  checkKeys(limitsRaw, Object.keys(DEFAULT_LIMITS), 'limits');
  const limits = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof TargetLimits)[]) {
    if (limitsRaw[key] !== undefined) limits[key] = int(limitsRaw[key], `limits.${key}`, ...LIMIT_RANGES[key]);
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
  const seen = new Set<string>();
  const subsystems = subsRaw.map((s, i) => {
    const sub = validateSubsystem(s, `subsystems[${i}]`, dataDir, i);
    if (seen.has(sub.nqn)) throw new ConfigError(`subsystems[${i}].nqn`, 'duplicate subsystem NQN');
    seen.add(sub.nqn);
    return sub;
  });
  const auth = authConfig(raw.auth, baseDir);
  return { listen, dataDir, digests, limits, programs: programLimits(raw.programs), subsystems, auth };
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
  checkKeys(raw, ['hosts', 'hashes', 'dhGroups'], 'auth');
  const list = <T extends string>(v: unknown, field: string, allowed: readonly T[], dflt: readonly T[]): T[] => {
    if (v === undefined) return [...dflt];
    if (!Array.isArray(v) || v.length === 0) throw new ConfigError(field, 'must be a non-empty array');
    return v.map((x, i) => {
      if (!allowed.includes(x as T)) throw new ConfigError(`${field}[${i}]`, `must be one of ${allowed.join(', ')}`);
      return x as T;
    });
  };
  const hashes = list(raw.hashes, 'auth.hashes', HASH_NAMES, DEFAULT_AUTH_POLICY.hashes);
  const dhGroups = list(raw.dhGroups, 'auth.dhGroups', DH_GROUP_NAMES, DEFAULT_AUTH_POLICY.dhGroups);
  const hostsRaw = raw.hosts ?? {};
  if (!isObject(hostsRaw)) throw new ConfigError('auth.hosts', 'must be an object keyed by host NQN');
  const hosts = new Map<string, HostCredentials>();
  for (const [nqn, v] of Object.entries(hostsRaw)) {
    const at = `auth.hosts.${nqn}`;
    validateNqn(nqn, at);
    if (!isObject(v)) throw new ConfigError(at, 'must be an object');
    checkKeys(v, ['key', 'keyFile', 'controllerKey', 'controllerKeyFile'], at);
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
  checkKeys(raw, ['defaults', 'tenants', 'scheduler'], 'programs');
  const keys = Object.keys(DEFAULT_TENANT_LIMITS) as (keyof TenantLimits)[];
  const parse = (v: unknown, base: TenantLimits, at: string): TenantLimits => {
    if (!isObject(v)) throw new ConfigError(at, 'must be an object');
    checkKeys(v, keys, at);
    const out = { ...base };
    for (const k of keys) if (v[k] !== undefined) out[k] = int(v[k], `${at}.${k}`, 1, MAX_PROGRAM_LIMIT);
    if (out.maxReadsPerStep > DEFAULT_TENANT_LIMITS.maxReadsPerStep) {
      throw new ConfigError(`${at}.maxReadsPerStep`, `at most ${DEFAULT_TENANT_LIMITS.maxReadsPerStep}`);
    }
    if (out.maxConcurrentExecutions > 32) throw new ConfigError(`${at}.maxConcurrentExecutions`, 'at most 32');
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
  checkKeys(schedulerRaw, ['maxTurnMicros', 'maxTurnInstructions'], 'programs.scheduler');
  const scheduler = {
    maxTurnMicros:
      schedulerRaw.maxTurnMicros === undefined
        ? DEFAULT_MAX_TURN_MICROS
        : int(schedulerRaw.maxTurnMicros, 'programs.scheduler.maxTurnMicros', 1, 1_000_000),
    maxTurnInstructions:
      schedulerRaw.maxTurnInstructions === undefined
        ? DEFAULT_MAX_TURN_INSTRUCTIONS
        : int(schedulerRaw.maxTurnInstructions, 'programs.scheduler.maxTurnInstructions', 1, MAX_PROGRAM_LIMIT),
  };
  return { defaults, tenants, scheduler };
}

function defaultSubsystemJson(): Json {
  return {
    nqn: DEFAULT_SUBSYSTEM_NQN,
    namespaces: [{ nsid: 1, path: 'default-ns1.img', sizeBytes: GIB, blockSize: 512 }],
  };
}

function validateSubsystem(s: unknown, at: string, dataDir: string, index: number): SubsystemConfig {
  if (!isObject(s)) throw new ConfigError(at, 'must be an object');
  checkKeys(s, ['nqn', 'serial', 'model', 'hosts', 'namespaces', 'requireAuthentication'], at);
  let requireAuthentication = false;
  if (s.requireAuthentication !== undefined) {
    if (typeof s.requireAuthentication !== 'boolean')
      throw new ConfigError(`${at}.requireAuthentication`, 'must be true or false');
    requireAuthentication = s.requireAuthentication;
  }
  const nqn = validateNqn(s.nqn, `${at}.nqn`);
  if (nqn === DISCOVERY_NQN) throw new ConfigError(`${at}.nqn`, 'the discovery NQN is reserved');
  const serial = s.serial === undefined ? `nearbpf${String(index + 1).padStart(4, '0')}` : ascii(s.serial, `${at}.serial`, 20);
  const model = s.model === undefined ? 'nearbpf' : ascii(s.model, `${at}.model`, 40);
  const hostsRaw = s.hosts ?? [{ nqn: '*', access: 'read-write' }];
  if (!Array.isArray(hostsRaw)) throw new ConfigError(`${at}.hosts`, 'must be an array');
  const hosts = hostsRaw.map((h, j): HostRule => {
    const hat = `${at}.hosts[${j}]`;
    if (!isObject(h)) throw new ConfigError(hat, 'must be an object');
    checkKeys(h, ['nqn', 'access'], hat);
    const hnqn = h.nqn === '*' ? '*' : validateNqn(h.nqn, `${hat}.nqn`);
    const access = h.access ?? 'read-write';
    if (access !== 'read-write' && access !== 'read-only')
      throw new ConfigError(`${hat}.access`, 'must be "read-write" or "read-only"');
    return { nqn: hnqn, access };
  });
  const nsRaw = s.namespaces;
  if (!Array.isArray(nsRaw) || nsRaw.length === 0) throw new ConfigError(`${at}.namespaces`, 'must be a non-empty array');
  if (nsRaw.length > 1024) throw new ConfigError(`${at}.namespaces`, 'at most 1024 namespaces');
  const nsids = new Set<number>();
  const namespaces = nsRaw.map((n, j): NamespaceConfig => {
    const nat = `${at}.namespaces[${j}]`;
    if (!isObject(n)) throw new ConfigError(nat, 'must be an object');
    checkKeys(n, ['nsid', 'path', 'sizeBytes', 'blockSize'], nat);
    const nsid = n.nsid === undefined ? j + 1 : int(n.nsid, `${nat}.nsid`, 1, 1024);
    if (nsids.has(nsid)) throw new ConfigError(`${nat}.nsid`, 'duplicate nsid');
    nsids.add(nsid);
    const path = str(n.path, `${nat}.path`);
    const blockSize = n.blockSize === undefined ? 512 : int(n.blockSize, `${nat}.blockSize`, 512, 4096);
    if (blockSize !== 512 && blockSize !== 4096) throw new ConfigError(`${nat}.blockSize`, 'must be 512 or 4096');
    let sizeBytes: number | undefined;
    if (n.sizeBytes !== undefined) {
      sizeBytes = int(n.sizeBytes, `${nat}.sizeBytes`, blockSize, 2 ** 50);
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
