/**
 * The one description of the target's configuration: every field with its type, default, range, unit
 * and meaning. `config.ts` takes its field names, defaults and ranges from here (unknown fields, bad
 * types and out-of-range values are refused by what this says), and `docs/configuration.md` is rendered
 * from it (`renderConfigReference`), so the validation and the reference cannot drift apart.
 */
import { DH_GROUP_NAMES, HASH_NAMES } from '../protocol/dhchap.js';
import { DEFAULT_TENANT_LIMITS, type TenantLimits } from '../runtime/budget.js';
import { DEFAULT_MAX_TURN_INSTRUCTIONS, DEFAULT_MAX_TURN_MICROS } from '../runtime/scheduler.js';
import { LOG_FORMATS, LOG_LEVELS } from './logger.js';
import { DEFAULT_EXECUTION_WORKER_NICE, MAX_NICE } from './thread-priority.js';

export type FieldUnit = 'bytes' | 'milliseconds' | 'microseconds' | 'count' | 'port' | 'nice levels';

interface FieldBase {
  /** What the field means, one or two sentences. */
  doc: string;
}
export interface IntegerField extends FieldBase {
  kind: 'integer';
  default?: number;
  min: number;
  max: number;
  unit?: FieldUnit;
}
export interface BooleanField extends FieldBase {
  kind: 'boolean';
  default: boolean;
}
export interface StringField extends FieldBase {
  kind: 'string';
  default?: string;
  /** `nqn`: an NVMe Qualified Name; `path`: relative to the config file's folder (or dataDir); `secret`: never printed. */
  format?: 'nqn' | 'path' | 'secret' | 'host' | 'ascii' | 'host:port';
  maxLength?: number;
}
export interface EnumField extends FieldBase {
  kind: 'enum';
  values: readonly (string | number)[];
  default?: string | number;
}
export interface ListField extends FieldBase {
  kind: 'list';
  values: readonly string[];
  default: readonly string[];
}
export interface ObjectField extends FieldBase {
  kind: 'object';
  fields: Record<string, Field>;
}
/** An object keyed by something the user names (a host NQN), each value of the same shape. */
export interface MapField extends FieldBase {
  kind: 'map';
  key: string;
  value: ObjectField;
}
export interface ArrayField extends FieldBase {
  kind: 'array';
  item: ObjectField;
  maxItems: number;
  /** Shown in the reference when the array is absent. */
  defaultNote?: string;
  /** One object alone is accepted as a list of one. */
  single?: boolean;
}
export type Field = IntegerField | BooleanField | StringField | EnumField | ListField | ObjectField | MapField | ArrayField;

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;
const DAY_MS = 86_400_000;

const int = (def: number, min: number, max: number, unit: FieldUnit, doc: string): IntegerField => ({
  kind: 'integer',
  default: def,
  min,
  max,
  unit,
  doc,
});

