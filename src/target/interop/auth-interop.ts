/**
 * DH-HMAC-CHAP interop under QEMU. Debian 12's 6.1 kernel is built without NVMe in-band
 * authentication, so these runs boot the 6.12 kernel of bookworm-backports (host and target
 * authentication built in), fetched through a private apt source list so the machine's own sources
 * stay as they are. Two boots:
 *   1. Linux + nvme-cli against our target: the right key connects (plain; digests with 2 I/O
 *      queues; bidirectional), a wrong key, a missing key and a wrong controller key are refused.
 *   2. Our host library against the kernel's nvmet requiring DH-HMAC-CHAP in both directions.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NvmeTcpHost } from '../../client/host.js';
import { AuthenticationError, formatDhchapKey, generateDhchapKey } from '../../protocol/dhchap.js';
import { startTarget } from '../target.js';
import {
  type AptSource,
  boot,
  buildInitramfs,
  checker,
  freePort,
  type InteropOptions,
  MODULES,
  prepareKernel,
  startGuest,
  type TargetEvent,
} from './qemu.js';

export const BACKPORTS_KERNEL: AptSource = {
  line: 'deb http://deb.debian.org/debian bookworm-backports main',
  pattern: /^linux-image-6\.\d+[\d.]*\+deb12-amd64-unsigned$/,
};
/** What the guest's nvme-cli connects as (its /etc/nvme/hostnqn). */
const GUEST_HOSTNQN = 'nqn.2014-08.org.nvmexpress:uuid:6e656172-6270-4620-8000-000000000001';
/** Modules for authentication; hmac, sha2 and dh are built into this kernel, the rest load with nvme-core. */
const AUTH_MODULES = [...MODULES, 'nvme-auth', 'nvme-keyring'];

export interface AuthInteropResult {
  scenario: string;
  checks: Record<string, 'ok' | string>;
  passed: boolean;
  seconds: number;
  console: string;
}

const GUEST_STEPS = [
  'auth-plain',
  'auth-digests-2-queues',
  'auth-bidirectional',
  'auth-wrong-key-refused',
  'auth-missing-key-refused',
  'auth-wrong-ctrl-key-refused',
];

