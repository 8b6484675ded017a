/**
 * What the NVMe host commands (`discover`, `id-ctrl`, `id-ns`, `read`, `write`, `flush`) share: the
 * connection flags (`--addr`, `--nqn`, `--hostnqn`), number parsing, `withHost` (connect, run, always
 * close), and NVMe status errors rewritten to say which operation failed and what the status means.
 */
import { readFileSync } from 'node:fs';
import type { DhchapOptions } from '../client/auth.js';
import { NvmeTcpHost } from '../client/host.js';
import { hostIdForNqn, resolveHostIdentity, uuidBytes } from '../client/identity.js';
import { NearbpfError, UsageError } from '../errors.js';
import { AdminOpcode, Cns, DISCOVERY_NQN, NQN_MAX_BYTES } from '../protocol/constants.js';
import { type DhchapKey, DhchapKeyError, parseDhchapKey } from '../protocol/dhchap.js';
import { NvmeStatusError, TransportError } from '../protocol/errors.js';
import { DEFAULT_LISTEN, DEFAULT_SUBSYSTEM_NQN } from '../target/config.js';
import type { CliIo, OutputStream } from './io.js';

export { DEFAULT_SUBSYSTEM_NQN, DISCOVERY_NQN };

export const DEFAULT_ADDR = `${DEFAULT_LISTEN.host}:${DEFAULT_LISTEN.port}`;
export const DEFAULT_PORT = DEFAULT_LISTEN.port;

/** Largest NSID a command may name (FFFFFFFFh is the broadcast value, not a namespace). */
const MAX_NSID = 0xfffffffe;
/** NLB is a 16-bit 0's based field: at most 65536 blocks per Read/Write. */
const MAX_BLOCKS_PER_COMMAND = 0x10000;
/** Per-command transfer when the controller reports no limit (MDTS = 0). */
const UNLIMITED_MDTS_CHUNK_BYTES = 1 << 20;

/** The `parseCommandArgs` options every NVMe host command takes; spread into the command's own. */
export const CONNECTION_OPTIONS = {
  addr: { type: 'string', default: DEFAULT_ADDR },
  nqn: { type: 'string' },
  hostnqn: { type: 'string' },
  hostid: { type: 'string' },
  'dhchap-secret': { type: 'string' },
  'dhchap-secret-file': { type: 'string' },
  'dhchap-ctrl-secret': { type: 'string' },
  'dhchap-ctrl-secret-file': { type: 'string' },
} as const;

export function connectionUsage(defaultNqn = DEFAULT_SUBSYSTEM_NQN): string {
  return `  --addr HOST:PORT   target address (default ${DEFAULT_ADDR}; [::1]:4420 for IPv6; the port defaults to ${DEFAULT_PORT})
  --nqn NQN          subsystem NQN (default ${defaultNqn})
  --hostnqn NQN      host NQN to connect as (default: /etc/nvme/hostnqn, else one created once in
                     $XDG_CONFIG_HOME/nearbpf or ~/.config/nearbpf; 'nearbpf hostnqn' prints it)
  --hostid UUID      Host Identifier (default: /etc/nvme/hostid, or derived from the host NQN)
  --dhchap-secret KEY          DH-HMAC-CHAP host secret (DHHC-1:...), used when the target asks;
                               or --dhchap-secret-file FILE, or $NEARBPF_DHCHAP_SECRET
  --dhchap-ctrl-secret KEY     controller secret: the target must prove it knows it (bidirectional);
                               or --dhchap-ctrl-secret-file FILE, or $NEARBPF_DHCHAP_CTRL_SECRET`;
}

export const NVME_EXIT_STATUS = `Exit status: 0 on success, 1 if the connection or an NVMe command fails (the NVMe status is
printed as "(SCT x SC y)"), 2 on bad usage.`;

export interface ConnectionOptions {
  host: string;
  port: number;
  subsystemNqn: string;
  hostNqn: string;
  hostId: Buffer;
  dhchap?: DhchapOptions;
}