/** NVMe/TCP limits; `TargetLimits` in config.ts has exactly these keys (checked by the compiler). */
export const LIMIT_FIELDS = {
  maxConnections: int(256, 1, 65536, 'count', 'TCP connections (queues), all hosts together.'),
  maxControllers: int(64, 1, 0xffef, 'count', 'Associations (admin queues), all hosts together.'),
  maxIoQueues: int(8, 1, 1024, 'count', 'I/O queues per controller.'),
  maxQueueDepth: int(128, 2, 1024, 'count', 'Entries per queue (MQES + 1; a Connect asking for a larger SQSIZE is refused).'),
  maxDataTransferBytes: int(
    MIB,
    8192,
    16 * MIB,
    'bytes',
    'Largest data transfer of one command (MDTS); a power of two. Commands beyond it get Invalid Field.',
  ),
  inCapsuleDataBytes: int(16384, 0, MIB, 'bytes', 'In-capsule data on I/O queues (IOCCSZ - 64 bytes); a multiple of 16.'),
  maxH2CDataBytes: int(128 * KIB, 4096, 16 * MIB, 'bytes', 'MAXH2CDATA: the size of each R2T the target sends.'),
  maxC2HDataBytes: int(128 * KIB, 4096, 16 * MIB, 'bytes', 'Data bytes per C2HData PDU the target sends.'),
  maxInFlightBytesPerConnection: int(
    16 * MIB,
    64 * KIB,
    GIB,
    'bytes',
    'Data buffered per connection before the socket is paused; at least maxDataTransferBytes.',
  ),
  maxKeepAliveTimeoutMs: int(3_600_000, 1000, DAY_MS, 'milliseconds', 'Largest keep-alive timeout (KATO) a Connect may ask for.'),
  idleTimeoutMs: int(
    300_000,
    1000,
    DAY_MS,
    'milliseconds',
    'An association without a command this long is dropped when KATO is 0.',
  ),
  handshakeTimeoutMs: int(5_000, 100, 600_000, 'milliseconds', 'ICReq, Connect and authentication must finish within this.'),
  maxPendingConnections: int(
    32,
    1,
    65536,
    'count',
    'Connections still in their handshake, all together; when full the oldest pending one is dropped for a new one.',
  ),
  maxPendingConnectionsPerAddress: int(8, 1, 65536, 'count', 'Connections in their handshake from one source address.'),
  maxConnectionsPerHost: int(32, 1, 65536, 'count', 'Queues of one host NQN, all its associations together.'),
  maxConnectionsPerAddress: int(64, 1, 65536, 'count', 'Queues from one source address.'),
  maxAssociationsPerHost: int(8, 1, 0xffef, 'count', 'Admin queues (associations) of one host NQN.'),
  maxAssociationsPerAddress: int(16, 1, 0xffef, 'count', 'Admin queues (associations) from one source address.'),
  maxPendingImageBytesPerAssociation: int(
    16 * MIB,
    4096,
    GIB,
    'bytes',
    'Bytes of half-sent program images (LOAD chunks) of one association; memory is allocated as chunks arrive.',
  ),
  maxPendingImageBytesPerHost: int(32 * MIB, 4096, GIB, 'bytes', 'Bytes of half-sent program images of one host NQN.'),
  maxPendingImageBytes: int(128 * MIB, 4096, 2 ** 34, 'bytes', 'Bytes of half-sent program images, all hosts together.'),
  pendingLoadTimeoutMs: int(30_000, 100, 3_600_000, 'milliseconds', 'A half-sent load without a chunk this long is dropped.'),
  verifierWorkers: int(0, 0, 64, 'count', 'Verifier threads; 0 means one per core beyond the first, between 2 and 4.'),
  maxVerificationsPerTenant: int(
    2,
    1,
    1024,
    'count',
    'Loads of one host verifying or queued (beyond: VerifierBusy); tenants are served round-robin.',
  ),
  verifyTimeoutMs: int(60_000, 100, 3_600_000, 'milliseconds', 'Wall clock per verification; beyond it the worker is replaced.'),
  verifyMemoryBytes: int(512 * MIB, 16 * MIB, 2 ** 34, 'bytes', 'Heap per verifier worker; beyond it the verification fails.'),
  maxMapMemoryBytesPerTenant: int(64 * MIB, 0, 2 ** 40, 'bytes', 'Map memory of one host’s loaded programs.'),
  maxMapMemoryBytes: int(512 * MIB, 0, 2 ** 40, 'bytes', 'Map memory of all hosts’ loaded programs.'),
  maxProgramMemoryBytesPerTenant: int(
    16 * MIB,
    4096,
    2 ** 40,
    'bytes',
    'Loaded code of one host (instructions x 64, JIT output included).',
  ),
  maxProgramMemoryBytes: int(256 * MIB, 4096, 2 ** 40, 'bytes', 'Loaded code of all hosts.'),
  maxDeallocateRangeBytes: int(64 * MIB, 4096, 2 ** 40, 'bytes', 'Largest Dataset Management range (advertised as DMRSL).'),
  readCacheBytes: int(
    64 * MIB,
    0,
    2 ** 34,
    'bytes',
    'Write-through cache of 4 KiB pages per namespace, for small reads; 0 disables it.',
  ),
} satisfies Record<string, IntegerField>;

/** Upper bound of every storage-function limit in the configuration (each is a count or a size). */
const MAX_PROGRAM_LIMIT = 2 ** 40;
const tenantInt = (key: keyof TenantLimits, max: number, unit: FieldUnit, doc: string): IntegerField =>
  int(DEFAULT_TENANT_LIMITS[key], 1, max, unit, doc);

