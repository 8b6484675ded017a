/**
 * The NVMe host commands (discover, id-ctrl, id-ns, read, write, flush) driven through `main` in-process
 * against a real target on an ephemeral port with temp file-backed namespaces.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { startTestTarget, type TestTarget, waitFor } from '../target/test-helpers.js';
import type { CliIo } from './io.js';
import { main } from './main.js';
import { DEFAULT_SUBSYSTEM_NQN, type InputStream } from './nvme-options.js';

/** MDTS 1 (8 KiB): 16 blocks of 512 bytes or 2 of 4096 per command, so modest transfers are split. */
const MAX_TRANSFER_BYTES = 8192;
const NS1_BLOCKS = (1 << 20) / 512;
const PRIVATE_NQN = 'nqn.2026-11.io.nearbpf:cli-private';

let target: TestTarget;
let addr: string;
let closedAddr: string;
let dir: string;
const path = (name: string) => join(dir, name);

interface RunOptions {
  stdin?: Uint8Array | InputStream;
  stdoutIsTTY?: boolean;
}

/** `nearbpf ...argv` in-process, with captured output and an optional stdin. */
async function run(argv: string[], options: RunOptions = {}) {
  const out: Buffer[] = [];
  const err: string[] = [];
  const stdin = options.stdin instanceof Uint8Array ? Readable.from([Buffer.from(options.stdin)]) : options.stdin;
  const io: CliIo & { stdin?: InputStream } = {
    stdout: { write: (chunk) => out.push(Buffer.from(chunk)), isTTY: options.stdoutIsTTY ?? false },
    stderr: { write: (chunk) => err.push(Buffer.from(chunk).toString('utf8')) },
    ...(stdin ? { stdin } : {}),
  };
  const code = await main(argv, io);
  const stdoutBytes = Buffer.concat(out);
  return { code, stdoutBytes, stdout: stdoutBytes.toString('utf8'), stderr: err.join('') };
}

/** A command against the test target. */
const nvme = (command: string, args: string[] = [], options: RunOptions = {}) => run([command, '--addr', addr, ...args], options);

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nearbpf-cli-nvme-'));
  // The CLI's host identity comes from here, never from the machine's /etc/nvme or $HOME.
  process.env.NEARBPF_NVME_DIR = join(dir, 'etc-nvme');
  process.env.XDG_CONFIG_HOME = join(dir, 'config');
  target = await startTestTarget({
    limits: { maxDataTransferBytes: MAX_TRANSFER_BYTES },
    subsystems: [
      {
        nqn: DEFAULT_SUBSYSTEM_NQN,
        namespaces: [
          { nsid: 1, path: 'ns1.img', sizeBytes: NS1_BLOCKS * 512, blockSize: 512 },
          { nsid: 2, path: 'ns2.img', sizeBytes: 256 << 10, blockSize: 4096 },
        ],
      },
      {
        nqn: PRIVATE_NQN,
        hosts: [{ nqn: 'nqn.2014-08.org.nvmexpress:uuid:someone-else', access: 'read-write' }],
        namespaces: [{ nsid: 1, path: 'private.img', sizeBytes: 64 << 10, blockSize: 512 }],
      },
    ],
  });
  addr = `127.0.0.1:${target.address.port}`;
  // A port nothing listens on: bind an ephemeral one, then let it go.
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  closedAddr = `127.0.0.1:${port}`;
});