type SecretValues = {
  'dhchap-secret'?: string;
  'dhchap-secret-file'?: string;
  'dhchap-ctrl-secret'?: string;
  'dhchap-ctrl-secret-file'?: string;
};

/** One secret from its flag, its file flag or its environment variable (in that order), parsed. */
function secretOption(
  values: SecretValues,
  flag: 'dhchap-secret' | 'dhchap-ctrl-secret',
  envName: string,
): DhchapKey | undefined {
  const inline = values[flag];
  const file = values[`${flag}-file`];
  if (inline !== undefined && file !== undefined) throw new UsageError(`give --${flag} or --${flag}-file, not both`);
  let text: string | undefined = inline;
  let from = `--${flag}`;
  if (file !== undefined) {
    try {
      text = readFileSync(file, 'utf8').split('\n')[0];
    } catch (e) {
      throw new UsageError(`--${flag}-file: cannot read ${file}: ${(e as Error).message}`);
    }
    from = `--${flag}-file ${file}`;
  } else if (text === undefined && process.env[envName]) {
    text = process.env[envName];
    from = `$${envName}`;
  }
  if (text === undefined) return undefined;
  try {
    return parseDhchapKey(text);
  } catch (e) {
    // The message never repeats the secret.
    if (e instanceof DhchapKeyError) throw new UsageError(`${from}: ${e.message}`);
    throw e;
  }
}

/** The DH-HMAC-CHAP options of the connection flags, or undefined when no secret is given. */
export function parseDhchapOptions(values: SecretValues): DhchapOptions | undefined {
  const secret = secretOption(values, 'dhchap-secret', 'NEARBPF_DHCHAP_SECRET');
  const controllerSecret = secretOption(values, 'dhchap-ctrl-secret', 'NEARBPF_DHCHAP_CTRL_SECRET');
  if (controllerSecret && !secret) throw new UsageError('--dhchap-ctrl-secret needs --dhchap-secret too');
  return secret ? { secret, controllerSecret } : undefined;
}

/** `HOST:PORT`, `HOST`, `[IPV6]:PORT` or `[IPV6]`; the port is 1..65535. */
export function parseAddress(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\]|([^:[\]\s]+))(?::(\d{1,5}))?$/.exec(value);
  const port = m?.[3] === undefined ? DEFAULT_PORT : Number(m[3]);
  if (!m || port < 1 || port > 65535) {
    throw new UsageError(`--addr must be HOST:PORT (or [IPV6]:PORT) with a port in 1..65535, got '${value}'`);
  }
  return { host: m[1] ?? m[2], port };
}

function checkNqn(value: string, flag: string): string {
  if (value.length === 0) throw new UsageError(`${flag} must not be empty`);
  if (Buffer.byteLength(value, 'utf8') > NQN_MAX_BYTES) {
    throw new UsageError(`${flag} must be at most ${NQN_MAX_BYTES} bytes, got ${Buffer.byteLength(value, 'utf8')}`);
  }
  return value;
}

export function parseConnectionOptions(
  values: { addr?: string; nqn?: string; hostnqn?: string; hostid?: string } & SecretValues,
  defaultNqn = DEFAULT_SUBSYSTEM_NQN,
): ConnectionOptions {
  const dhchap = parseDhchapOptions(values);
  const { host, port } = parseAddress(values.addr ?? DEFAULT_ADDR);
  const subsystemNqn = checkNqn(values.nqn ?? defaultNqn, '--nqn');
  let hostId: Buffer | undefined;
  if (values.hostid !== undefined) {
    try {
      hostId = uuidBytes(values.hostid);
    } catch {
      throw new UsageError(`--hostid must be a UUID (8-4-4-4-12 hex digits), got '${values.hostid}'`);
    }
  }
  if (values.hostnqn !== undefined) {
    const hostNqn = checkNqn(values.hostnqn, '--hostnqn');
    return { host, port, subsystemNqn, hostNqn, hostId: hostId ?? hostIdForNqn(hostNqn), dhchap };
  }
  const identity = resolveHostIdentity();
  return { host, port, subsystemNqn, hostNqn: identity.hostNqn, hostId: hostId ?? identity.hostId, dhchap };
}