/** Storage-function limits per tenant; exactly the keys of `TenantLimits` (checked by the compiler). */
export const TENANT_LIMIT_FIELDS: Record<keyof TenantLimits, IntegerField> = {
  maxSteps: tenantInt('maxSteps', MAX_PROGRAM_LIMIT, 'count', 'Steps (program runs between reads) of one execution.'),
  maxBytesRead: tenantInt('maxBytesRead', MAX_PROGRAM_LIMIT, 'bytes', 'Namespace bytes one execution may read.'),
  maxReadsPerStep: tenantInt(
    'maxReadsPerStep',
    DEFAULT_TENANT_LIMITS.maxReadsPerStep,
    'count',
    'Reads one step may ask for (nb_read fan-out).',
  ),
  maxInstructionsPerStep: tenantInt(
    'maxInstructionsPerStep',
    MAX_PROGRAM_LIMIT,
    'count',
    'Instructions of one step; bounds how long one step holds the event loop.',
  ),
  maxInstructionsPerExecution: tenantInt(
    'maxInstructionsPerExecution',
    MAX_PROGRAM_LIMIT,
    'count',
    'Instructions of one execution, all steps.',
  ),
  maxOutputBytes: tenantInt('maxOutputBytes', MAX_PROGRAM_LIMIT, 'bytes', 'Bytes one execution may emit (nb_emit).'),
  deadlineMs: tenantInt('deadlineMs', MAX_PROGRAM_LIMIT, 'milliseconds', 'Wall-clock time of one execution, from its start.'),
  maxConcurrentExecutions: tenantInt('maxConcurrentExecutions', 32, 'count', 'Executions of one tenant running at once.'),
  maxLoadedPrograms: tenantInt('maxLoadedPrograms', MAX_PROGRAM_LIMIT, 'count', 'Programs one tenant may have loaded.'),
  maxMapMemoryBytes: tenantInt('maxMapMemoryBytes', MAX_PROGRAM_LIMIT, 'bytes', 'Map memory of one program.'),
};

/** Listen addresses (ports) of one target. */
export const MAX_PORTS = 64;

const tenantLimits = (doc: string): ObjectField => ({ kind: 'object', doc, fields: TENANT_LIMIT_FIELDS });

