/**
 * The target's logging: a tiny `Logger` interface (pino fits it), two implementations (human lines
 * and pino's JSON lines) and the catalogue of events an operator acts on. Every such event is logged
 * through `logEvent`, which names it (`event`), gives it its level and message, and makes the
 * compiler check that the fields that correlate it (host NQN, source address, cntlid, qid, program,
 * load id) are there. No field ever carries a secret, a program image or data: only NQNs, addresses,
 * ids, sizes, codes and messages (`logging.test.ts` checks it).
 */
import { pino } from 'pino';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
export type LogFormat = 'text' | 'json';
export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];

/** The tiny logging interface the target uses; inject your own (pino fits it) or use one of these. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

interface Out {
  write(chunk: string): unknown;
}

const noop = () => {};
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

const enabled = (level: LogLevel, min: LogLevel) => LOG_LEVELS.indexOf(level) >= LOG_LEVELS.indexOf(min);

/** Human-readable lines (`TIME LEVEL message {fields}`), by default on stderr. */
export function textLogger(options: { level?: LogLevel; out?: Out } = {}): Logger {
  const min = options.level ?? 'info';
  const out = options.out ?? process.stderr;
  const line = (level: LogLevel) => {
    if (!enabled(level, min)) return noop;
    return (msg: string, fields?: Record<string, unknown>) => {
      const extra = fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : '';
      out.write(`${new Date().toISOString()} ${level} ${msg}${extra}\n`);
    };
  };
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
}

/** Human-readable lines on stderr; `debug` only when `verbose`. */
export function consoleLogger(verbose = false): Logger {
  return textLogger({ level: verbose ? 'debug' : 'info' });
}

/**
 * JSON lines through pino: `{"level":"warn","time":"…","pid":…,"event":"auth.failure","host":…,"msg":…}`,
 * one object per line, level as its name and time as ISO 8601, by default on stderr.
 */
