/**
 * The log: every catalogued event provoked against real targets and checked for its JSON shape
 * (table-driven over `LOG_EVENTS`), and a session with host keys, program loads, map updates,
 * inputs and data whose captured log (JSON and text) must contain none of their bytes.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NvmeTcpHost } from '../client/host.js';
import { ProgramClient } from '../client/programs.js';
import { UsageError } from '../errors.js';
import { assemble, encodeProgram } from '../isa/index.js';
import { PduType } from '../protocol/constants.js';
import { formatDhchapKey, generateDhchapKey, parseDhchapKey } from '../protocol/dhchap.js';
import { ConfigError } from '../protocol/errors.js';
import { encodeLoadImage, ProgramOpcode } from '../protocol/programs.js';
import { makeSqe } from '../protocol/sqe.js';
import { EMIT_PAGE_ASM, LIST_WALK_ASM } from '../testing/storage-programs.js';
import { validateConfig } from './config.js';
import { jsonLogger, LOG_EVENTS, type LogEvent, type Logger, LogRateLimit, textLogger } from './logger.js';
import type { Namespace } from './namespace.js';
import { runServe } from './serve.js';
import { startTarget } from './target.js';
import { RawHost, startTestTarget, type TestTarget, waitFor } from './test-helpers.js';

const REPO_ROOT = join(import.meta.dirname, '..', '..');
const SUB = 'nqn.2026-11.io.nearbpf:logs';
const SECURE = 'nqn.2026-11.io.nearbpf:logs-secure';
const ALICE = 'nqn.2014-08.org.nvmexpress:uuid:log-alice';
const BOB = 'nqn.2014-08.org.nvmexpress:uuid:log-bob';
const EVE = 'nqn.2014-08.org.nvmexpress:uuid:log-eve';
const aliceKey = formatDhchapKey(generateDhchapKey({ transform: 1, nqn: ALICE }));
const aliceCtrlKey = formatDhchapKey(generateDhchapKey({ transform: 0, lengthBytes: 48 }));
const bobKey = formatDhchapKey(generateDhchapKey({ transform: 0 }));
const wrongKey = formatDhchapKey(generateDhchapKey({ transform: 0 }));

const bytecode = (source: string) => encodeProgram(assemble(source));

/** A log sink: the lines written, split. */
class Capture {
  text = '';
  write(s: string): boolean {
    this.text += s;
    return true;
  }
  lines(): Record<string, unknown>[] {
    return this.text
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

/** The type of every field an event may carry; a field not listed here fails the shape test. */
const FIELD_TYPES: Record<string, 'string' | 'number' | 'boolean'> = {
  conn: 'number',
  remote: 'string',
  host: 'string',
  subsystem: 'string',
  cntlid: 'number',
  qid: 'number',
  cid: 'number',
  nsid: 'number',
  reason: 'string',
  headerDigest: 'boolean',
  dataDigest: 'boolean',
  fes: 'number',
  fei: 'number',
  field: 'string',
  error: 'string',
  opcode: 'number|string' as 'number',
  listen: 'string',
  access: 'string',
  katoMs: 'number',
  authentication: 'boolean',
  sqsize: 'number',
  timeoutMs: 'number',
  quota: 'string',
  hash: 'string',
  dhGroup: 'string',
  bidirectional: 'boolean',
  status: 'string',
  suppressed: 'number',
  program: 'string',
  handle: 'number',
  loadId: 'number',
  instructions: 'number',
  loadMs: 'number',
  code: 'string',
  pc: 'number',
  receivedBytes: 'number',
  budget: 'string',
  limit: 'number',
  port: 'number',
};
/** What pino adds to every line. */
const ENVELOPE = ['level', 'time', 'pid', 'msg', 'event'];
/** Events no test can provoke without a bug in the target. */
const NOT_PROVOKED = new Set<LogEvent>([
  'connection.internal_error',
  'program.load_failed',
  // I/O threads dying or the main thread failing a forwarded command: no way to cause them from outside.
  'io_thread.failed',
  'io_thread.exited',
  'program.forward_failed',
]);

function checkShape(line: Record<string, unknown>): void {
  const event = line.event as LogEvent;
  const spec = LOG_EVENTS[event];
  assert.ok(spec, `unknown event ${String(line.event)}`);
  assert.equal(line.level, spec.level, `${event}: level`);
  assert.equal(line.msg, spec.msg, `${event}: msg`);
  assert.equal(typeof line.pid, 'number');
  assert.ok(!Number.isNaN(Date.parse(String(line.time))) && /^\d{4}-\d\d-\d\dT/.test(String(line.time)), `${event}: time`);
  for (const f of spec.required) assert.ok(f in line, `${event}: missing ${f} in ${JSON.stringify(line)}`);
  for (const [k, v] of Object.entries(line)) {
    if (ENVELOPE.includes(k)) continue;
    const type = FIELD_TYPES[k];
    assert.ok(type, `${event}: unexpected field ${k}`);
    if (k === 'opcode') assert.ok(typeof v === 'number' || typeof v === 'string', `${event}: opcode`);
    else assert.equal(typeof v, type, `${event}: ${k} is ${typeof v}`);
  }
  // Correlation: an event about a queue or association names its peer, and once known its association.
  if (spec.required.includes('cntlid')) assert.ok((line.cntlid as number) >= 1, `${event}: cntlid`);
  if ('remote' in line) assert.match(String(line.remote), /^(::ffff:)?127\.0\.0\.1:\d+$/, `${event}: remote`);
}

describe('structured logs', () => {
  const out = new Capture();
  const logger = jsonLogger({ level: 'debug', out });
  let t: TestTarget;

  before(async () => {
    t = await startTestTarget(
      {
        limits: { handshakeTimeoutMs: 400, pendingLoadTimeoutMs: 100, maxAssociationsPerHost: 2 },
        auth: { hosts: { [ALICE]: { key: aliceKey, controllerKey: aliceCtrlKey }, [BOB]: { key: bobKey } } },
        programs: { defaults: { maxSteps: 4 } },
        subsystems: [
          {
            nqn: SUB,
            hosts: [
              { nqn: '*', access: 'read-write' },
              { nqn: EVE, access: 'read-only' },
            ],
            namespaces: [
              { nsid: 1, path: 'logs1.img', sizeBytes: 1 << 20, blockSize: 512 },
              { nsid: 2, path: 'logs2.img', sizeBytes: 1 << 20, blockSize: 512 },
            ],
          },
          {
            nqn: SECURE,
            requireAuthentication: true,
            hosts: [
              { nqn: ALICE, access: 'read-write' },
              { nqn: EVE, access: 'read-write' },
            ],
            namespaces: [{ nsid: 1, path: 'secure.img', sizeBytes: 1 << 20, blockSize: 512 }],
          },
        ],
      },
      { logger },
    );
  });
  after(() => t?.cleanup());

  const connect = (hostNqn: string, subsystemNqn = SUB, extra: Partial<Parameters<typeof NvmeTcpHost.connect>[0]> = {}) =>
    NvmeTcpHost.connect({ host: '127.0.0.1', port: t.address.port, subsystemNqn, hostNqn, ioQueues: 1, ...extra });
  const seen = (event: LogEvent) => out.lines().some((l) => l.event === event);
  const until = (event: LogEvent) => waitFor(() => seen(event), `log event ${event}`, 300);

  it('provokes every event, each line shaped as LOG_EVENTS says (table-driven)', async () => {
    // Connect, authenticate (bidirectional), I/O, programs, disconnect.
    const alice = await connect(ALICE, SECURE, { dhchap: { secret: aliceKey, controllerSecret: aliceCtrlKey } });
    const programs = new ProgramClient(alice);
    const walk = await programs.load(bytecode(LIST_WALK_ASM), { name: 'walk' });
    // A list whose last node points at itself: more steps than the budget of 4.
    const ring = Buffer.alloc(512);
    ring.writeBigUInt64LE(1n, 0);
    ring.writeBigUInt64LE(512n, 8);
    await alice.write(1, 1, ring);
    await assert.rejects(programs.execute(walk, { nsid: 1, params: [512n, 0n] }));
    const emit = await programs.load(bytecode(EMIT_PAGE_ASM), { name: 'emit' });
    await assert.rejects(programs.execute(emit, { nsid: 1, params: [BigInt(1 << 30), 0n] })); // outside the namespace
    await assert.rejects(programs.load(bytecode('ldxdw %r0, [%r1+200]\nexit'), { name: 'bad' }));
    await programs.unload(emit);
    // A half-sent load, dropped when no chunk follows.
    const image = encodeLoadImage({ format: 'bytecode', name: 'half', objectProgram: '' }, bytecode('mov %r0, 1\nexit'));
    await alice.adminCommand(makeSqe({ opcode: ProgramOpcode.Load, cdw10: 0, cdw11: image.length + 64, cdw12: 77 }), {
      dataOut: image,
    });
    await until('program.load_dropped');

    // I/O errors: namespace 2's file descriptor is swapped for a directory's (pread gives EISDIR,
    // pwrite EBADF): a real failing backing store.
    const ns2 = (t.target as unknown as { subsystems: Map<string, { namespaces: Map<number, Namespace> }> }).subsystems
      .get(SUB)
      ?.namespaces.get(2) as unknown as { fh: { fd: number } };
    const plain = await connect(BOB, SUB, { dhchap: { secret: bobKey } });
    const fd = ns2.fh.fd;
    closeSync(fd);
    const dirFd = openSync(t.dir, 'r');
    assert.equal(dirFd, fd, 'the directory took the namespace file descriptor');
    await assert.rejects(plain.write(2, 8, Buffer.alloc(512, 1)));
    await assert.rejects(plain.read(2, 100, 1));
    await until('io.error');
    await plain.close();
    await alice.close();
    await until('association.ended');

    // Authentication failure, and a command before authentication.
    await assert.rejects(connect(BOB, SUB, { dhchap: { secret: wrongKey } }));
    await until('auth.failure');
    const raw = await RawHost.open(t.address.port);
    await raw.icReq();
    raw.command(raw.connectSqe(1, 0, 31), raw.connectData(SUB, BOB));
    await raw.response(1);
    raw.command(makeSqe({ opcode: 0x06, cid: 2, nsid: 0, cdw10: 1 })); // Identify
    await raw.waitClosed();
    // Authentication never finished.
    const silent = await RawHost.open(t.address.port);
    await silent.icReq();
    silent.command(silent.connectSqe(1, 0, 31), silent.connectData(SUB, BOB));
    await silent.response(1);
    await silent.waitClosed();
    assert.ok(seen('auth.timeout'));

    // Refusals: a host without a key on a subsystem that requires one, and a per-host quota.
    await assert.rejects(connect(EVE, SECURE));
    await assert.rejects(connect(BOB, SECURE, { dhchap: { secret: bobKey } }));
    const eves = [await connect(EVE), await connect(EVE)];
    await assert.rejects(connect(EVE));
    for (const e of eves) await e.close();
    assert.ok(seen('connect.refused') && seen('quota.hit'));

    // Keep-alive expiry (KATO 150 ms, nothing sent after Connect).
    const idle = await RawHost.open(t.address.port);
    await idle.icReq();
    idle.command(idle.connectSqe(1, 0, 31, 150), idle.connectData(SUB, EVE));
    await idle.response(1);
    await idle.waitClosed();
    await until('keepalive.expired');

    // Transport: a handshake that never starts, a malformed PDU, a host TermReq, a reset.
    const mute = await RawHost.open(t.address.port);
    await mute.waitClosed();
    const bad = await RawHost.open(t.address.port);
    bad.send(Buffer.from([0x7f, 0, 8, 0, 8, 0, 0, 0]));
    await bad.waitClosed();
    const quitter = await RawHost.open(t.address.port);
    await quitter.icReq();
    quitter.send({ type: PduType.H2CTermReq, fes: 1, fei: 0, errorHeader: Buffer.alloc(8) });
    await quitter.waitClosed();
    const resetter = await RawHost.open(t.address.port);
    await resetter.icReq();
    // A partial PDU, received, then a reset (RST, not FIN): the target's read fails with ECONNRESET.
    resetter.socket.write(Buffer.alloc(4));
    await waitFor(() => resetter.socket.bytesWritten >= 4 && resetter.socket.writableLength === 0, 'partial PDU sent');
    await new Promise((r) => setTimeout(r, 50));
    resetter.socket.resetAndDestroy();
    await until('connection.socket_error');

    // The pending-connection pool: a second handshaking socket from one address displaces the first.
    const small = await startTestTarget({ limits: { maxPendingConnectionsPerAddress: 1 } }, { logger });
    try {
      const first = await RawHost.open(small.address.port);
      const second = await RawHost.open(small.address.port);
      await first.waitClosed();
      second.close();
      await until('connection.dropped');
      // The listener: a second target on the same port.
      await assert.rejects(
        startTarget({
          logger,
          config: {
            listen: { host: '127.0.0.1', port: small.address.port },
            dataDir: join(small.dir, 'second'),
            subsystems: [{ nqn: SUB, namespaces: [{ nsid: 1, path: 'x.img', sizeBytes: 1 << 20, blockSize: 512 }] }],
          },
        }).then((x) => x.close()),
        /EADDRINUSE/,
      );
    } finally {
      await small.cleanup();
    }
    await until('association.ended');

    // A port stopped and started again: its associations end.
    const onPort = await connect(BOB, SUB, { dhchap: { secret: bobKey } });
    await t.target.stopPort(1);
    await until('port.stopped');
    await t.target.startPort(1);
    await onPort.close().catch(() => {});
    await waitFor(
      () => out.lines().some((l) => l.event === 'association.ended' && l.reason === 'port_stopped'),
      'association ended by stopPort',
    );

    // runServe: stopping.
    const serveOut = new Capture();
    const stop = new AbortController();
    const sink = { write: () => true };
    const running = runServe(
      ['--listen', '127.0.0.1:0', '--data-dir', join(t.dir, 'serve'), '--log-format', 'json'],
      { stdout: sink, stderr: sink },
      { signal: stop.signal, logOut: serveOut },
    );
    await waitFor(() => serveOut.text.includes('port.listening'), 'serve listening');
    stop.abort();
    assert.equal(await running, 0);
    for (const l of serveOut.lines()) out.write(`${JSON.stringify(l)}\n`);

    const lines = out.lines();
    for (const line of lines) checkShape(line);
    const events = new Set(lines.map((l) => l.event as LogEvent));
    const missing = (Object.keys(LOG_EVENTS) as LogEvent[]).filter((e) => !events.has(e) && !NOT_PROVOKED.has(e));
    assert.deepEqual(missing, [], `events never logged: ${missing.join(', ')}`);

    // A few events in detail: the ids that correlate them are the right ones.
    const loaded = lines.find((l) => l.event === 'program.loaded' && l.program === 'walk');
    assert.equal(loaded?.host, ALICE);
    assert.equal(loaded?.subsystem, SECURE);
    const budget = lines.find((l) => l.event === 'program.budget_exceeded');
    assert.equal(budget?.budget, 'steps');
    assert.equal(budget?.limit, 4);
    assert.equal(budget?.handle, walk);
    assert.equal(budget?.cntlid, loaded?.cntlid);
    const rejected = lines.find((l) => l.event === 'program.rejected');
    assert.equal(rejected?.code, 'ERR_VERIFIER_REJECTED');
    assert.match(String(rejected?.error), /^pc 0: /, 'the verifier’s first line');
    assert.equal(rejected?.pc, 0);
    const ioErrors = lines.filter((l) => l.event === 'io.error');
    assert.deepEqual(ioErrors.map((l) => l.opcode).sort(), ['read', 'write']);
    assert.ok(ioErrors.every((l) => l.host === BOB && l.nsid === 2 && /EBADF|EISDIR/.test(String(l.error))));
    const failures = lines.filter((l) => l.event === 'auth.failure');
    assert.ok(failures.some((l) => l.host === BOB && l.qid === 0));
    const authOk = lines.filter((l) => l.event === 'auth.success' && l.host === ALICE);
    assert.deepEqual(authOk.map((l) => l.qid).sort(), [0, 1]);
    assert.ok(authOk.every((l) => l.bidirectional === true));
    const refused = lines.filter((l) => l.event === 'connect.refused');
    assert.deepEqual(
      refused.map((l) => [l.host, l.reason]),
      [
        [EVE, 'authentication_required_no_key'],
        [BOB, 'host_not_allowed'],
      ],
    );
    assert.equal(lines.find((l) => l.event === 'quota.hit')?.quota, 'maxAssociationsPerHost (2)');
    const ended = lines.filter((l) => l.event === 'association.ended').map((l) => l.reason);
    assert.ok(ended.includes('admin_queue_closed') && ended.includes('keep_alive_expired'));
    const listener = lines.find((l) => l.event === 'listener.error');
    assert.match(String(listener?.error), /EADDRINUSE/);
  });

  it('docs/logging.md lists every event with its level', () => {
    const doc = readFileSync(join(REPO_ROOT, 'docs', 'logging.md'), 'utf8');
    for (const [event, spec] of Object.entries(LOG_EVENTS)) {
      assert.ok(doc.includes(`| \`${event}\` | ${spec.level} |`), `docs/logging.md: ${event} (${spec.level})`);
      for (const f of spec.required) {
        const row = doc.split('\n').find((l) => l.startsWith(`| \`${event}\``)) ?? '';
        assert.ok(row.includes(`\`${f}\``), `docs/logging.md: ${event} lacks ${f}`);
      }
    }
  });

  it('the text format: one human line per event, fields as JSON', () => {
    const text = new Capture();
    const log: Logger = textLogger({ level: 'info', out: text });
    log.debug('hidden', { event: 'connection.accepted' });
    log.warn('authentication failed', { event: 'auth.failure', host: ALICE, qid: 0 });
    const lines = text.text.split('\n').filter(Boolean);
    assert.equal(lines.length, 1);
    const m = /^(\S+) warn authentication failed (\{.*\})$/.exec(lines[0]);
    assert.ok(m, lines[0]);
    assert.ok(!Number.isNaN(Date.parse(m[1])));
    assert.deepEqual(JSON.parse(m[2]), { event: 'auth.failure', host: ALICE, qid: 0 });
  });

  it('log.format and log.level come from the schema; --log-format/--log-level override them', async () => {
    assert.deepEqual(validateConfig({}).log, { format: 'text', level: 'info' });
    assert.deepEqual(validateConfig({ log: { format: 'json', level: 'warn' } }).log, { format: 'json', level: 'warn' });
    for (const bad of [{ format: 'xml' }, { level: 'trace' }, { format: 1 }, { colour: true }]) {
      assert.throws(() => validateConfig({ log: bad }), ConfigError);
    }
    const sink = { write: () => true };
    await assert.rejects(runServe(['--log-format', 'xml'], { stdout: sink, stderr: sink }), UsageError);
    await assert.rejects(runServe(['--log-level', 'loud'], { stdout: sink, stderr: sink }), UsageError);
    let printed = '';
    await runServe(['--log-format', 'json', '--verbose', '--print-config'], {
      stdout: { write: (s: string | Uint8Array) => (printed += String(s)) },
      stderr: sink,
    });
    assert.deepEqual(JSON.parse(printed).log, { format: 'json', level: 'debug' });
  });
});

describe('LogRateLimit', () => {
  it('lets a burst per key through per window and reports what it left out', () => {
    const cases: { burst: number; windowMs: number; times: number[]; want: number[] }[] = [
      { burst: 2, windowMs: 100, times: [0, 1, 2, 3, 150], want: [0, 0, -1, -1, 2] },
      { burst: 1, windowMs: 10, times: [0, 5, 10, 11, 20], want: [0, -1, 1, -1, 1] },
      { burst: 3, windowMs: 1000, times: [0, 1, 2], want: [0, 0, 0] },
    ];
    for (const c of cases) {
      const limit = new LogRateLimit(c.burst, c.windowMs);
      assert.deepEqual(
        c.times.map((ms) => limit.take('host', ms)),
        c.want,
        JSON.stringify(c),
      );
    }
    const limit = new LogRateLimit(1, 1000);
    assert.equal(limit.take('a', 0), 0);
    assert.equal(limit.take('b', 0), 0, 'keys are independent');
  });
});

describe('no secret, program image or data in the log', () => {
  it('a session with keys, loads, map updates, inputs and data leaves none of their bytes in the JSON or text log', async () => {
    const json = new Capture();
    const text = new Capture();
    const jsonLog = jsonLogger({ level: 'debug', out: json });
    const textLog = textLogger({ level: 'debug', out: text });
    const both: Logger = {
      debug: (m, f) => {
        jsonLog.debug(m, f);
        textLog.debug(m, f);
      },
      info: (m, f) => {
        jsonLog.info(m, f);
        textLog.info(m, f);
      },
      warn: (m, f) => {
        jsonLog.warn(m, f);
        textLog.warn(m, f);
      },
      error: (m, f) => {
        jsonLog.error(m, f);
        textLog.error(m, f);
      },
    };
    const t = await startTestTarget(
      {
        auth: { hosts: { [ALICE]: { key: aliceKey, controllerKey: aliceCtrlKey }, [BOB]: { key: bobKey } } },
        programs: { defaults: { maxSteps: 4 } },
      },
      { logger: both },
    );
    const data = Buffer.from('DATA-MARKER-0123456789abcdef-'.repeat(40).slice(0, 1024));
    const input = Buffer.from('INPUT-MARKER-fedcba9876543210');
    const mapValue = Buffer.from('MAPVAL01');
    const counter = readFileSync(join(REPO_ROOT, 'examples', 'build', 'counter.o'));
    const walkCode = Buffer.from(bytecode(LIST_WALK_ASM));
    try {
      const host = await NvmeTcpHost.connect({
        host: '127.0.0.1',
        port: t.address.port,
        subsystemNqn: 'nqn.2026-11.io.nearbpf:test',
        hostNqn: ALICE,
        ioQueues: 2,
        dhchap: { secret: aliceKey, controllerSecret: aliceCtrlKey },
      });
      await assert.rejects(
        NvmeTcpHost.connect({
          host: '127.0.0.1',
          port: t.address.port,
          subsystemNqn: 'nqn.2026-11.io.nearbpf:test',
          hostNqn: BOB,
          dhchap: { secret: wrongKey },
        }),
      );
      const programs = new ProgramClient(host);
      await host.write(1, 16, data);
      assert.deepEqual(await host.read(1, 16, 2), data);
      const emit = await programs.load(bytecode(EMIT_PAGE_ASM), { name: 'emit' });
      const r = await programs.execute(emit, { nsid: 1, params: [8192n, 0n], input });
      assert.ok(r.output.includes(data.subarray(0, 64)), 'the data went through the program');
      await assert.rejects(programs.execute(emit, { nsid: 1, params: [BigInt(1 << 30), 0n], input }));
      const walk = await programs.load(walkCode, { name: 'walk' });
      const ring = Buffer.alloc(512);
      ring.writeBigUInt64LE(512n, 8);
      await host.write(1, 1, ring);
      await assert.rejects(programs.execute(walk, { nsid: 1, params: [512n, 0n], input }));
      const c = await programs.load(counter, { name: 'counter' });
      await programs.mapUpdate(c, 0, Buffer.from('MAPKEY01'), mapValue);
      await assert.rejects(programs.load(Buffer.concat([counter.subarray(0, 200), Buffer.alloc(64, 0xee)]), { name: 'broken' }));
      await assert.rejects(programs.load(bytecode('ldxdw %r0, [%r1+200]\nexit'), { name: 'bad' }));
      await host.close();
    } finally {
      await t.cleanup();
    }
    for (const log of [json.text, text.text]) {
      assert.ok(log.includes('program.loaded') && log.includes('auth.failure') && log.includes('program.budget_exceeded'));
      const forbidden: [string, Buffer | string][] = [
        ['host key', aliceKey],
        ['controller key', aliceCtrlKey],
        ['wrong key', wrongKey],
        ['other host key', bobKey],
        ['host secret', parseDhchapKey(aliceKey).secret],
        ['controller secret', parseDhchapKey(aliceCtrlKey).secret],
        ['wrong secret', parseDhchapKey(wrongKey).secret],
        ['data', data.subarray(0, 16)],
        ['input', input.subarray(0, 16)],
        ['map key', Buffer.from('MAPKEY01')],
        ['map value', mapValue],
        ['ELF image', counter.subarray(64, 96)],
        ['bytecode image', walkCode.subarray(8, 40)],
      ];
      for (const [what, secret] of forbidden) {
        for (const form of encodings(secret)) assert.ok(!log.includes(form), `${what} in the log as ${JSON.stringify(form)}`);
      }
    }
  });
});

/** The ways bytes could reach a log line: as text, hex, base64 and a JSON-serialised Buffer. */
function encodings(v: Buffer | string): string[] {
  if (typeof v === 'string') return [v, v.split(':')[2] ?? v].filter((s) => s.length >= 8);
  const forms = [v.toString('hex'), v.toString('hex').toUpperCase(), v.toString('base64'), v.toString('base64url')];
  forms.push(v.toJSON().data.join(','));
  if (/^[\x20-\x7e]+$/.test(v.toString('latin1'))) forms.push(v.toString('latin1'));
  // base64 of the bytes at any alignment: the middle of the encoding of a longer buffer.
  forms.push(v.subarray(1).toString('base64').slice(0, -4), v.subarray(2).toString('base64').slice(0, -4));
  return forms.filter((s) => s.length >= 8);
}
