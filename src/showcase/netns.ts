/**
 * `bench-pushdown --netns`: the target and the client in two private Linux network namespaces
 * joined by a veth pair (10.77.0.1 target, 10.77.0.2 client, nothing routed anywhere else), with
 * `tc netem` delay on both ends for a chosen round-trip time. The target is `nearbpf serve` under
 * `ip netns exec`, the client is `nearbpf bench-pushdown --role client` under `ip netns exec`,
 * printing its figures as JSON. Needs root and iproute2; the namespaces are always deleted.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../testing/conformance-data.js';
import { type BenchPlan, benchNamespaces, type ClientFigures, spawnTarget, type TargetProcess } from './bench.js';
import { type ProgressStream, say } from './report.js';

const run = promisify(execFile);

export const TARGET_ADDRESS = '10.77.0.1';
export const CLIENT_ADDRESS = '10.77.0.2';
export const NETNS_PORT = 4420;
/** Round-trip times measured (µs); 0 = the veth pair without netem. */
export const RTTS_US = [0, 25, 100, 500] as const;

export interface RttFigure {
  rttUs: number;
  figures: ClientFigures;
}

/** Why the netns benchmark cannot run here, or null when it can. */
export async function netnsUnavailable(): Promise<string | null> {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  for (const [tool, args] of [
    ['ip', ['-V']],
    ['tc', ['-V']],
  ] as const) {
    try {
      await run(tool, [...args]);
    } catch {
      return `'${tool}' (iproute2) is not available`;
    }
  }
  const probe = `nbpf-probe-${process.pid}`;
  try {
    await run('ip', ['netns', 'add', probe]);
  } catch (e) {
    return `cannot create a network namespace: ${(e as { stderr?: string }).stderr?.trim() || (e as Error).message}`;
  }
  try {
    await run('ip', ['-n', probe, 'link', 'set', 'lo', 'up']);
    await run('tc', ['-n', probe, 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '10us']);
  } catch (e) {
    const why = (e as { stderr?: string }).stderr?.trim() || (e as Error).message;
    return `tc netem does not work here (${why}; the kernel lacks sch_netem?)`;
  } finally {
    await run('ip', ['netns', 'del', probe]).catch(() => {});
  }
  return null;
}

const ip = (...args: string[]) => run('ip', args);
const tc = (...args: string[]) => run('tc', args);

/** Run the client under `ip netns exec`; resolves with the JSON it prints. */
function clientInNetns(ns: string, args: readonly string[], err: ProgressStream): Promise<ClientFigures> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns,
        process.execPath,
        join(REPO_ROOT, 'bin', 'nearbpf.js'),
        'bench-pushdown',
        '--role',
        'client',
        ...args,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString('utf8');
    });
    child.stderr.on('data', (c: Buffer) => {
      err.write(c.toString('utf8'));
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`client in ${ns} exited with ${code}`));
      try {
        resolve(JSON.parse(out) as ClientFigures);
      } catch (e) {
        reject(new Error(`client printed no JSON: ${(e as Error).message}`));
      }
    });
  });
}

/** Measure at each RTT; the namespaces, the veth pair and the target process are removed at the end. */
export async function benchNetns(plan: BenchPlan, err: ProgressStream, rtts: readonly number[] = RTTS_US): Promise<RttFigure[]> {
  const tag = String(process.pid % 100_000);
  const nsT = `nbpf-t-${tag}`;
  const nsC = `nbpf-c-${tag}`;
  const vethT = `nbt${tag}`;
  const vethC = `nbc${tag}`;
  const dir = await mkdtemp(join(tmpdir(), 'nearbpf-netns-'));
  let target: TargetProcess | undefined;
  const results: RttFigure[] = [];
  try {
    await ip('netns', 'add', nsT);
    await ip('netns', 'add', nsC);
    await ip('link', 'add', vethT, 'type', 'veth', 'peer', 'name', vethC);
    await ip('link', 'set', vethT, 'netns', nsT);
    await ip('link', 'set', vethC, 'netns', nsC);
    await ip('-n', nsT, 'addr', 'add', `${TARGET_ADDRESS}/24`, 'dev', vethT);
    await ip('-n', nsC, 'addr', 'add', `${CLIENT_ADDRESS}/24`, 'dev', vethC);
    for (const [ns, dev] of [
      [nsT, vethT],
      [nsC, vethC],
    ]) {
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
      await ip('-n', ns, 'link', 'set', dev, 'up');
    }
    say(err, `namespaces ${nsT} (${TARGET_ADDRESS}) and ${nsC} (${CLIENT_ADDRESS}) joined by ${vethT}/${vethC}`);
    target = await spawnTarget(dir, benchNamespaces(plan), { host: TARGET_ADDRESS, port: NETNS_PORT }, [
      'ip',
      'netns',
      'exec',
      nsT,
    ]);
    const common = ['--connect', `${TARGET_ADDRESS}:${NETNS_PORT}`, '--profile', 'rtt', ...(plan.quick ? ['--quick'] : [])];
    let built = false;
    for (const rtt of rtts) {
      for (const [ns, dev] of [
        [nsT, vethT],
        [nsC, vethC],
      ]) {
        if (rtt > 0) await tc('-n', ns, 'qdisc', 'replace', 'dev', dev, 'root', 'netem', 'delay', `${rtt / 2}us`);
        else await tc('-n', ns, 'qdisc', 'del', 'dev', dev, 'root').catch(() => {});
      }
      say(err, `RTT ${rtt} us (netem ${rtt / 2} us each way)${built ? '' : '; building the data first'}`);
      const figures = await clientInNetns(nsC, [...common, ...(built ? [] : ['--build'])], err);
      built = true;
      results.push({ rttUs: rtt, figures });
    }
    return results;
  } finally {
    await target?.stop().catch(() => {});
    await ip('netns', 'del', nsC).catch(() => {});
    await ip('netns', 'del', nsT).catch(() => {});
    await ip('link', 'del', vethT).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}