export const CONFIG_SCHEMA: ObjectField = {
  kind: 'object',
  doc: 'The target configuration (`nearbpf serve --config FILE`): a JSON object, every field optional.',
  fields: {
    listen: {
      kind: 'array',
      maxItems: MAX_PORTS,
      single: true,
      doc: 'The ports the NVMe/TCP target listens on, each exporting every subsystem (multipath: a host may connect to several); one object is taken as a list of one. The discovery log lists every port (PORTID = position from 1). `serve --listen HOST:PORT` (repeatable) overrides it.',
      defaultNote: '`{ "host": "127.0.0.1", "port": 4420 }`',
      item: {
        kind: 'object',
        doc: 'One port.',
        fields: {
          host: {
            kind: 'string',
            format: 'host',
            default: '127.0.0.1',
            doc: 'Address to listen on (an IPv6 address without brackets).',
          },
          port: { kind: 'integer', default: 4420, min: 0, max: 65535, unit: 'port', doc: 'TCP port; 0 picks a free one.' },
        },
      },
    },
    ioThreads: int(
      0,
      0,
      MAX_PORTS,
      'count',
      'I/O threads: 0 serves every port on the main thread; N > 0 serves the ports on N worker threads (port i on thread i mod N, never more threads than ports), each with its associations and data path, while the main thread keeps the controller ids, quotas and the programs; Execute commands go from each thread straight to the execution workers, and every thread shares one page cache per namespace. `serve --io-threads N`.',
    ),
    dataDir: {
      kind: 'string',
      format: 'path',
      default: './nearbpf-data',
      doc: 'Where relative namespace paths live; relative to the config file’s folder (`serve --data-dir` overrides it).',
    },
    digests: {
      kind: 'object',
      doc: 'Digests the target grants when a host asks for them in ICReq.',
      fields: {
        header: { kind: 'boolean', default: true, doc: 'Grant the header digest (CRC32C of each PDU header).' },
        data: { kind: 'boolean', default: true, doc: 'Grant the data digest (CRC32C of each PDU’s data).' },
      },
    },
    limits: {
      kind: 'object',
      doc: 'Limits of the NVMe/TCP target, per connection, host, address and overall.',
      fields: LIMIT_FIELDS,
    },
    programs: {
      kind: 'object',
      doc: 'Storage-function limits per tenant (the connecting host NQN).',
      fields: {
        defaults: tenantLimits('Limits of every tenant without its own entry.'),
        tenants: {
          kind: 'map',
          key: 'host NQN',
          doc: 'Overrides per host NQN; fields not given come from `programs.defaults`.',
          value: tenantLimits('Limits of this tenant.'),
        },
        executionWorkers: int(
          -1,
          -1,
          64,
          'count',
          'Threads that run storage-function steps (never the thread serving sockets): -1 means one per core beyond the first, at least 1; 0 runs steps on the I/O thread (no workers).',
        ),
        executionWorkerNice: int(
          DEFAULT_EXECUTION_WORKER_NICE,
          0,
          MAX_NICE,
          'nice levels',
          'How far below the target’s own priority the execution workers run (Linux nice, per thread; capped at 19): on cores shared with the I/O threads the kernel then lets a waking I/O thread take the core from a busy worker at once, so plain I/O does not wait in the run queue behind storage-function steps (measured on 2 cores: a victim’s plain-read p99 next to a busy worker mostly 1.0-1.2x at 10 and 19, a scheduler slice of 2-5 ms at 0-5), while idle cores still run steps at full speed. The price, only when cores are oversubscribed: steps get less CPU (32 outstanding lookups with the clients on the same 2 cores: about 34k/s at 0, 12k at 10, 8k at 19). 0 keeps the target’s priority (pushdown throughput first). Where threads have no priority of their own (no /proc/thread-self) or the kernel refuses, the workers keep the target’s priority and one warning is logged.',
        ),
        weights: {
          kind: 'map',
          key: 'host NQN',
          doc: 'CPU weight per host NQN on the execution workers (deficit round-robin over measured step time); unlisted hosts weigh 1.',
          value: {
            kind: 'object',
            doc: 'One tenant’s share.',
            fields: {
              weight: int(
                1,
                1,
                1000,
                'count',
                'Its share of a busy worker’s time against other waiting tenants, relative to their weights.',
              ),
            },
          },
        },
        scheduler: {
          kind: 'object',
          doc: 'Bounds of one scheduler turn: how long one tenant’s synchronous chain of steps may run before it yields.',
          fields: {
            maxTurnMicros: int(DEFAULT_MAX_TURN_MICROS, 1, 1_000_000, 'microseconds', 'Wall-clock time of one turn.'),
            maxTurnInstructions: int(
              DEFAULT_MAX_TURN_INSTRUCTIONS,
              1,
              MAX_PROGRAM_LIMIT,
              'count',
              'Instructions of one turn, all steps in it.',
            ),
          },
        },
      },
    },
    auth: {
      kind: 'object',
      doc: 'DH-HMAC-CHAP (NVMe in-band authentication).',
      fields: {
        hosts: {
          kind: 'map',
          key: 'host NQN',
          doc: 'Credentials per host NQN: a host with a key must authenticate on every queue.',
          value: {
            kind: 'object',
            doc: 'One host’s keys (`nvme gen-dhchap-key` / `nearbpf gen-dhchap-key` format); key or keyFile is required.',
            fields: {
              key: { kind: 'string', format: 'secret', doc: 'The host key, `DHHC-1:NN:...:`. Never printed or logged.' },
              keyFile: { kind: 'string', format: 'path', doc: 'A file whose first line is the host key (instead of key).' },
              controllerKey: {
                kind: 'string',
                format: 'secret',
                doc: 'Optional controller key: the target proves itself too (bidirectional). Must differ from key.',
              },
              controllerKeyFile: { kind: 'string', format: 'path', doc: 'A file whose first line is the controller key.' },
            },
          },
        },
        hashes: {
          kind: 'list',
          values: HASH_NAMES,
          default: ['sha512', 'sha384', 'sha256'],
          doc: 'Hash functions, in order of preference.',
        },
        dhGroups: {
          kind: 'list',
          values: DH_GROUP_NAMES,
          default: ['ffdhe2048', 'ffdhe3072', 'ffdhe4096', 'ffdhe6144', 'ffdhe8192', 'null'],
          doc: 'Diffie-Hellman groups, in order of preference (`null`: no DH exchange).',
        },
      },
    },
    log: {
      kind: 'object',
      doc: 'The log on stderr (`docs/logging.md` lists its events).',
      fields: {
        format: {
          kind: 'enum',
          values: LOG_FORMATS,
          default: 'text',
          doc: '`text`: human-readable lines; `json`: one JSON object per line (pino), for log collectors (`serve --log-format`).',
        },
        level: {
          kind: 'enum',
          values: LOG_LEVELS,
          default: 'info',
          doc: 'The least severe level logged (`serve --log-level`; `--verbose` is `debug`).',
        },
      },
    },
    metrics: {
      kind: 'object',
      doc: 'Prometheus metrics over HTTP (`GET /metrics`); off unless `listen` is set (`serve --metrics HOST:PORT` sets it).',
      fields: {
        listen: {
          kind: 'string',
          format: 'host:port',
          doc: 'Where the metrics endpoint listens, e.g. `127.0.0.1:9464` (`[::1]:9464` for IPv6). Absent: no metrics.',
        },
        maxTenants: int(
          64,
          1,
          100_000,
          'count',
          'Host NQNs (tenants) that get their own `host`/`tenant` label; the rest are counted under `other`.',
        ),
        maxProgramsPerTenant: int(
          32,
          1,
          100_000,
          'count',
          'Program names per labelled tenant with their own `program` label; the rest under `other`.',
        ),
      },
    },
    subsystems: {
      kind: 'array',
      maxItems: 1024,
      doc: 'The NVM subsystems the target exports; a non-empty array.',
      defaultNote: 'one subsystem `nqn.2026-11.io.nearbpf:default` with namespace 1 = `default-ns1.img`, 1 GiB, 512-byte blocks',
      item: {
        kind: 'object',
        doc: 'One subsystem.',
        fields: {
          nqn: { kind: 'string', format: 'nqn', maxLength: 223, doc: 'Subsystem NQN (required; not the discovery NQN; unique).' },
          requireAuthentication: {
            kind: 'boolean',
            default: false,
            doc: 'Refuse hosts without a key in `auth.hosts` (Connect Invalid Host).',
          },
          serial: {
            kind: 'string',
            format: 'ascii',
            maxLength: 20,
            doc: 'Serial number; default `nearbpf` + the 4-digit index from 1.',
          },
          model: { kind: 'string', format: 'ascii', maxLength: 40, default: 'nearbpf', doc: 'Model number.' },
          hosts: {
            kind: 'array',
            maxItems: 65536,
            doc: 'Who may connect; exact NQNs take precedence over `*`. An unlisted host gets Connect Invalid Host.',
            defaultNote: '`[{ "nqn": "*", "access": "read-write" }]`',
            item: {
              kind: 'object',
              doc: 'One access rule.',
              fields: {
                nqn: { kind: 'string', format: 'nqn', doc: 'A host NQN, or `*` for any host (required).' },
                access: {
                  kind: 'enum',
                  values: ['read-write', 'read-only'],
                  default: 'read-write',
                  doc: 'What the host may do.',
                },
              },
            },
          },
          namespaces: {
            kind: 'array',
            maxItems: 1024,
            doc: 'The namespaces (required, non-empty).',
            item: {
              kind: 'object',
              doc: 'One namespace; a missing file is created sparse, a block device is used as is.',
              fields: {
                nsid: {
                  kind: 'integer',
                  min: 1,
                  max: 1024,
                  unit: 'count',
                  doc: 'Namespace ID (unique); default the position from 1.',
                },
                path: {
                  kind: 'string',
                  format: 'path',
                  doc: 'File or block device (required); relative paths are relative to dataDir.',
                },
                sizeBytes: {
                  kind: 'integer',
                  min: 512,
                  max: 2 ** 50,
                  unit: 'bytes',
                  doc: 'Size; required for a new file, a multiple of blockSize; for a block device at most its size (default: all of it).',
                },
                blockSize: { kind: 'enum', values: [512, 4096], default: 512, doc: 'Logical block size.' },
              },
            },
          },
        },
      },
    },
  },
};

