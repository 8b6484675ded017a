/**
 * Interop suite: boot Debian's stock kernel under QEMU (TCG) with a busybox initramfs holding the
 * nvme-tcp and ext4 modules, nvme-cli and e2fsprogs, and let the real Linux initiator discover, connect
 * (two I/O queues, short KATO, with and without digests), identify, read, write, flush, write-zeroes and
 * deallocate, run concurrent 8 MiB direct I/O, idle past twice the KATO, disconnect and reconnect,
 * carry an ext4 file system, and load/list/execute/unload storage functions through passthru against
 * our target. The guest reaches the target through QEMU user networking restricted to one forwarded
 * address. Guest steps are checked together with the namespace files and the target's log.
 *
 * Needs: qemu-system-x86 nvme-cli e2fsprogs busybox-static cpio kmod socat (apt), and `apt-get download`
 * of a linux-image-*-amd64-unsigned package (cached in `cacheDir`).
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { NearbpfError, UsageError } from '../../errors.js';
import { startTarget } from '../target.js';
import { GUEST_INIT } from './guest-init.sh.js';
import { guestStorageFunctions, SF_BLOCK_OFFSET } from './storage-functions.js';

const exec = promisify(execFile);

export class InteropError extends NearbpfError {
  readonly code = 'ERR_INTEROP';
}

export interface InteropOptions {
  cacheDir?: string;
  /** Per boot. */
  timeoutMs?: number;
  log?: (line: string) => void;
}

export interface InteropResult {
  scenario: string;
  /** Guest steps in the order expected: ok, fail or missing. */
  steps: Record<string, 'ok' | 'fail' | 'missing'>;
  /** Seconds each guest step took. */
  stepSeconds: Record<string, number>;
  /** Host-side checks (namespace files, target log): 'ok' or what went wrong. */
  checks: Record<string, 'ok' | string>;
  dataMatches: boolean;
  /** Connections that negotiated header and data digests. */
  digestConnections: number;
  passed: boolean;
  /** Wall time of the boot, seconds. */
  seconds: number;
  console: string;
}

const TOOLS = [
  'qemu-system-x86_64',
  'nvme',
  'mkfs.ext4',
  'e2fsck',
  'busybox',
  'cpio',
  'depmod',
  'modprobe',
  'socat',
  'dpkg-deb',
  'apt-get',
  'gzip',
];
export const APT_PACKAGES = 'qemu-system-x86 nvme-cli e2fsprogs busybox-static cpio kmod socat';
export const MODULES = ['crc32c_generic', 'e1000', 'nvme-tcp', 'nvmet-tcp', 'brd', 'ext4'];
/** Host binaries copied into the initramfs with their libraries. */
const GUEST_BINARIES = ['nvme', 'mkfs.ext4', 'e2fsck'];
const APPLETS = [
  'sh',
  'mount',
  'umount',
  'mkdir',
  'cat',
  'echo',
  'ip',
  'insmod',
  'modprobe',
  'sleep',
  'dd',
  'cmp',
  'cp',
  'ln',
  'md5sum',
  'poweroff',
  'ls',
  'grep',
  'head',
  'tail',
  'cut',
  'tr',
  'sed',
  'awk',
  'od',
  'strings',
  'wc',
  'sync',
  'taskset',
  'uname',
  'dmesg',
  'true',
  'false',
  '[',
  'test',
];
/** Guest steps of every scenario, in the order the guest runs them. */
const BASE_STEPS = [
  'discover',
  'discovery-lists-subsystem',
  'connect',
  'namespace-appeared',
  'io-queues',
  'id-ctrl',
  'id-ns',
  'write-direct',
  'read-direct',
  'compare',
  'write-large',
  'flush',
  'write-zeroes',
  'deallocate',
  'smart-log',
  'mq-prepare',
  'mq-write-3x8MiB',
  'mq-read-3x8MiB',
  'mq-compare',
];
/** Further guest steps of the full scenario (nearbpf.full=1). */
const FULL_STEPS = [
  'idle-12s',
  'alive-after-idle',
  'disconnect-1',
  'controller-removed',
  'reconnect',
  'reconnect-namespaces',
  'reconnect-io-queues',
  'reconnect-read-old-data',
  'reconnect-write-read',
  'ext4-mkfs',
  'ext4-mount',
  'ext4-write-files',
  'ext4-umount',
  'ext4-fsck',
  'ext4-remount-verify',
  'sf-load',
  'sf-load-chunked',
  'sf-list',
  'sf-exec-plus-one',
  'sf-exec-read-u64',
  'sf-exec-output',
  'sf-unload',
  'sf-exec-unloaded-fails',
  'sf-list-after-unload',
  'sf-unload-last',
  'sf-list-empty',
];
const MIB = 1 << 20;
/** Regions of namespace 1 the guest reports md5s of: [offset, length] in bytes. */
const BASE_REGIONS: [number, number][] = [
  [0, 2 * MIB],
  [4 * MIB, 2 * MIB],
  [8 * MIB, 8 * MIB],
  [24 * MIB, 8 * MIB],
  [40 * MIB, 8 * MIB],
];
const FULL_REGIONS: [number, number][] = [
  [56 * MIB, 2 * MIB],
  [SF_BLOCK_OFFSET, 64 * 1024],
];