/**
 * A non-negative integer in decimal or 0x hex, within [min, max] (both safe integers). `flag` names
 * it in messages; a missing value is a usage error.
 */
export function parseNumber(value: string | undefined, flag: string, min: number, max: number): number {
  if (value === undefined) throw new UsageError(`missing ${flag}`);
  if (!/^(?:0[xX][0-9a-fA-F]+|[0-9]+)$/.test(value)) {
    throw new UsageError(`${flag} must be a decimal or 0x hex integer, got '${value}'`);
  }
  const n = BigInt(value);
  if (n < BigInt(min) || n > BigInt(max)) throw new UsageError(`${flag} must be in ${min}..${max}, got ${value}`);
  return Number(n);
}

export const parseNsid = (value: string | undefined): number => parseNumber(value, '--nsid', 1, MAX_NSID);

/** `--slba` and `--count` together: the last LBA must stay within what a JavaScript number holds exactly. */
export function parseLbaRange(slba: string | undefined, count: string | undefined): { slba: number; count: number } {
  const start = parseNumber(slba, '--slba', 0, Number.MAX_SAFE_INTEGER);
  const blocks = parseNumber(count, '--count', 1, Number.MAX_SAFE_INTEGER);
  if (blocks - 1 > Number.MAX_SAFE_INTEGER - start) {
    throw new UsageError(`--slba + --count must stay below 2^53 (LBA ${Number.MAX_SAFE_INTEGER}), got ${slba} + ${count}`);
  }
  return { slba: start, count: blocks };
}

// ---- errors ----

/** A host-side failure that is not an NVMe status or a transport error (e.g. an inactive namespace). */
export class NvmeHostError extends NearbpfError {
  readonly code = 'ERR_NVME_HOST';
}

const SCT_NAMES: Record<number, string> = {
  0: 'Generic',
  1: 'Command Specific',
  2: 'Media and Data Integrity',
  3: 'Path Related',
  7: 'Vendor Specific',
};

const GENERIC_STATUS: Record<number, string> = {
  0: 'Successful Completion',
  1: 'Invalid Command Opcode',
  2: 'Invalid Field in Command',
  3: 'Command ID Conflict',
  4: 'Data Transfer Error',
  5: 'Commands Aborted due to Power Loss Notification',
  6: 'Internal Error',
  7: 'Command Abort Requested',
  8: 'Command Aborted due to SQ Deletion',
  9: 'Command Aborted due to Failed Fused Command',
  10: 'Command Aborted due to Missing Fused Command',
  11: 'Invalid Namespace or Format',
  12: 'Command Sequence Error',
  13: 'Invalid SGL Segment Descriptor',
  14: 'Invalid Number of SGL Descriptors',
  15: 'Data SGL Length Invalid',
  16: 'Metadata SGL Length Invalid',
  17: 'SGL Descriptor Type Invalid',
  18: 'Invalid Use of Controller Memory Buffer',
  19: 'PRP Offset Invalid',
  20: 'Atomic Write Unit Exceeded',
  21: 'Operation Denied',
  22: 'SGL Offset Invalid',
  24: 'Host Identifier Inconsistent Format',
  25: 'Keep Alive Timer Expired',
  26: 'Keep Alive Timeout Invalid',
  27: 'Command Aborted due to Preempt and Abort',
  28: 'Sanitize Failed',
  29: 'Sanitize In Progress',
  30: 'SGL Data Block Granularity Invalid',
  31: 'Command Not Supported for Queue in CMB',
  32: 'Namespace is Write Protected',
  33: 'Command Interrupted',
  34: 'Transient Transport Error',
  128: 'LBA Out of Range',
  129: 'Capacity Exceeded',
  130: 'Namespace Not Ready',
  131: 'Reservation Conflict',
  132: 'Format In Progress',
};

