/**
 * Linux native multipath under QEMU: one target listening on two ports, each served by its own I/O
 * thread; the guest connects to both
 * (`nvme connect` twice, reconnect-delay 1 s) and must see ONE namespace device with two paths. With the
 * round-robin I/O policy both ports must serve I/O (the target's per-port counters say so); then the
 * host takes port 2 down (listener closed, its associations ended) while the guest writes, and no
 * error may reach `dd`, the data must verify, and once port 2 listens again Linux must reconnect to it
 * and send I/O there. The guest asks for each host action with a `NEARBPF-REQ` console line.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type PortStats, startTarget } from '../target.js';
import { checker, freePort, type InteropOptions, regionChecks, startGuest, type TargetEvent } from './qemu.js';

const MIB = 1 << 20;
const GUEST_STEPS = [
  'mp-discover-2-ports',
  'mp-connect-port1',
  'mp-connect-port2',
  'mp-one-namespace-two-paths',
  'mp-iopolicy-round-robin',
  'mp-round-robin-io',
  'mp-path-lost',
  'mp-other-path-live',
  'mp-writes-during-failover-no-error',
  'mp-failover-verify',
  'mp-path-reconnected',
  'mp-io-after-reconnect',
  'mp-disconnect',
  'mp-controllers-removed',
];
/** The guest's round-robin phase moves 4 MiB each way in 64 KiB commands: 64 writes and 64 reads. */
const MIN_COMMANDS_PER_PORT = 16;

export interface MultipathInteropResult {
  scenario: string;
  steps: Record<string, 'ok' | 'fail' | 'missing'>;
  /** Seconds each guest step took. */
  stepSeconds: Record<string, number>;
  checks: Record<string, 'ok' | string>;
  passed: boolean;
  seconds: number;
  console: string;
}

const commands = (s: PortStats) => s.readCommands + s.writeCommands;