after(async () => {
  await target?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('nearbpf NVMe host commands', { timeout: 30_000 }, () => {
  it('lists the new commands in help', async () => {
    const { code, stdout } = await run(['help']);
    assert.equal(code, 0);
    for (const name of ['discover', 'id-ctrl', 'id-ns', 'read', 'write', 'flush'])
      assert.match(stdout, new RegExp(`^  ${name} `, 'm'));
    const one = await run(['help', 'read']);
    assert.equal(one.code, 0);
    assert.match(one.stdout, /--count BLOCKS/);
  });

  it('discover lists the subsystems this host may see', async () => {
    const { code, stdout, stderr } = await nvme('discover');
    assert.equal(code, 0, stderr);
    const lines = stdout.trimEnd().split('\n');
    assert.match(lines[0], /^trtype\s+adrfam\s+traddr\s+trsvcid\s+subnqn$/);
    assert.equal(lines.length, 2, stdout); // the private subsystem does not admit the CLI's host NQN
    assert.deepEqual(lines[1].split(/\s+/), ['tcp', 'ipv4', '127.0.0.1', String(target.address.port), DEFAULT_SUBSYSTEM_NQN]);

    const json = await nvme('discover', ['--json']);
    assert.equal(json.code, 0, json.stderr);
    const log = JSON.parse(json.stdout);
    assert.equal(log.entries.length, 1);
    assert.equal(log.entries[0].subnqn, DEFAULT_SUBSYSTEM_NQN);
    assert.equal(log.entries[0].trsvcid, String(target.address.port));
    assert.equal(log.entries[0].subtype, 'nvme');
  });

  it('id-ctrl prints the controller fields as text and JSON', async () => {
    const { code, stdout, stderr } = await nvme('id-ctrl');
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^model: \S/m);
    assert.match(stdout, /^serial: \S/m);
    assert.match(stdout, /^firmware: 0\.1\.0$/m);
    assert.match(stdout, /^cntlid: \d+$/m);
    assert.match(stdout, /^cntrltype: io$/m);
    assert.match(stdout, /^version: 1\.3\.0$/m);
    assert.match(stdout, new RegExp(`^subnqn: ${DEFAULT_SUBSYSTEM_NQN}$`, 'm'));
    assert.match(stdout, /^mdts: 1 \(8192 bytes\)$/m);
    assert.match(stdout, /^nn: 2$/m);
    assert.match(stdout, /^sgls: 0x[0-9a-f]{8}$/m);
    assert.match(stdout, /^ioccsz: \d+ bytes$/m);

    const json = await nvme('id-ctrl', ['--json']);
    assert.equal(json.code, 0, json.stderr);
    const c = JSON.parse(json.stdout);
    assert.equal(c.subnqn, DEFAULT_SUBSYSTEM_NQN);
    assert.equal(c.mdts, 1);
    assert.equal(c.maxDataTransferBytes, MAX_TRANSFER_BYTES);
    assert.equal(c.nn, 2);
    assert.equal(c.sgls & 1, 1);
    assert.ok(c.ioccszBytes >= 64);
  });

  it('id-ns prints size, capacity, utilisation, block size and identifiers as text and JSON', async () => {
    const { code, stdout, stderr } = await nvme('id-ns', ['--nsid', '1']);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^nsid: 1$/m);
    for (const field of ['nsze', 'ncap', 'nuse'])
      assert.match(stdout, new RegExp(`^${field}: 2048 blocks \\(1048576 bytes\\)$`, 'm'));
    assert.match(stdout, /^block size: 512 bytes$/m);
    assert.match(stdout, /^nguid: [0-9a-f]{32}$/m);
    assert.match(stdout, /^uuid: [0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/m);

    const json = await nvme('id-ns', ['--nsid', '0x2', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const ns = JSON.parse(json.stdout);
    assert.equal(ns.nsid, 2);
    assert.equal(ns.blockSize, 4096);
    assert.equal(ns.sizeBlocks, 64);
    assert.equal(ns.sizeBytes, 256 << 10);
    assert.equal(ns.capacityBytes, 256 << 10);
    assert.match(ns.nguid, /^[0-9a-f]{32}$/);
    assert.notEqual(ns.uuid, null);
  });

  it('id-ns of a namespace the subsystem does not have fails with Invalid Namespace', async () => {
    const { code, stderr } = await nvme('id-ns', ['--nsid', '9']);
    assert.equal(code, 1);
    assert.match(stderr, /^error\[ERR_NVME_STATUS\]: identify namespace 9 failed: Invalid Namespace or Format \(SCT 0 SC 0xb/m);
  });

  it('writes a file of 3 blocks and reads it back byte-identical, to a file and to stdout', async () => {
    const data = randomBytes(3 * 512);
    await writeFile(path('three.bin'), data);
    const w = await nvme('write', ['--nsid', '1', '--slba', '10', '--input', path('three.bin')]);
    assert.equal(w.code, 0, w.stderr);
    assert.equal(w.stdout, '');

    const r = await nvme('read', ['--nsid', '1', '--slba', '0xa', '--count', '3', '--output', path('back.bin')]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdoutBytes.length, 0);
    assert.deepEqual(await readFile(path('back.bin')), data);

    const s = await nvme('read', ['--nsid', '1', '--slba', '9', '--count', '5']);
    assert.equal(s.code, 0, s.stderr);
    assert.deepEqual(s.stdoutBytes, Buffer.concat([Buffer.alloc(512), data, Buffer.alloc(512)]));
  });

  it('splits transfers larger than MDTS, from stdin and with --fua, on both block sizes', async () => {
    const big = randomBytes(100 * 512); // 7 Writes of at most 16 blocks
    const w = await nvme('write', ['--nsid', '1', '--slba', '0x100', '--fua'], { stdin: big });
    assert.equal(w.code, 0, w.stderr);
    const r = await nvme('read', ['--nsid', '1', '--slba', '256', '--count', '100']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdoutBytes, big);

    const ns2 = randomBytes(5 * 4096); // 3 commands of at most 2 blocks
    await writeFile(path('ns2.bin'), ns2);
    assert.equal((await nvme('write', ['--nsid', '2', '--slba', '3', '-i', path('ns2.bin')])).code, 0);
    const r2 = await nvme('read', ['--nsid', '2', '--slba', '3', '--count', '5']);
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(r2.stdoutBytes, ns2);
  });

  it('refuses an input that is not whole blocks (exit 2) and writes nothing', async () => {
    const before = await nvme('read', ['--nsid', '1', '--slba', '40', '--count', '2']);
    await writeFile(path('odd.bin'), randomBytes(1000));
    const { code, stderr } = await nvme('write', ['--nsid', '1', '--slba', '40', '--input', path('odd.bin')]);
    assert.equal(code, 2);
    assert.match(
      stderr,
      /error\[ERR_USAGE\]: '.*odd\.bin' is 1000 bytes, not a whole number of the 512-byte blocks of namespace 1/,
    );
    const afterwards = await nvme('read', ['--nsid', '1', '--slba', '40', '--count', '2']);
    assert.deepEqual(afterwards.stdoutBytes, before.stdoutBytes);

    const stdin = await nvme('write', ['--nsid', '2', '--slba', '0'], { stdin: randomBytes(512) });
    assert.equal(stdin.code, 2);
    assert.match(stdin.stderr, /stdin is 512 bytes, not a whole number of the 4096-byte blocks of namespace 2/);

    const empty = await nvme('write', ['--nsid', '1', '--slba', '0'], { stdin: new Uint8Array(0) });
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /nothing to write: stdin is empty/);
  });

  it('reports LBA Out of Range (exit 1) for reads and writes beyond the namespace', async () => {
    const { code, stderr, stdoutBytes } = await nvme('read', ['--nsid', '1', '--slba', String(NS1_BLOCKS - 2), '--count', '4']);
    assert.equal(code, 1);
    assert.equal(stdoutBytes.length, 0);
    assert.match(
      stderr,
      /^error\[ERR_NVME_STATUS\]: read of 4 blocks at LBA 2046 of namespace 1 failed: LBA Out of Range \(SCT 0 SC 0x80/m,
    );

    // Split: the first 16 blocks are read and written out, the next Read fails.
    const split = await nvme('read', ['--nsid', '1', '--slba', String(NS1_BLOCKS - 18), '--count', '20']);
    assert.equal(split.code, 1);
    assert.equal(split.stdoutBytes.length, 16 * 512);
    assert.match(split.stderr, /read of 4 blocks at LBA 2046 of namespace 1 \(after 16 of 20 blocks\) failed: LBA Out of Range/);

    const w = await nvme('write', ['--nsid', '1', '--slba', String(NS1_BLOCKS)], { stdin: Buffer.alloc(512) });
    assert.equal(w.code, 1);
    assert.match(w.stderr, /write of 1 block at LBA 2048 of namespace 1 failed: LBA Out of Range \(SCT 0 SC 0x80/);
  });

  it('stops cleanly when stdout fails part-way (a closed pipe), honouring backpressure until then', async () => {
    let writes = 0;
    const stdout = new Writable({
      highWaterMark: 1024, // below one 8 KiB chunk: every write waits for 'drain'
      write(_chunk, _encoding, callback) {
        writes++;
        setImmediate(() => callback(writes >= 3 ? Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }) : null));
      },
    });
    const err: string[] = [];
    const code = await main(['read', '--addr', addr, '--nsid', '1', '--slba', '0', '--count', '100'], {
      stdout,
      stderr: { write: (chunk) => err.push(String(chunk)) },
    });
    assert.equal(code, 1);
    assert.equal(writes, 3); // no Read was issued after the failure
    assert.match(err.join(''), /^error\[ERR_NVME_HOST\]: cannot write to stdout: write EPIPE$/m);
  });

  it('flushes a namespace', async () => {
    const { code, stdout, stderr } = await nvme('flush', ['--nsid', '1']);
    assert.equal(code, 0, stderr);
    assert.equal(stdout, '');
    assert.equal(stderr, '');
  });

  it('closes every association it opens', async () => {
    await waitFor(() => target.target.associationCount === 0, 'all CLI associations closed');
  });

  it('fails with a clear message when nothing listens on the address (exit 1)', async () => {
    const { code, stderr } = await run(['id-ctrl', '--addr', closedAddr]);
    assert.equal(code, 1);
    assert.match(
      stderr,
      new RegExp(
        `^error\\[ERR_NVME_TCP_TRANSPORT\\]: cannot connect to ${DEFAULT_SUBSYSTEM_NQN} at ${closedAddr} .*ECONNREFUSED`,
        'm',
      ),
    );
  });

  it('reports the Connect status for an unknown subsystem or a host that is not allowed (exit 1)', async () => {
    const unknown = await nvme('id-ctrl', ['--nqn', 'nqn.2026-11.io.nearbpf:nope']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /Connect Invalid Parameters: subsystem NQN rejected \(SCT 1 SC 0x82/);
    const denied = await nvme('id-ctrl', ['--nqn', PRIVATE_NQN]);
    assert.equal(denied.code, 1);
    assert.match(
      denied.stderr,
      /connect to .* as nqn\.2014-08\.org\.nvmexpress:uuid:[0-9a-f-]{36} failed: Connect Invalid Host \(SCT 1 SC 0x84/,
    );
  });

  it('rejects a bad --addr with exit 2', async () => {
    for (const bad of ['127.0.0.1:0', '127.0.0.1:65536', 'localhost:http', ':4420', '', '1.2.3.4:5:6', '[::1']) {
      const { code, stderr } = await run(['id-ctrl', '--addr', bad]);
      assert.equal(code, 2, `--addr '${bad}'`);
      assert.match(stderr, /--addr must be HOST:PORT/);
    }
  });

  it('validates numbers and flags before connecting (exit 2)', async () => {
    const cases: [string[], RegExp][] = [
      [['id-ns'], /missing --nsid/],
      [['id-ns', '--nsid', '0'], /--nsid must be in 1\.\.4294967294, got 0/],
      [['id-ns', '--nsid', '0xffffffff'], /--nsid must be in 1\.\.4294967294/],
      [['read', '--nsid', '1', '--slba', '1.5', '--count', '1'], /--slba must be a decimal or 0x hex integer, got '1\.5'/],
      [['read', '--nsid', '1', '--slba', '0x', '--count', '1'], /--slba must be a decimal or 0x hex integer/],
      [['read', '--nsid', '1', '--slba', '0'], /missing --count/],
      [['read', '--nsid', '1', '--slba', '0', '--count', '0'], /--count must be in 1\.\./],
      [['read', '--nsid', '1', '--slba', String(2 ** 53), '--count', '1'], /--slba must be in 0\.\.9007199254740991/],
      [['read', '--nsid', '1', '--slba', String(2 ** 53 - 1), '--count', '2'], /must stay below 2\^53/],
      [['write', '--nsid', '1'], /missing --slba/],
      [['flush', '--nsid', '1', 'extra'], /unexpected argument 'extra'/],
      [['flush', '--nsid', '1', '--bogus'], /Unknown option '--bogus'/],
      [['id-ctrl', '--hostnqn', ''], /--hostnqn must not be empty/],
      [['id-ctrl', '--nqn', `nqn.${'x'.repeat(230)}`], /--nqn must be at most 223 bytes/],
    ];
    for (const [argv, message] of cases) {
      // Aimed at the closed port: a usage error must win before any connection attempt.
      const { code, stderr } = await run([...argv, '--addr', closedAddr]);
      assert.equal(code, 2, `${argv.join(' ')}: ${stderr}`);
      assert.match(stderr, message);
    }
  });

  it('refuses to write binary to a terminal or read data from one (exit 2)', async () => {
    const r = await run(['read', '--addr', closedAddr, '--nsid', '1', '--slba', '0', '--count', '1'], { stdoutIsTTY: true });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /refusing to write binary data to a terminal/);
    assert.equal(r.stdoutBytes.length, 0);

    const tty: InputStream = Object.assign(Readable.from([]), { isTTY: true });
    const w = await run(['write', '--addr', closedAddr, '--nsid', '1', '--slba', '0'], { stdin: tty });
    assert.equal(w.code, 2);
    assert.match(w.stderr, /refusing to read data from a terminal/);

    // With --output the terminal does not matter.
    const ok = await nvme('read', ['--nsid', '1', '--slba', '0', '--count', '1', '-o', path('one.bin')], { stdoutIsTTY: true });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((await readFile(path('one.bin'))).length, 512);
  });

  it('reports an unreadable input or unwritable output as usage errors (exit 2)', async () => {
    const missing = await nvme('write', ['--nsid', '1', '--slba', '0', '--input', path('missing.bin')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read '.*missing\.bin': no such file/);
    const out = await nvme('read', ['--nsid', '1', '--slba', '0', '--count', '1', '--output', path('no/such/dir/x.bin')]);
    assert.equal(out.code, 2);
    assert.match(out.stderr, /cannot write '.*x\.bin': no such file/);
  });
});