interface Scenario {
  name: string;
  digests: boolean;
  /** Idle past KATO, reconnect, ext4, storage functions. */
  full: boolean;
}
const SCENARIOS: Scenario[] = [
  { name: 'plain', digests: false, full: true },
  { name: 'digests', digests: true, full: true },
];
const KATO_MS = 5000;

function expectedSteps(s: Scenario): string[] {
  return [...BASE_STEPS, ...(s.full ? FULL_STEPS : []), 'disconnect'];
}

async function which(tool: string): Promise<boolean> {
  try {
    await exec('sh', ['-c', `command -v ${tool}`], { env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
    return true;
  } catch {
    return false;
  }
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

/**
 * A private apt source (its own source list, lists and cache under `cacheDir`), so a kernel from another
 * suite can be fetched without touching the machine's apt sources.
 */
export interface AptSource {
  /** One `deb ...` line. */
  line: string;
  /** Package names to consider (the newest matching one is taken). */
  pattern: RegExp;
}

async function privateApt(cacheDir: string, source: AptSource, log: (s: string) => void): Promise<string[]> {
  const lists = join(cacheDir, 'apt-lists');
  await mkdir(join(lists, 'partial'), { recursive: true });
  await mkdir(join(cacheDir, 'apt-cache', 'archives', 'partial'), { recursive: true });
  await writeFile(join(cacheDir, 'sources.list'), `${source.line}\n`);
  const opts = [
    '-o',
    `Dir::Etc::sourcelist=${join(cacheDir, 'sources.list')}`,
    '-o',
    'Dir::Etc::sourceparts=-',
    '-o',
    `Dir::State::Lists=${lists}`,
    '-o',
    `Dir::Cache=${join(cacheDir, 'apt-cache')}`,
  ];
  log(`apt-get update (private source: ${source.line})`);
  await exec('apt-get', [...opts, '-qq', 'update']);
  return opts;
}

/** Download and unpack the newest linux-image-*-amd64-unsigned once; returns the kernel and module tree. */
export async function prepareKernel(
  cacheDir: string,
  log: (s: string) => void,
  source?: AptSource,
): Promise<{ vmlinuz: string; root: string; version: string }> {
  const root = join(cacheDir, 'root');
  const find = async () => {
    const boot = await readdir(join(root, 'boot')).catch(() => [] as string[]);
    const v = boot.find((f) => f.startsWith('vmlinuz-'));
    return v ? { vmlinuz: join(root, 'boot', v), root, version: v.slice('vmlinuz-'.length) } : null;
  };
  const found = await find();
  if (found) return found;
  await mkdir(cacheDir, { recursive: true });
  const apt = source ? await privateApt(cacheDir, source, log) : [];
  const { stdout } = await exec('apt-cache', [...apt, 'search', '--names-only', '^linux-image-[0-9].*-amd64-unsigned$']);
  const pkgs = stdout
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((p) => (source?.pattern ?? /^linux-image-[0-9.]+-\d+-amd64-unsigned$/).test(p))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const pkg = pkgs.at(-1);
  if (!pkg) throw new InteropError('no linux-image-*-amd64-unsigned package found (run apt-get update)');
  log(`downloading ${pkg}`);
  await exec('apt-get', [...apt, 'download', pkg], { cwd: cacheDir });
  const deb = (await readdir(cacheDir)).find((f) => f.startsWith(pkg) && f.endsWith('.deb'));
  if (!deb) throw new InteropError(`apt-get download ${pkg} produced no .deb`);
  await exec('dpkg-deb', ['-x', join(cacheDir, deb), root]);
  const k = await find();
  if (!k) throw new InteropError(`${deb} holds no vmlinuz`);
  await exec('depmod', ['-b', root, k.version]);
  return k;
}

/** A gzip'd newc initramfs with busybox, nvme-cli and its libraries, the modules and /init. */
export async function buildInitramfs(kernel: { root: string; version: string }, out: string, modules = MODULES): Promise<void> {
  const stage = await mkdtemp(join(tmpdir(), 'nearbpf-initramfs-'));
  try {
    for (const d of ['bin', 'usr/sbin', 'proc', 'sys', 'dev', 'tmp', 'run', 'etc/nvme'])
      await mkdir(join(stage, d), { recursive: true });
    const busybox = (await exists('/bin/busybox')) ? '/bin/busybox' : '/usr/bin/busybox';
    await copyFile(busybox, join(stage, 'bin/busybox'));
    // No applet link named `busybox`: the binary itself lives there.
    for (const a of APPLETS) await symlink('busybox', join(stage, 'bin', a));
    const path = `${process.env.PATH}:/usr/sbin:/sbin`;
    for (const bin of GUEST_BINARIES) {
      const src = (await exec('sh', ['-c', `command -v ${bin}`], { env: { ...process.env, PATH: path } })).stdout.trim();
      // Keep the name: mke2fs picks the file system type from it (mkfs.ext4).
      await copyFile(src, join(stage, 'usr/sbin', bin));
      const { stdout: ldd } = await exec('ldd', [src]);
      for (const m of ldd.matchAll(/(\/\S+\.so[.\d]*)/g)) {
        const lib = m[1];
        if (await exists(join(stage, lib))) continue;
        await mkdir(join(stage, dirname(lib)), { recursive: true });
        await copyFile(lib, join(stage, lib));
      }
    }
    if (await exists('/etc/mke2fs.conf')) await copyFile('/etc/mke2fs.conf', join(stage, 'etc/mke2fs.conf'));
    for (const [file, bytes] of Object.entries(guestStorageFunctions().files)) {
      await mkdir(join(stage, dirname(file)), { recursive: true });
      await writeFile(join(stage, file), bytes);
    }
    const modRoot = join(kernel.root, 'lib/modules', kernel.version);
    const order: string[] = [];
    for (const mod of modules) {
      const { stdout } = await exec('modprobe', ['-d', kernel.root, '-S', kernel.version, '--show-depends', mod]);
      for (const line of stdout.split('\n')) {
        const path = /^insmod (\S+)/.exec(line)?.[1];
        if (!path) continue;
        const rel = path.slice(modRoot.length + 1);
        if (order.includes(rel)) continue;
        order.push(rel);
        const dst = join(stage, 'lib/modules', kernel.version, rel);
        await mkdir(dirname(dst), { recursive: true });
        await copyFile(path, dst);
      }
    }
    await exec('depmod', ['-b', stage, kernel.version]);
    await writeFile(join(stage, 'modules.order'), `${order.join('\n')}\n`);
    await writeFile(join(stage, 'etc/nvme/hostnqn'), 'nqn.2014-08.org.nvmexpress:uuid:6e656172-6270-4620-8000-000000000001\n');
    await writeFile(join(stage, 'etc/nvme/hostid'), '6e656172-6270-4620-8000-000000000001\n');
    await writeFile(join(stage, 'init'), GUEST_INIT);
    await chmod(join(stage, 'init'), 0o755);
    await exec('sh', ['-c', `cd "${stage}" && find . | cpio -o -H newc --quiet | gzip -1 > "${out}"`]);
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

interface Guest {
  output(): string;
  /** Resolves when `pattern` shows up on the console; rejects if the guest exits or `timeoutMs` passes. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<void>;
  exited: Promise<string>;
  kill(): void;
}

export function startGuest(vmlinuz: string, initrd: string, netdev: string, append: string): Guest {
  const args = [
    '-accel',
    'tcg',
    '-m',
    '512',
    '-smp',
    '2',
    '-nographic',
    '-no-reboot',
    '-kernel',
    vmlinuz,
    '-initrd',
    initrd,
    '-append',
    `console=ttyS0 panic=-1 loglevel=4 ${append}`,
    '-netdev',
    netdev,
    '-device',
    'e1000,netdev=n0',
  ];
  const q = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const listeners = new Set<() => void>();
  const onOut = (d: Buffer) => {
    out += d.toString();
    for (const l of listeners) l();
  };
  q.stdout.on('data', onOut);
  q.stderr.on('data', onOut);
  const exited = new Promise<string>((resolve, reject) => {
    q.on('error', (e) => reject(new InteropError(`cannot run qemu: ${e.message}`)));
    q.on('exit', () => {
      for (const l of listeners) l();
      resolve(out);
    });
  });
  exited.catch(() => {});
  return {
    output: () => out,
    exited,
    kill: () => {
      if (q.exitCode === null && q.signalCode === null) q.kill('SIGKILL');
    },
    waitFor: (pattern, timeoutMs) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (pattern.test(out)) done(null);
          else if (q.exitCode !== null || q.signalCode !== null)
            done(new InteropError(`guest exited before ${pattern}:\n${out.slice(-4000)}`));
        };
        const timer = setTimeout(
          () => done(new InteropError(`no ${pattern} within ${timeoutMs} ms:\n${out.slice(-4000)}`)),
          timeoutMs,
        );
        const done = (e: Error | null) => {
          clearTimeout(timer);
          listeners.delete(check);
          if (e) reject(e);
          else resolve();
        };
        listeners.add(check);
        check();
      }),
  };
}

/** Runs the guest until it reports NEARBPF-DONE (or panics, exits, or times out); returns its console. */
export async function boot(
  vmlinuz: string,
  initrd: string,
  port: number,
  append: string,
  timeoutMs: number,
): Promise<{ console: string; finished: boolean }> {
  const guest = startGuest(
    vmlinuz,
    initrd,
    `user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:4420-cmd:socat STDIO TCP:127.0.0.1:${port}`,
    append,
  );
  try {
    await guest.waitFor(/NEARBPF-DONE|Kernel panic/, timeoutMs);
    // poweroff -f follows NEARBPF-DONE; do not wait for it forever.
    const grace = new Promise<string>((resolve) => setTimeout(() => resolve(guest.output()), 15_000).unref());
    return { console: await Promise.race([guest.exited, grace]), finished: true };
  } catch (e) {
    const why = (e as Error).message.split('\n')[0];
    return { console: `${guest.output()}\n[interop] ${why}\n`, finished: false };
  } finally {
    guest.kill();
  }
}

export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => (a && typeof a !== 'string' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

/** `check(name, f)`: run f, record 'ok' or its error message under name. */
export function checker(checks: Record<string, 'ok' | string>) {
  return async (name: string, f: () => Promise<unknown>): Promise<void> => {
    try {
      await f();
      checks[name] = 'ok';
    } catch (e) {
      checks[name] = String((e as Error).message ?? e);
    }
  };
}

export interface ClientInteropResult {
  scenario: string;
  checks: Record<string, 'ok' | string>;
  passed: boolean;
}

/** Our NvmeTcpHost against the Linux kernel target (nvmet-tcp) running in the guest. */
async function clientAgainstNvmet(
  kernel: { vmlinuz: string },
  initrd: string,
  digests: boolean,
  timeoutMs: number,
): Promise<ClientInteropResult> {
  const { NvmeTcpHost } = await import('../../client/host.js');
  const { DISCOVERY_NQN } = await import('../../protocol/constants.js');
  const { randomBytes } = await import('node:crypto');
  const nqn = 'nqn.2026-11.io.nearbpf:nvmet-reference';
  const port = await freePort();
  const guest = startGuest(
    kernel.vmlinuz,
    initrd,
    `user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${port}-:4420`,
    `nearbpf.mode=nvmet nearbpf.nqn=${nqn}`,
  );
  const checks: Record<string, 'ok' | string> = {};
  const check = checker(checks);
  try {
    await guest.waitFor(/NEARBPF-NVMET-READY/, timeoutMs);
    await check('discovery log', async () => {
      const d = await NvmeTcpHost.connect({ host: '127.0.0.1', port, subsystemNqn: DISCOVERY_NQN, keepAliveTimeoutMs: 0 });
      try {
        const log = await d.discoveryLog();
        if (!log.entries.some((e) => e.subnqn === nqn)) throw new Error(`subsystem not listed: ${JSON.stringify(log.entries)}`);
      } finally {
        await d.close();
      }
    });
    const host = await NvmeTcpHost.connect({
      host: '127.0.0.1',
      port,
      subsystemNqn: nqn,
      ioQueues: 2,
      headerDigest: digests,
      dataDigest: digests,
    });
    try {
      await check('digests negotiated', async () => {
        if (host.digests.header !== digests || host.digests.data !== digests) throw new Error(JSON.stringify(host.digests));
      });
      await check('identify controller', async () => {
        if (host.controller.subnqn !== nqn) throw new Error(host.controller.subnqn);
      });
      await check('active namespaces', async () => {
        const list = await host.activeNamespaces();
        if (list[0] !== 1) throw new Error(JSON.stringify(list));
      });
      const ns = await host.identifyNamespace(1);
      const bs = ns.blockSize;
      await check('write/read in-capsule', async () => {
        const d = randomBytes(bs);
        await host.write(1, 1, d);
        if (!(await host.read(1, 1, 1)).equals(d)) throw new Error('data differs');
      });
      await check('write/read 1 MiB via R2T', async () => {
        const d = randomBytes(1 << 20);
        await host.write(1, 64, d, { fua: true });
        if (!(await host.read(1, 64, (1 << 20) / bs)).equals(d)) throw new Error('data differs');
      });
      await check('64 concurrent commands on 2 queues', async () => {
        const ds = Array.from({ length: 64 }, () => randomBytes(bs));
        await Promise.all(ds.map((d, i) => host.write(1, 4096 + i, d)));
        const back = await Promise.all(ds.map((_, i) => host.read(1, 4096 + i, 1)));
        if (!back.every((b, i) => b.equals(ds[i]))) throw new Error('data differs');
      });
      await check('flush', () => host.flush(1));
      await check('write zeroes', async () => {
        await host.writeZeroes(1, 1, 1);
        if (!(await host.read(1, 1, 1)).every((x) => x === 0)) throw new Error('not zero');
      });
      await check('deallocate', () => host.deallocate(1, [{ slba: 64, blocks: 8 }]));
      await check('keep alive', () => host.keepAlive());
      await check('shutdown', () => host.close());
    } finally {
      host.disconnect();
    }
  } finally {
    guest.kill();
    await guest.exited.catch(() => '');
  }
  const scenario = `client vs nvmet${digests ? ' (digests)' : ''}`;
  return { scenario, checks, passed: Object.values(checks).length >= 11 && Object.values(checks).every((v) => v === 'ok') };
}

export interface TargetEvent {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  fields: Record<string, unknown>;
}

/** What the target's log says about the run: associations, their I/O queues, KATO, keep-alive expiry. */
function targetChecks(events: TargetEvent[], nqn: string, scenario: Scenario): Record<string, 'ok' | string> {
  const checks: Record<string, 'ok' | string> = {};
  const assocs = events.filter((e) => e.msg === 'association created' && e.fields.subsystem === nqn);
  const wantAssocs = scenario.full ? 2 : 1;
  checks['target: associations'] =
    assocs.length === wantAssocs ? 'ok' : `${assocs.length} associations to ${nqn}, expected ${wantAssocs}`;
  const katos = assocs.map((e) => e.fields.katoMs);
  checks[`target: KATO ${KATO_MS} ms`] =
    katos.length > 0 && katos.every((k) => k === KATO_MS) ? 'ok' : `KATO of the associations: ${JSON.stringify(katos)}`;
  const queues = assocs.map(
    (a) =>
      new Set(
        events.filter((e) => e.msg === 'I/O queue connected' && e.fields.cntlid === a.fields.cntlid).map((e) => e.fields.qid),
      ).size,
  );
  checks['target: >= 2 I/O queues each'] =
    queues.length > 0 && queues.every((n) => n >= 2) ? 'ok' : `I/O queues per association: ${JSON.stringify(queues)}`;
  const expired = events.filter((e) => e.msg.startsWith('keep-alive timeout'));
  checks['target: no keep-alive expiry'] = expired.length === 0 ? 'ok' : JSON.stringify(expired.map((e) => e.fields));
  const errors = events.filter((e) => e.level === 'error');
  checks['target: no errors logged'] =
    errors.length === 0 ? 'ok' : errors.map((e) => `${e.msg} ${JSON.stringify(e.fields)}`).join('; ');
  if (scenario.full) {
    const loaded = events.filter((e) => e.fields.event === 'program.loaded').map((e) => e.fields.program);
    checks['target: 2 programs loaded'] = loaded.length === 2 ? 'ok' : `loaded: ${JSON.stringify(loaded)}`;
  }
  return checks;
}

/** The md5s the guest read back against the namespace file; every expected region must be there. */
export function regionChecks(out: string, file: Buffer, expected: [number, number][]): 'ok' | string {
  const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
  const reported = new Map<string, string>();
  for (const m of out.matchAll(/NEARBPF-REGION 1 (\d+) (\d+) ([0-9a-f]{32})/g)) reported.set(`${m[1]}+${m[2]}`, m[3]);
  const bad: string[] = [];
  for (const [offset, length] of expected) {
    const got = reported.get(`${offset}+${length}`);
    if (got === undefined) bad.push(`${offset}+${length}: not reported`);
    else if (got !== md5(file.subarray(offset, offset + length))) bad.push(`${offset}+${length}: differs`);
  }
  return bad.length === 0 ? 'ok' : bad.join(', ');
}

/** The ext4 file system the guest made on namespace 2, seen in the target's file: magic, cleanly unmounted. */
function ext4Check(file: Buffer): 'ok' | string {
  const sb = 1024;
  const magic = file.readUInt16LE(sb + 56);
  const state = file.readUInt16LE(sb + 58);
  if (magic !== 0xef53) return `no ext4 superblock (magic 0x${magic.toString(16)})`;
  return (state & 1) === 1 && (state & 2) === 0 ? 'ok' : `superblock state 0x${state.toString(16)} (not clean)`;
}

/** Boot the guest once per scenario (plain + full, digests) against a fresh target; report every step. */
export async function runInterop(options: InteropOptions = {}): Promise<InteropResult[]> {
  const log = options.log ?? (() => {});
  const missing: string[] = [];
  for (const t of TOOLS) if (!(await which(t))) missing.push(t);
  if (missing.length > 0) {
    throw new InteropError(`missing tools: ${missing.join(', ')}; install with: apt-get install -y ${APT_PACKAGES}`);
  }
  const cacheDir = options.cacheDir ?? join(homedir(), '.cache', 'nearbpf', 'interop');
  const kernel = await prepareKernel(cacheDir, log);
  const initrd = join(cacheDir, 'initrd.gz');
  log(`building initramfs for ${kernel.version}`);
  await buildInitramfs(kernel, initrd);
  const results: InteropResult[] = [];
  for (const scenario of SCENARIOS) {
    const dir = await mkdtemp(join(tmpdir(), 'nearbpf-interop-'));
    const nqn = 'nqn.2026-11.io.nearbpf:interop';
    let digestConnections = 0;
    const events: TargetEvent[] = [];
    const record = (level: TargetEvent['level']) => (msg: string, f?: Record<string, unknown>) => {
      events.push({ level, msg, fields: f ?? {} });
      // The target's catalogue event for a finished ICReq (src/target/logger.ts LOG_EVENTS).
      if (f?.event === 'connection.initialized' && f.headerDigest && f.dataDigest) digestConnections++;
      if (level === 'warn' || level === 'error') log(`target ${level}: ${msg} ${JSON.stringify(f ?? {})}`);
    };
    const logger = { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') };
    const handle = await startTarget({
      logger,
      config: {
        listen: { host: '127.0.0.1', port: 0 },
        dataDir: dir,
        subsystems: [
          {
            nqn,
            namespaces: [
              { nsid: 1, path: 'interop.img', sizeBytes: 64 * MIB, blockSize: 512 },
              // 4 KiB blocks for the file system: the initiator's LBADS 12 path.
              { nsid: 2, path: 'ext4.img', sizeBytes: 64 * MIB, blockSize: 4096 },
            ],
          },
        ],
      },
    });
    try {
      log(`booting guest (${scenario.name})`);
      const started = Date.now();
      const { console: out, finished } = await boot(
        kernel.vmlinuz,
        initrd,
        handle.address.port,
        `nearbpf.nqn=${nqn} nearbpf.digest=${scenario.digests ? 1 : 0} nearbpf.full=${scenario.full ? 1 : 0}`,
        // Generous: on a loaded 2-core machine the full scenario has taken 200 s (95 s when quiet).
        options.timeoutMs ?? (scenario.full ? 300_000 : 120_000),
      );
      const seconds = (Date.now() - started) / 1000;
      const reported: Record<string, 'ok' | 'fail'> = {};
      const stepSeconds: Record<string, number> = {};
      for (const m of out.matchAll(/NEARBPF-STEP (\S+) (ok|fail)(?: ([\d.]+))?/g)) {
        reported[m[1]] = m[2] as 'ok' | 'fail';
        if (m[3] !== undefined) stepSeconds[m[1]] = Number(m[3]);
      }
      const steps: Record<string, 'ok' | 'fail' | 'missing'> = {};
      for (const s of expectedSteps(scenario)) steps[s] = reported[s] ?? 'missing';
      await handle.close();
      const checks: Record<string, 'ok' | string> = {};
      checks['guest finished'] =
        finished && out.includes('NEARBPF-DONE') ? 'ok' : 'guest did not finish (timeout, panic or exit)';
      const ns1 = await readFile(join(dir, 'interop.img'));
      checks['data (md5 guest vs file)'] = regionChecks(out, ns1, [...BASE_REGIONS, ...(scenario.full ? FULL_REGIONS : [])]);
      if (scenario.full) checks['ext4 in namespace file'] = ext4Check(await readFile(join(dir, 'ext4.img')));
      // With digests asked for, the admin and I/O queues of the association must have negotiated them.
      if (scenario.digests) {
        // Admin + 2 I/O queues per association (two associations when reconnecting).
        const want = 3 * (scenario.full ? 2 : 1);
        checks[`queues with digests (>= ${want})`] = digestConnections >= want ? 'ok' : `${digestConnections}`;
      }
      Object.assign(checks, targetChecks(events, nqn, scenario));
      const dataMatches = checks['data (md5 guest vs file)'] === 'ok';
      const passed = Object.values(steps).every((v) => v === 'ok') && Object.values(checks).every((v) => v === 'ok');
      results.push({
        scenario: scenario.name,
        steps,
        stepSeconds,
        checks,
        dataMatches,
        digestConnections,
        passed,
        seconds,
        console: out,
      });
      log(`${scenario.name}: ${passed ? 'PASS' : 'FAIL'} in ${seconds.toFixed(0)} s`);
    } finally {
      await handle.close();
      await rm(dir, { recursive: true, force: true });
    }
  }
  return results;
}

/** Our client against the Linux kernel target, with and without digests. */
export async function runClientInterop(options: InteropOptions = {}): Promise<ClientInteropResult[]> {
  const log = options.log ?? (() => {});
  const cacheDir = options.cacheDir ?? join(homedir(), '.cache', 'nearbpf', 'interop');
  const kernel = await prepareKernel(cacheDir, log);
  const initrd = join(cacheDir, 'initrd.gz');
  if (!(await exists(initrd))) await buildInitramfs(kernel, initrd);
  const out: ClientInteropResult[] = [];
  for (const digests of [false, true]) {
    log(`booting nvmet guest${digests ? ' (digests)' : ''}`);
    const r = await clientAgainstNvmet(kernel, initrd, digests, options.timeoutMs ?? 240_000);
    log(`${r.scenario}: ${r.passed ? 'PASS' : 'FAIL'} ${JSON.stringify(r.checks)}`);
    out.push(r);
  }
  return out;
}

export const INTEROP_USAGE = `nearbpf interop [--cache DIR] [--verbose] [--auth-only] [--multipath-only]

Boots Debian's kernel under QEMU and runs the Linux NVMe/TCP initiator (nvme-cli) against the target,
once plain and once with header and data digests: discovery, connect with 2 I/O queues and a 5 s KATO,
identify, direct I/O, flush, write zeroes, deallocate, three concurrent 8 MiB O_DIRECT transfers,
staying connected idle for 12 s, disconnect and reconnect, ext4 (mkfs, mount, files, e2fsck -fn) on a
4 KiB-block namespace, and storage functions loaded, listed, executed and unloaded through
nvme admin-passthru / io-passthru; the namespace files and the target's log are checked too.
Then Linux native multipath over two ports of one target: one namespace device with two paths,
round-robin I/O served by both ports, port 2 taken down under writes (no error reaches dd, data
verified) and brought back (Linux reconnects and uses it again).
Then runs our client against the kernel's own target (nvmet-tcp) in the same guest. Finally
DH-HMAC-CHAP on bookworm-backports' 6.12 kernel (fetched through a private apt source list): Linux +
nvme-cli against our target (right key plain, with digests and 2 I/O queues, bidirectional; wrong,
missing and wrong controller keys refused), and our host against nvmet requiring keys both ways.
  --auth-only       only the DH-HMAC-CHAP runs
  --multipath-only  only the multipath run
Needs: apt-get install -y ${APT_PACKAGES}`;

/** The `interop` subcommand, shaped like the CLI's `Command` table entries. Exit 1 if any check fails. */
export const interopCommand = {
  name: 'interop',
  summary: 'test the target against the Linux NVMe/TCP initiator under QEMU',
  usage: INTEROP_USAGE,
  async run(
    args: string[],
    io: { stdout: { write(s: string): unknown }; stderr: { write(s: string): unknown } },
  ): Promise<number> {
    let values: { cache?: string; verbose?: boolean; 'auth-only'?: boolean; 'multipath-only'?: boolean };
    try {
      ({ values } = parseArgs({
        args,
        options: {
          cache: { type: 'string' },
          verbose: { type: 'boolean' },
          'auth-only': { type: 'boolean' },
          'multipath-only': { type: 'boolean' },
        },
        strict: true,
      }));
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const started = Date.now();
    const log = (s: string) => io.stderr.write(`${s}\n`);
    const { runAuthInterop } = await import('./auth-interop.js');
    if (values['multipath-only']) {
      const mp = await runMultipathInteropCached({ cacheDir: values.cache, log });
      printMultipath(io, mp, values.verbose ?? false);
      io.stdout.write(`total ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
      return mp.passed ? 0 : 1;
    }
    if (values['auth-only']) {
      const auth = await runAuthInterop({ cacheDir: values.cache, log });
      printAuth(io, auth, values.verbose ?? false);
      io.stdout.write(`total ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
      return auth.every((r) => r.passed) ? 0 : 1;
    }
    const results = await runInterop({ cacheDir: values.cache, log });
    for (const r of results) {
      io.stdout.write(`${r.scenario}: ${r.passed ? 'PASS' : 'FAIL'} (${r.seconds.toFixed(0)} s)\n`);
      for (const [s, v] of Object.entries(r.steps)) {
        const t = r.stepSeconds[s];
        io.stdout.write(`  ${s.padEnd(36)} ${v}${t !== undefined ? `  ${t.toFixed(1)} s` : ''}\n`);
      }
      for (const [name, v] of Object.entries(r.checks)) io.stdout.write(`  ${name.padEnd(36)} ${v}\n`);
      if (!r.passed || values.verbose) io.stdout.write(`--- guest console (${r.scenario}) ---\n${r.console.slice(-20000)}\n`);
    }
    const mp = await runMultipathInteropCached({ cacheDir: values.cache, log });
    printMultipath(io, mp, values.verbose ?? false);
    const clientResults = await runClientInterop({ cacheDir: values.cache, log: (s) => io.stderr.write(`${s}\n`) });
    for (const r of clientResults) {
      io.stdout.write(`${r.scenario}: ${r.passed ? 'PASS' : 'FAIL'}\n`);
      for (const [name, v] of Object.entries(r.checks)) io.stdout.write(`  ${name.padEnd(36)} ${v}\n`);
    }
    const auth = await runAuthInterop({ cacheDir: values.cache, log });
    printAuth(io, auth, values.verbose ?? false);
    io.stdout.write(`total ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
    return results.every((r) => r.passed) && mp.passed && clientResults.every((r) => r.passed) && auth.every((r) => r.passed)
      ? 0
      : 1;
  },
};

/** The multipath run on the same 6.1 kernel and initramfs as the initiator runs. */
async function runMultipathInteropCached(options: InteropOptions) {
  const log = options.log ?? (() => {});
  const cacheDir = options.cacheDir ?? join(homedir(), '.cache', 'nearbpf', 'interop');
  const kernel = await prepareKernel(cacheDir, log);
  const initrd = join(cacheDir, 'initrd.gz');
  // Rebuilt every time: the guest's /init is part of the program (a cached one may be stale).
  await buildInitramfs(kernel, initrd);
  const { runMultipathInterop } = await import('./multipath-interop.js');
  log('booting guest (multipath over 2 ports)');
  const r = await runMultipathInterop(kernel, initrd, options);
  log(`${r.scenario}: ${r.passed ? 'PASS' : 'FAIL'} in ${r.seconds.toFixed(0)} s`);
  return r;
}

function printMultipath(
  io: { stdout: { write(s: string): unknown } },
  r: {
    scenario: string;
    passed: boolean;
    seconds: number;
    steps: Record<string, string>;
    stepSeconds: Record<string, number>;
    checks: Record<string, string>;
    console: string;
  },
  verbose: boolean,
): void {
  io.stdout.write(`${r.scenario}: ${r.passed ? 'PASS' : 'FAIL'} (${r.seconds.toFixed(0)} s)\n`);
  for (const [name, v] of Object.entries(r.steps)) {
    const t = r.stepSeconds[name];
    io.stdout.write(`  ${name.padEnd(44)} ${v}${t !== undefined ? `  ${t.toFixed(1)} s` : ''}\n`);
  }
  for (const [name, v] of Object.entries(r.checks)) io.stdout.write(`  ${name.padEnd(44)} ${v}\n`);
  if (!r.passed || verbose) io.stdout.write(`--- guest console (${r.scenario}) ---\n${r.console.slice(-20000)}\n`);
}

function printAuth(
  io: { stdout: { write(s: string): unknown } },
  results: { scenario: string; passed: boolean; seconds: number; checks: Record<string, string>; console: string }[],
  verbose: boolean,
): void {
  for (const r of results) {
    io.stdout.write(`${r.scenario}: ${r.passed ? 'PASS' : 'FAIL'} (${r.seconds.toFixed(0)} s)\n`);
    for (const [name, v] of Object.entries(r.checks)) io.stdout.write(`  ${name.padEnd(52)} ${v}\n`);
    if (!r.passed || verbose) io.stdout.write(`--- guest console (${r.scenario}) ---\n${r.console.slice(-12000)}\n`);
  }
}