/** Linux host (nvme-cli) against our target requiring DH-HMAC-CHAP. */
async function linuxAgainstOurTarget(
  kernel: { vmlinuz: string },
  initrd: string,
  timeoutMs: number,
  log: (s: string) => void,
): Promise<AuthInteropResult> {
  const nqn = 'nqn.2026-11.io.nearbpf:interop-auth';
  const key = formatDhchapKey(generateDhchapKey({ transform: 1, nqn: GUEST_HOSTNQN }));
  const ckey = formatDhchapKey(generateDhchapKey({ transform: 2, nqn: nqn }));
  const badKey = formatDhchapKey(generateDhchapKey({ transform: 1, nqn: GUEST_HOSTNQN }));
  const badCkey = formatDhchapKey(generateDhchapKey({ transform: 0 }));
  const dir = await mkdtemp(join(tmpdir(), 'nearbpf-interop-auth-'));
  const events: TargetEvent[] = [];
  const record = (level: TargetEvent['level']) => (msg: string, f?: Record<string, unknown>) => {
    events.push({ level, msg, fields: f ?? {} });
    if (level === 'warn' || level === 'error') log(`target ${level}: ${msg} ${JSON.stringify(f ?? {})}`);
  };
  const handle = await startTarget({
    logger: { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') },
    config: {
      listen: { host: '127.0.0.1', port: 0 },
      dataDir: dir,
      auth: { hosts: { [GUEST_HOSTNQN]: { key, controllerKey: ckey } } },
      subsystems: [
        {
          nqn,
          requireAuthentication: true,
          namespaces: [
            { nsid: 1, path: 'a.img', sizeBytes: 16 << 20, blockSize: 512 },
            { nsid: 2, path: 'b.img', sizeBytes: 16 << 20, blockSize: 4096 },
          ],
        },
      ],
    },
  });
  const started = Date.now();
  try {
    const { console: out, finished } = await boot(
      kernel.vmlinuz,
      initrd,
      handle.address.port,
      `nearbpf.mode=auth nearbpf.nqn=${nqn} nearbpf.key=${key} nearbpf.ckey=${ckey} nearbpf.badkey=${badKey} nearbpf.badckey=${badCkey}`,
      timeoutMs,
    );
    const checks: Record<string, 'ok' | string> = {};
    checks['guest finished'] = finished && out.includes('NEARBPF-DONE') ? 'ok' : 'guest did not finish';
    for (const step of GUEST_STEPS) {
      const m = new RegExp(`NEARBPF-STEP ${step} (ok|fail)`).exec(out);
      checks[step] = m ? (m[1] === 'ok' ? 'ok' : 'fail') : 'missing';
    }
    const authenticated = events.filter((e) => e.msg === 'authenticated');
    checks['target: admin and I/O queues authenticated'] =
      authenticated.some((e) => e.fields.qid === 0) && authenticated.some((e) => (e.fields.qid as number) > 0)
        ? 'ok'
        : JSON.stringify(authenticated.map((e) => e.fields.qid));
    checks['target: bidirectional with the Linux host'] = authenticated.some((e) => e.fields.bidirectional === true)
      ? 'ok'
      : 'no bidirectional authentication logged';
    checks['target: wrong key refused'] = events.some(
      (e) => e.msg === 'authentication failed' && /does not match/.test(String(e.fields.reason)),
    )
      ? 'ok'
      : 'no mismatch logged';
    checks['target: Linux refused the wrong controller key (Failure2)'] = events.some(
      (e) => e.msg === 'authentication failed' && /Failure2/.test(String(e.fields.reason)),
    )
      ? 'ok'
      : 'no Failure2 logged';
    const errors = events.filter((e) => e.level === 'error');
    checks['target: no errors logged'] = errors.length === 0 ? 'ok' : errors.map((e) => e.msg).join('; ');
    const secretsLogged = [key, ckey, badKey, badCkey].some((k) => JSON.stringify(events).includes(k.slice(10, 40)));
    checks['target: no secret in the log'] = secretsLogged ? 'a secret was logged' : 'ok';
    return {
      scenario: 'Linux host (6.12) with DH-HMAC-CHAP vs our target',
      checks,
      passed: Object.values(checks).every((v) => v === 'ok'),
      seconds: (Date.now() - started) / 1000,
      console: out,
    };
  } finally {
    await handle.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Our host library against the kernel's nvmet requiring DH-HMAC-CHAP both ways. */
async function ourHostAgainstNvmet(kernel: { vmlinuz: string }, initrd: string, timeoutMs: number): Promise<AuthInteropResult> {
  const nqn = 'nqn.2026-11.io.nearbpf:nvmet-auth';
  const hostNqn = 'nqn.2014-08.org.nvmexpress:uuid:6e656172-6270-4620-8000-0000000000c1';
  const key = formatDhchapKey(generateDhchapKey({ transform: 3, nqn: hostNqn }));
  const ckey = formatDhchapKey(generateDhchapKey({ transform: 0, lengthBytes: 48 }));
  const port = await freePort();
  const started = Date.now();
  const guest = startGuest(
    kernel.vmlinuz,
    initrd,
    `user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${port}-:4420`,
    `nearbpf.mode=nvmet nearbpf.nqn=${nqn} nearbpf.hostnqn=${hostNqn} nearbpf.key=${key} nearbpf.ckey=${ckey} nearbpf.hash=hmac(sha384) nearbpf.dhgroup=ffdhe3072`,
  );
  const checks: Record<string, 'ok' | string> = {};
  const check = checker(checks);
  const connect = (o: { secret?: string; controllerSecret?: string }) =>
    NvmeTcpHost.connect({
      host: '127.0.0.1',
      port,
      subsystemNqn: nqn,
      hostNqn,
      ioQueues: 2,
      keepAliveTimeoutMs: 0,
      ...(o.secret ? { dhchap: { secret: o.secret, controllerSecret: o.controllerSecret } } : {}),
    });
  try {
    await guest.waitFor(/NEARBPF-NVMET-READY/, timeoutMs);
    await check('bidirectional: both sides proven, I/O on 2 queues', async () => {
      const host = await connect({ secret: key, controllerSecret: ckey });
      try {
        const a = host.authentication;
        if (!a?.bidirectional || a.hash !== 'sha384' || a.dhGroup !== 'ffdhe3072') throw new Error(JSON.stringify(a));
        const ns = await host.identifyNamespace(1);
        const data = Buffer.alloc(ns.blockSize * 8, 0x5a);
        await host.write(1, 8, data, { qid: 2 });
        if (!(await host.read(1, 8, 8, 1)).equals(data)) throw new Error('data differs');
        await host.close();
      } finally {
        host.disconnect();
      }
    });
    await check('one-way (host key only)', async () => {
      const host = await connect({ secret: key });
      await host.close();
    });
    await check('wrong key refused by nvmet', async () => {
      const wrong = formatDhchapKey(generateDhchapKey({ transform: 0 }));
      const r = await connect({ secret: wrong }).then(
        (h) => {
          h.disconnect();
          return 'connected';
        },
        (e) => e,
      );
      if (!(r instanceof AuthenticationError)) throw new Error(`expected an authentication failure, got ${String(r)}`);
    });
    await check('wrong controller key: our host refuses nvmet', async () => {
      const wrong = formatDhchapKey(generateDhchapKey({ transform: 0, lengthBytes: 48 }));
      const r = await connect({ secret: key, controllerSecret: wrong }).then(
        (h) => {
          h.disconnect();
          return 'connected';
        },
        (e) => e,
      );
      if (!(r instanceof AuthenticationError && /controller failed to authenticate/.test(r.message)))
        throw new Error(`expected the controller to fail, got ${String(r)}`);
    });
    await check('missing key refused', async () => {
      const r = await connect({}).then(
        (h) => {
          h.disconnect();
          return 'connected';
        },
        (e) => e,
      );
      if (!(r instanceof AuthenticationError)) throw new Error(`expected refusal, got ${String(r)}`);
    });
  } finally {
    guest.kill();
    await guest.exited.catch(() => '');
  }
  return {
    scenario: 'our host with DH-HMAC-CHAP vs Linux nvmet (6.12)',
    checks,
    passed: Object.keys(checks).length === 5 && Object.values(checks).every((v) => v === 'ok'),
    seconds: (Date.now() - started) / 1000,
    console: guest.output(),
  };
}

/** Both authentication runs on the bookworm-backports kernel. */
export async function runAuthInterop(options: InteropOptions = {}): Promise<AuthInteropResult[]> {
  const log = options.log ?? (() => {});
  const base = options.cacheDir ?? join((await import('node:os')).homedir(), '.cache', 'nearbpf', 'interop');
  const cacheDir = join(base, 'backports');
  const kernel = await prepareKernel(cacheDir, log, BACKPORTS_KERNEL);
  const initrd = join(cacheDir, 'initrd.gz');
  log(`building initramfs for ${kernel.version}`);
  await buildInitramfs(kernel, initrd, AUTH_MODULES);
  const timeoutMs = options.timeoutMs ?? 240_000;
  log('booting guest (DH-HMAC-CHAP initiator)');
  const linux = await linuxAgainstOurTarget(kernel, initrd, timeoutMs, log);
  log(`${linux.scenario}: ${linux.passed ? 'PASS' : 'FAIL'} in ${linux.seconds.toFixed(0)} s`);
  log('booting guest (nvmet with DH-HMAC-CHAP)');
  const ours = await ourHostAgainstNvmet(kernel, initrd, timeoutMs);
  log(`${ours.scenario}: ${ours.passed ? 'PASS' : 'FAIL'} in ${ours.seconds.toFixed(0)} s`);
  return [linux, ours];
}