/** The field names an object accepts. */
export function fieldNames(node: ObjectField): string[] {
  return Object.keys(node.fields);
}

/** An object field of the schema by its dotted path (`limits`, `programs.defaults`). */
export function objectAt(path: string): ObjectField {
  const unwrap = (f: Field): Field => (f.kind === 'map' ? f.value : f.kind === 'array' ? f.item : f);
  let node: Field = CONFIG_SCHEMA;
  for (const part of path.split('.')) {
    const parent = unwrap(node);
    if (parent.kind !== 'object' || parent.fields[part] === undefined) throw new Error(`no schema field ${path}`);
    node = parent.fields[part];
  }
  node = unwrap(node);
  if (node.kind !== 'object') throw new Error(`schema field ${path} is not an object`);
  return node;
}

/** The defaults of an object's integer fields (all of them must have one). */
export function integerDefaults<K extends string>(fields: Record<K, IntegerField>): Record<K, number> {
  const out = {} as Record<K, number>;
  for (const k of Object.keys(fields) as K[]) {
    const d = fields[k].default;
    if (d === undefined) throw new Error(`schema field ${k} has no default`);
    out[k] = d;
  }
  return out;
}

function typeOf(f: Field): string {
  switch (f.kind) {
    case 'integer':
      return `integer ${f.min}..${f.max}`;
    case 'string':
      return f.format ? `string (${f.format}${f.maxLength ? `, ≤ ${f.maxLength}` : ''})` : 'string';
    case 'enum':
      return f.values.map((v) => JSON.stringify(v)).join(' \\| ');
    case 'list':
      return `array of ${f.values.map((v) => `\`${v}\``).join(', ')}`;
    case 'map':
      return `object keyed by ${f.key}`;
    case 'array':
      return `array (≤ ${f.maxItems})${f.single ? ' or one object' : ''}`;
    default:
      return f.kind;
  }
}

function defaultOf(f: Field): string {
  if (f.kind === 'array') return f.defaultNote ?? '';
  if (f.kind === 'object' || f.kind === 'map') return '';
  const d = (f as { default?: unknown }).default;
  if (d === undefined) return '';
  if (f.kind === 'integer' && f.unit === 'bytes' && typeof d === 'number' && d >= KIB) return `\`${d}\` (${humanBytes(d)})`;
  return `\`${JSON.stringify(d)}\``;
}