const COMMAND_SPECIFIC_STATUS: Record<number, string> = {
  0: 'Completion Queue Invalid',
  1: 'Invalid Queue Identifier',
  2: 'Invalid Queue Size',
  3: 'Abort Command Limit Exceeded',
  5: 'Asynchronous Event Request Limit Exceeded',
  6: 'Invalid Firmware Slot',
  7: 'Invalid Firmware Image',
  8: 'Invalid Interrupt Vector',
  9: 'Invalid Log Page',
  10: 'Invalid Format',
  11: 'Firmware Activation Requires Conventional Reset',
  12: 'Invalid Queue Deletion',
  13: 'Feature Identifier Not Saveable',
  14: 'Feature Not Changeable',
  15: 'Feature Not Namespace Specific',
};

/** SCT 1 codes from 80h are specific to the command set: Fabrics (Connect) or NVM I/O. */
const FABRICS_STATUS: Record<number, string> = {
  128: 'Connect Incompatible Format',
  129: 'Connect Controller Busy',
  130: 'Connect Invalid Parameters',
  131: 'Connect Restart Discovery',
  132: 'Connect Invalid Host',
};

const NVM_COMMAND_STATUS: Record<number, string> = {
  128: 'Conflicting Attributes',
  129: 'Invalid Protection Information',
  130: 'Attempted Write to Read Only Range',
  131: 'Command Size Limit Exceeded',
};

const MEDIA_STATUS: Record<number, string> = {
  128: 'Write Fault',
  129: 'Unrecovered Read Error',
  130: 'End-to-end Guard Check Error',
  131: 'End-to-end Application Tag Check Error',
  132: 'End-to-end Reference Tag Check Error',
  133: 'Compare Failure',
  134: 'Access Denied',
  135: 'Deallocated or Unwritten Logical Block',
};

const PATH_STATUS: Record<number, string> = {
  0: 'Internal Path Error',
  1: 'Asymmetric Access Persistent Loss',
  2: 'Asymmetric Access Inaccessible',
  3: 'Asymmetric Access Transition',
  96: 'Controller Pathing Error',
  112: 'Host Pathing Error',
  113: 'Command Aborted By Host',
};

/** Where the failed command ran: the opcode alone is ambiguous (02h is Get Log Page and Read). */
export type CommandQueue = 'admin' | 'io';

/** Connect's data fields by byte offset, for Connect Invalid Parameters with IATTR = 1 (in the data). */
const CONNECT_DATA_FIELDS: Record<number, string> = {
  0: 'host identifier',
  16: 'controller ID',
  256: 'subsystem NQN',
  512: 'host NQN',
};
/** ...and Connect's SQE fields, for IATTR = 0. */
const CONNECT_SQE_FIELDS: Record<number, string> = { 42: 'queue ID', 44: 'queue size', 48: 'keep-alive timeout' };

/** The spec's name for a status, e.g. `LBA Out of Range`, or `SCT 1 status 0x9a` when unknown. */
export function nvmeStatusName(sct: number, sc: number, opcode: number, queue: CommandQueue): string {
  const fabrics = queue === 'admin' && opcode === AdminOpcode.Fabrics;
  // Any command of a queue that has not authenticated yet (fabrics SCT 1 / 91h, on every queue).
  if (sct === 1 && sc === 0x91) return 'Authentication Required';
  const table =
    sct === 0
      ? GENERIC_STATUS
      : sct === 1
        ? sc < 0x80
          ? COMMAND_SPECIFIC_STATUS
          : fabrics
            ? FABRICS_STATUS
            : queue === 'io'
              ? NVM_COMMAND_STATUS
              : {}
        : sct === 2
          ? MEDIA_STATUS
          : sct === 3
            ? PATH_STATUS
            : {};
  return table[sc] ?? `${SCT_NAMES[sct] ?? `SCT ${sct}`} status 0x${sc.toString(16).padStart(2, '0')}`;
}