export async function runMultipathInterop(
  kernel: { vmlinuz: string },
  initrd: string,
  options: InteropOptions = {},
): Promise<MultipathInteropResult> {
  const log = options.log ?? (() => {});
  const nqn = 'nqn.2026-11.io.nearbpf:interop-multipath';
  const dir = await mkdtemp(join(tmpdir(), 'nearbpf-interop-mp-'));
  const events: TargetEvent[] = [];
  const record = (level: TargetEvent['level']) => (msg: string, f?: Record<string, unknown>) => {
    events.push({ level, msg, fields: f ?? {} });
    if (level === 'warn' || level === 'error') log(`target ${level}: ${msg} ${JSON.stringify(f ?? {})}`);
  };
  // Fixed ports: a stopped port must come back on the same number, and the guest's forwarders name them.
  const ports = [await freePort(), await freePort()];
  const handle = await startTarget({
    logger: { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') },
    config: {
      listen: ports.map((port) => ({ host: '127.0.0.1', port })),
      // Each port on its own I/O thread: round-robin I/O is then served by both threads.
      ioThreads: 2,
      dataDir: dir,
      subsystems: [
        {
          nqn,
          namespaces: [
            { nsid: 1, path: 'mp1.img', sizeBytes: 32 * MIB, blockSize: 512 },
            { nsid: 2, path: 'mp2.img', sizeBytes: 16 * MIB, blockSize: 4096 },
          ],
        },
      ],
    },
  });
  const checks: Record<string, 'ok' | string> = {};
  const check = checker(checks);
  const started = Date.now();
  const forward = (guestPort: number, port: number) =>
    // socat logs nowhere: its "connection refused" while port 2 is down would otherwise reach the guest as bytes.
    `guestfwd=tcp:10.0.2.100:${guestPort}-cmd:socat -lf /dev/null STDIO TCP:127.0.0.1:${port}`;
  const guest = startGuest(
    kernel.vmlinuz,
    initrd,
    `user,id=n0,restrict=on,${forward(4420, ports[0])},${forward(4421, ports[1])}`,
    `nearbpf.mode=multipath nearbpf.nqn=${nqn}`,
  );
  const stats = () => handle.target.portStatus().map((p) => p.stats);
  const timeoutMs = options.timeoutMs ?? 240_000;
  let out = '';
  try {
    await check('host actions', () => hostActions());
  } finally {
    guest.kill();
    out = await guest.exited.catch(() => guest.output());
    await handle.close();
  }
  async function hostActions(): Promise<void> {
    await check('both ports served round-robin I/O', async () => {
      await guest.waitFor(/NEARBPF-REQ rr-done/, timeoutMs);
      const s = stats();
      if (!s.every((p) => p.readCommands >= MIN_COMMANDS_PER_PORT && p.writeCommands >= MIN_COMMANDS_PER_PORT))
        throw new Error(`per-port commands: ${JSON.stringify(s)}`);
      log(`round robin: port 1 ${commands(s[0])} commands, port 2 ${commands(s[1])}`);
    });
    await guest.waitFor(/NEARBPF-REQ port-down/, timeoutMs);
    const beforeDown = stats();
    await handle.target.stopPort(2);
    log('port 2 stopped');
    await check('port 1 served the I/O while port 2 was down', async () => {
      await guest.waitFor(/NEARBPF-REQ port-up/, timeoutMs);
      const s = stats();
      if (commands(s[0]) - commands(beforeDown[0]) < 32) throw new Error(`port 1: ${JSON.stringify([beforeDown[0], s[0]])}`);
    });
    const beforeUp = stats();
    await handle.target.startPort(2);
    log('port 2 listening again');
    await check('port 2 serves I/O again after Linux reconnected', async () => {
      await guest.waitFor(/NEARBPF-REQ reconnected/, timeoutMs);
      const s = stats();
      if (commands(s[1]) - commands(beforeUp[1]) < MIN_COMMANDS_PER_PORT)
        throw new Error(`port 2: ${JSON.stringify([beforeUp[1], s[1]])}`);
    });
    await guest.waitFor(/NEARBPF-DONE|Kernel panic/, timeoutMs);
    // poweroff -f follows NEARBPF-DONE.
    await Promise.race([guest.exited, new Promise((r) => setTimeout(r, 15_000).unref())]);
  }
  try {
    const steps: Record<string, 'ok' | 'fail' | 'missing'> = {};
    const stepSeconds: Record<string, number> = {};
    for (const step of GUEST_STEPS) {
      const m = new RegExp(`NEARBPF-STEP ${step} (ok|fail) ([\\d.]+)`).exec(out);
      steps[step] = m ? (m[1] as 'ok' | 'fail') : 'missing';
      if (m) stepSeconds[step] = Number(m[2]);
    }
    checks['guest finished'] = out.includes('NEARBPF-DONE') ? 'ok' : 'guest did not finish';
    checks['data (md5 guest vs file)'] = regionChecks(out, await readFile(join(dir, 'mp1.img')), [
      [0, 4 * MIB],
      [16 * MIB, 8 * MIB],
    ]);
    const assocs = events.filter((e) => e.msg === 'association created' && e.fields.subsystem === nqn);
    const perPort = [1, 2].map((id) => assocs.filter((e) => e.fields.port === id).length);
    // Port 1: one association throughout; port 2: the first and the one Linux reconnected.
    checks['target: associations per port (1, 2)'] =
      perPort[0] === 1 && perPort[1] === 2 ? 'ok' : `associations per port: ${JSON.stringify(perPort)}`;
    const cntlids = assocs.map((e) => e.fields.cntlid);
    checks['target: distinct CNTLIDs'] = new Set(cntlids).size === cntlids.length ? 'ok' : JSON.stringify(cntlids);
    const errors = events.filter((e) => e.level === 'error');
    checks['target: no errors logged'] =
      errors.length === 0 ? 'ok' : errors.map((e) => `${e.msg} ${JSON.stringify(e.fields)}`).join('; ');
    const passed = Object.values(steps).every((v) => v === 'ok') && Object.values(checks).every((v) => v === 'ok');
    return {
      scenario: 'multipath (2 ports)',
      steps,
      stepSeconds,
      checks,
      passed,
      seconds: (Date.now() - started) / 1000,
      console: out,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