function humanBytes(n: number): string {
  for (const [u, s] of [
    [GIB, 'GiB'],
    [MIB, 'MiB'],
    [KIB, 'KiB'],
  ] as const) {
    if (n % u === 0) return `${n / u} ${s}`;
  }
  return `${n} B`;
}

/** Markdown reference of the whole configuration, one table per object. */
export function renderConfigReference(schema: ObjectField = CONFIG_SCHEMA): string {
  const out: string[] = [
    '# nearbpf target configuration',
    '',
    '<!-- Generated from src/target/config-schema.ts by `npm run docs:config`; do not edit by hand. -->',
    '',
    schema.doc,
    '`nearbpf serve --print-config` prints the effective configuration (defaults filled in, secrets redacted).',
    'Unknown fields, wrong types and values out of range are refused at startup with the field’s path.',
    '',
  ];
  const section = (path: string, node: ObjectField) => {
    out.push(
      `## \`${path}\``,
      '',
      node.doc,
      '',
      '| field | type | default | unit | meaning |',
      '| --- | --- | --- | --- | --- |',
    );
    const nested: [string, ObjectField][] = [];
    for (const [name, f] of Object.entries(node.fields)) {
      const unit = f.kind === 'integer' && f.unit ? f.unit : '';
      out.push(`| \`${name}\` | ${typeOf(f)} | ${defaultOf(f)} | ${unit} | ${f.doc} |`);
      if (f.kind === 'object') nested.push([`${path}.${name}`, f]);
      if (f.kind === 'map') nested.push([`${path}.${name}.<${f.key}>`, f.value]);
      if (f.kind === 'array') nested.push([`${path}.${name}[]`, f.item]);
    }
    out.push('');
    for (const [p, n] of nested) section(p, n);
  };
  out.push('## top level', '', '| field | type | default | unit | meaning |', '| --- | --- | --- | --- | --- |');
  const nested: [string, ObjectField][] = [];
  for (const [name, f] of Object.entries(schema.fields)) {
    out.push(`| \`${name}\` | ${typeOf(f)} | ${defaultOf(f)} | | ${f.doc} |`);
    if (f.kind === 'object') nested.push([name, f]);
    if (f.kind === 'array') nested.push([`${name}[]`, f.item]);
  }
  out.push('');
  for (const [p, n] of nested) section(p, n);
  return `${out.join('\n').trimEnd()}\n`;
}