/** `LBA Out of Range (SCT 0 SC 0x80, DNR)`, with the offending field for Connect Invalid Parameters. */
export function describeNvmeStatus(e: NvmeStatusError, queue: CommandQueue): string {
  let text = nvmeStatusName(e.sct, e.sc, e.opcode, queue);
  if (queue === 'admin' && e.opcode === AdminOpcode.Fabrics && e.sct === 1 && e.sc === 0x82) {
    // IATTR (bit 0) says where the bad field is, IPO (bits 31:16) its byte offset there.
    const offset = e.dw0 >>> 16;
    const field = (e.dw0 & 1 ? CONNECT_DATA_FIELDS : CONNECT_SQE_FIELDS)[offset];
    text += `: ${field ?? `${e.dw0 & 1 ? 'data' : 'command'} byte ${offset}`} rejected`;
  }
  return `${text} (SCT ${e.sct} SC 0x${e.sc.toString(16)}${e.dnr ? ', DNR' : ''})`;
}

/** An `NvmeStatusError` whose message names the operation and the status; same code, same fields. */
export class NvmeCommandError extends NvmeStatusError {
  constructor(
    readonly operation: string,
    status: NvmeStatusError,
    queue: CommandQueue,
  ) {
    super(status.sct, status.sc, status.dnr, status.opcode, status.dw0);
    this.message = `${operation} failed: ${describeNvmeStatus(status, queue)}`;
    this.cause = status;
  }
}

/** Run one NVMe operation; a failing status becomes an `NvmeCommandError` saying what `operation` was. */
export async function nvmeOperation<T>(operation: string, queue: CommandQueue, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof NvmeStatusError && !(e instanceof NvmeCommandError)) throw new NvmeCommandError(operation, e, queue);
    if (e instanceof TransportError) throw new TransportError(`${operation} failed: ${e.message}`, e.fes);
    throw e;
  }
}

// ---- connection ----

export interface WithHostOptions extends ConnectionOptions {
  /** I/O queues to connect: 0 for admin-only commands (identify, discovery). */
  ioQueues: number;
  /** Time a command may take (default: the host's); commands that load programs wait for verification. */
  commandTimeoutMs?: number;
}

const formatAddress = (o: { host: string; port: number }) =>
  o.host.includes(':') ? `[${o.host}]:${o.port}` : `${o.host}:${o.port}`;

/**
 * Connect, run `fn`, and always close the association (orderly shutdown, or a plain disconnect when
 * the connection is already broken). A failure of `fn` wins over a failure to close.
 */
export async function withHost<T>(options: WithHostOptions, fn: (host: NvmeTcpHost) => Promise<T>): Promise<T> {
  const address = formatAddress(options);
  const what = `connect to ${options.subsystemNqn} at ${address} as ${options.hostNqn}`;
  let host: NvmeTcpHost;
  try {
    host = await NvmeTcpHost.connect({
      host: options.host,
      port: options.port,
      subsystemNqn: options.subsystemNqn,
      hostNqn: options.hostNqn,
      hostId: options.hostId,
      dhchap: options.dhchap,
      ioQueues: options.ioQueues,
      // Only when given: an undefined field would replace the host's default.
      ...(options.commandTimeoutMs !== undefined ? { commandTimeoutMs: options.commandTimeoutMs } : {}),
    });
  } catch (e) {
    if (e instanceof NvmeStatusError) throw new NvmeCommandError(what, e, 'admin');
    if (e instanceof TransportError) {
      // The queue's message repeats the address ("connect to H:P: connect ECONNREFUSED H:P"); keep the cause.
      const reason = e.message.replace(`connect to ${options.host}:${options.port}: `, '');
      throw new TransportError(`cannot ${what}: ${reason}`, e.fes);
    }
    throw e;
  }
  let result: T;
  try {
    result = await fn(host);
  } catch (e) {
    await host.close().catch(() => {});
    throw e;
  }
  await nvmeOperation(`shutdown of the association with ${options.subsystemNqn}`, 'admin', () => host.close());
  return result;
}

// ---- namespaces and transfers ----

export interface ActiveNamespace {
  nsid: number;
  blockCount: number;
  blockSize: number;
  /** Identify Namespace as returned, for the fields `NamespaceInfo` leaves out. */
  raw: Buffer;
}