export function jsonLogger(options: { level?: LogLevel; out?: Out } = {}): Logger {
  const p = pino(
    {
      level: options.level ?? 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.out ?? process.stderr,
  );
  return {
    debug: (msg, fields) => p.debug(fields ?? {}, msg),
    info: (msg, fields) => p.info(fields ?? {}, msg),
    warn: (msg, fields) => p.warn(fields ?? {}, msg),
    error: (msg, fields) => p.error(fields ?? {}, msg),
  };
}

export function makeLogger(format: LogFormat, options: { level?: LogLevel; out?: Out } = {}): Logger {
  return format === 'json' ? jsonLogger(options) : textLogger(options);
}

/** What identifies a queue in every event about it (absent fields: not known yet, e.g. before Connect). */
interface QueueIds {
  conn: number;
  remote: string;
  host?: string;
  cntlid?: number;
  qid?: number;
}

/** What identifies an association. */
interface AssociationIds {
  host: string;
  subsystem: string;
  cntlid: number;
  remote: string;
}

/** What identifies a storage-function command: its association, queue, command id and program. */
interface ExecutionIds extends AssociationIds {
  qid: number;
  cid: number;
  nsid: number;
  program: string;
  handle: number;
  /** Lines of this kind and host left out since the last one (rate limit), if any. */
  suppressed?: number;
}

/** The fields of every event. The tenant of programs is the host NQN (`host`). */
export interface LogEventFields {
  'connection.accepted': { conn: number; remote: string; port: number };
  'connection.dropped': { conn: number; remote: string; reason: string };
  'connection.initialized': QueueIds & { headerDigest: boolean; dataDigest: boolean };
  'connection.handshake_timeout': QueueIds;
  'connection.terminated_by_host': QueueIds & { fes: number; fei: number };
  'connection.fatal': QueueIds & { field: string; reason: string; fes: number };
  'connection.socket_error': QueueIds & { error: string };
  'connection.closed': QueueIds;
  'connection.internal_error': QueueIds & { opcode?: number; error: string };
  'listener.error': { port: number; listen: string; error: string };
  'port.listening': { port: number; listen: string };
  'port.stopped': { port: number; listen: string };
  'association.created': AssociationIds & { port: number; access: string; katoMs: number; authentication: boolean };
  'association.ended': AssociationIds & { reason: string };
  'queue.connected': AssociationIds & { qid: number; sqsize: number };
  'controller.enabled': AssociationIds;
  'keepalive.expired': AssociationIds & { timeoutMs: number };
  'connect.refused': {
    host: string;
    subsystem: string;
    remote: string;
    qid: number;
    reason: string;
    cntlid?: number;
    port?: number;
  };
  'quota.hit': { host: string; subsystem: string; remote: string; qid: number; quota: string };
  'auth.success': AssociationIds & { qid: number; hash: string; dhGroup: string; bidirectional: boolean };
  'auth.failure': AssociationIds & { qid: number; reason: string };
  'auth.timeout': AssociationIds & { qid: number };
  'auth.required': AssociationIds & { qid: number; opcode: number };
  'io.error': AssociationIds & {
    qid: number;
    cid: number;
    nsid: number;
    opcode: string;
    status: string;
    error: string;
    suppressed?: number;
  };
  'program.loaded': AssociationIds & { program: string; handle: number; loadId: number; instructions: number; loadMs: number };
  'program.rejected': AssociationIds & { program: string; loadId: number; code: string; error: string; pc?: number };
  'program.load_failed': AssociationIds & { program: string; loadId: number; error: string };
  'program.load_dropped': AssociationIds & { loadId: number; receivedBytes: number; reason: string };
  'program.unloaded': AssociationIds & { program: string; handle: number };
  'program.budget_exceeded': ExecutionIds & { budget: string; limit: number };
  'program.execution_failed': ExecutionIds & { code: string; error: string; pc?: number };
  'target.stopping': Record<string, never>;
  'io_thread.failed': { thread: number; error: string };
  'io_thread.exited': { thread: number; exitCode: number };
  'program.forward_failed': { cntlid: number; error: string };
}

export type LogEvent = keyof LogEventFields;

interface EventSpec {
  level: LogLevel;
  msg: string;
  /** Fields every line of the event carries (the shape test checks them). */
  required: readonly string[];
}

const QUEUE = ['conn', 'remote'];
const ASSOCIATION = ['host', 'subsystem', 'cntlid', 'remote'];
const EXECUTION = [...ASSOCIATION, 'qid', 'cid', 'nsid', 'program', 'handle'];

/** Every event: its level, message and required fields (`docs/logging.md` lists them). */
export const LOG_EVENTS: { readonly [E in LogEvent]: EventSpec } = {
  'connection.accepted': { level: 'debug', msg: 'connection accepted', required: [...QUEUE, 'port'] },
  'connection.dropped': { level: 'warn', msg: 'dropping a pending connection', required: [...QUEUE, 'reason'] },
  'connection.initialized': { level: 'debug', msg: 'connection initialized (ICReq)', required: QUEUE },
  'connection.handshake_timeout': { level: 'warn', msg: 'handshake timeout: closing the connection', required: QUEUE },
  'connection.terminated_by_host': { level: 'warn', msg: 'host terminated the connection', required: [...QUEUE, 'fes'] },
  'connection.fatal': {
    level: 'warn',
    msg: 'fatal transport error: closing the connection',
    required: [...QUEUE, 'field', 'reason', 'fes'],
  },
  'connection.socket_error': { level: 'debug', msg: 'socket error', required: [...QUEUE, 'error'] },
  'connection.closed': { level: 'debug', msg: 'connection closed', required: QUEUE },
  'connection.internal_error': { level: 'error', msg: 'internal error: command failed', required: [...QUEUE, 'error'] },
  'listener.error': { level: 'error', msg: 'listener error', required: ['port', 'listen', 'error'] },
  'port.listening': { level: 'info', msg: 'port listening', required: ['port', 'listen'] },
  'port.stopped': { level: 'info', msg: 'port stopped', required: ['port', 'listen'] },
  'association.created': {
    level: 'info',
    msg: 'association created',
    required: [...ASSOCIATION, 'port', 'access', 'katoMs', 'authentication'],
  },
  'association.ended': { level: 'info', msg: 'association ended', required: [...ASSOCIATION, 'reason'] },
  'queue.connected': { level: 'debug', msg: 'I/O queue connected', required: [...ASSOCIATION, 'qid', 'sqsize'] },
  'controller.enabled': { level: 'info', msg: 'controller enabled', required: ASSOCIATION },
  'keepalive.expired': {
    level: 'warn',
    msg: 'keep-alive timeout: dropping the association',
    required: [...ASSOCIATION, 'timeoutMs'],
  },
  'connect.refused': {
    level: 'warn',
    msg: 'Connect refused',
    required: ['host', 'subsystem', 'remote', 'qid', 'reason'],
  },
  'quota.hit': {
    level: 'warn',
    msg: 'Connect refused: quota reached',
    required: ['host', 'subsystem', 'remote', 'qid', 'quota'],
  },
  'auth.success': { level: 'info', msg: 'authenticated', required: [...ASSOCIATION, 'qid', 'hash', 'dhGroup', 'bidirectional'] },
  'auth.failure': { level: 'warn', msg: 'authentication failed', required: [...ASSOCIATION, 'qid', 'reason'] },
  'auth.timeout': { level: 'warn', msg: 'authentication timed out: closing the queue', required: [...ASSOCIATION, 'qid'] },
  'auth.required': {
    level: 'warn',
    msg: 'command before authentication: closing the queue',
    required: [...ASSOCIATION, 'qid', 'opcode'],
  },
  'io.error': {
    level: 'error',
    msg: 'I/O error',
    required: [...ASSOCIATION, 'qid', 'cid', 'nsid', 'opcode', 'status', 'error'],
  },
  'program.loaded': {
    level: 'info',
    msg: 'program loaded',
    required: [...ASSOCIATION, 'program', 'handle', 'loadId', 'instructions', 'loadMs'],
  },
  'program.rejected': {
    level: 'info',
    msg: 'program load refused',
    required: [...ASSOCIATION, 'program', 'loadId', 'code', 'error'],
  },
  'program.load_failed': { level: 'error', msg: 'program load failed', required: [...ASSOCIATION, 'program', 'loadId', 'error'] },
  'program.load_dropped': {
    level: 'info',
    msg: 'half-sent program load dropped',
    required: [...ASSOCIATION, 'loadId', 'receivedBytes', 'reason'],
  },
  'program.unloaded': { level: 'info', msg: 'program unloaded', required: [...ASSOCIATION, 'program', 'handle'] },
  'program.budget_exceeded': {
    level: 'warn',
    msg: 'storage function exceeded a budget',
    required: [...EXECUTION, 'budget', 'limit'],
  },
  'program.execution_failed': {
    level: 'info',
    msg: 'storage function failed',
    required: [...EXECUTION, 'code', 'error'],
  },
  'target.stopping': { level: 'info', msg: 'shutting down', required: [] },
  'io_thread.failed': { level: 'error', msg: 'I/O thread failed', required: ['thread', 'error'] },
  'io_thread.exited': { level: 'error', msg: 'I/O thread exited: its ports are down', required: ['thread', 'exitCode'] },
  'program.forward_failed': {
    level: 'error',
    msg: 'program command from an I/O thread failed on the main thread',
    required: ['cntlid', 'error'],
  },
};

/** Log one catalogued event at its level, with `event` naming it. */
export function logEvent<E extends LogEvent>(log: Logger, event: E, fields: LogEventFields[E]): void {
  const spec = LOG_EVENTS[event];
  log[spec.level](spec.msg, { event, ...fields });
}

/**
 * Bounds how often a kind of event is logged per key (a host NQN): at most `burst` lines per
 * `windowMs`; the lines left out are counted and reported with the next line that goes out
 * (`suppressed`), so a host that fails thousands of executions a second cannot flood the log.
 */
export class LogRateLimit {
  private readonly windows = new Map<string, { startMs: number; lines: number; suppressed: number }>();
  constructor(
    private readonly burst = 10,
    private readonly windowMs = 10_000,
    private readonly maxKeys = 4096,
  ) {}

  /** -1: leave this line out; else log it, with this many lines left out before it. */
  take(key: string, nowMs = Date.now()): number {
    let w = this.windows.get(key);
    if (w === undefined || nowMs - w.startMs >= this.windowMs) {
      const suppressed = w?.suppressed ?? 0;
      if (w === undefined && this.windows.size >= this.maxKeys) this.windows.clear();
      w = { startMs: nowMs, lines: 0, suppressed: 0 };
      this.windows.set(key, w);
      w.lines = 1;
      return suppressed;
    }
    if (w.lines >= this.burst) {
      w.suppressed++;
      return -1;
    }
    w.lines++;
    const suppressed = w.suppressed;
    w.suppressed = 0;
    return suppressed;
  }
}