/** Identify `nsid` and insist it is active: an inactive NSID in range identifies as all zeros. */
export async function activeNamespace(host: NvmeTcpHost, nsid: number): Promise<ActiveNamespace> {
  const raw = await nvmeOperation(`identify namespace ${nsid}`, 'admin', () => host.identify(Cns.Namespace, nsid));
  // Through identifyNamespace too, so host.read/write reuse the cached block size.
  const info = await nvmeOperation(`identify namespace ${nsid}`, 'admin', () => host.identifyNamespace(nsid));
  if (info.blockCount === 0 || info.blockSize === 0) {
    throw new NvmeHostError(`namespace ${nsid} is not active on ${host.options.subsystemNqn}`);
  }
  return { nsid, blockCount: info.blockCount, blockSize: info.blockSize, raw };
}

/** Blocks per Read/Write: the controller's MDTS, the 16-bit NLB field, at least one block. */
export function blocksPerCommand(maxDataTransferBytes: number, blockSize: number): number {
  const limit = Number.isFinite(maxDataTransferBytes) ? maxDataTransferBytes : UNLIMITED_MDTS_CHUNK_BYTES;
  const blocks = Math.min(MAX_BLOCKS_PER_COMMAND, Math.floor(limit / blockSize));
  if (blocks < 1) {
    throw new NvmeHostError(`the block size (${blockSize} bytes) exceeds the controller's maximum transfer (${limit} bytes)`);
  }
  return blocks;
}

/** `read of 8 blocks at LBA 16 of namespace 1 (after 64 of 100 blocks)`. */
export function transferName(
  op: 'read' | 'write',
  nsid: number,
  lba: number,
  blocks: number,
  done: number,
  total: number,
): string {
  const progress = done > 0 ? ` (after ${done} of ${total} blocks)` : '';
  return `${op} of ${blocks} block${blocks === 1 ? '' : 's'} at LBA ${lba} of namespace ${nsid}${progress}`;
}

// ---- streams ----

/** What the data commands read when there is no input file; `CliIo` has no stdin, so tests may add one. */
export interface InputStream extends AsyncIterable<string | Uint8Array> {
  readonly isTTY?: boolean;
}

export function stdinOf(io: CliIo): InputStream {
  return (io as CliIo & { stdin?: InputStream }).stdin ?? process.stdin;
}

/** Where `read` puts the blocks. */
export interface ByteSink {
  write(data: Uint8Array): Promise<void>;
  /** Waits until the stream has taken everything; fails if it could not. */
  close(): Promise<void>;
}

type EventedStream = OutputStream & NodeJS.EventEmitter & { readonly writableLength?: number };

/**
 * A sink over a stream such as stdout that honours backpressure (waits for 'drain' when `write`
 * returns false) and turns a stream error, e.g. EPIPE when the reader of a pipe quits early, into a
 * clean failure instead of an uncaught exception. Plain `{ write }` objects (tests) just get writes.
 */
export function streamSink(stream: OutputStream, name = 'stdout'): ByteSink {
  const candidate = stream as Partial<EventedStream>;
  const evented = typeof candidate.on === 'function' && typeof candidate.removeListener === 'function';
  const emitter = stream as EventedStream;
  let failure: Error | null = null;
  const onError = (e: Error) => {
    failure ??= e;
  };
  if (evented) emitter.on('error', onError);
  const check = () => {
    if (failure) throw new NvmeHostError(`cannot write to ${name}: ${failure.message}`);
  };
  /** Until the stream drains or fails (errors are emitted asynchronously, so neither is missed). */
  const settle = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        emitter.removeListener('drain', done);
        emitter.removeListener('error', done);
        resolve();
      };
      emitter.once('drain', done);
      emitter.once('error', done);
    });
  return {
    async write(data) {
      check();
      if (stream.write(data) === false && evented) await settle();
      check();
    },
    async close() {
      try {
        if (evented && !failure && (emitter.writableLength ?? 0) > 0) await settle();
        check();
      } finally {
        if (evented) emitter.removeListener('error', onError);
      }
    },
  };
}
