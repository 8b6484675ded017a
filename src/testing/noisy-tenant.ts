/**
 * A noisy tenant in a client process of its own, for fairness tests and benchmarks.
 *
 * When one client process ran both tenants, the victim's latency included that process's own work
 * on the noisy tenant's completions (one event loop for both), so a fairness figure measured the
 * client as much as the target. Here the noisy tenant is a forked Node process: it connects with its
 * own host NQN, loads its program, and keeps `outstanding` executions of it in flight between
 * `run()` and `pause()`, checking every result. The parent only sends start and stop.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { NvmeTcpHost } from '../client/host.js';
import { ProgramClient } from '../client/programs.js';

export interface NoisyTenantSpec {
  readonly host: string;
  readonly port: number;
  readonly subsystemNqn: string;
  readonly hostNqn: string;
  /** The program: bytecode or an ELF object (`objectProgram` names the function in it). */
  readonly image: Uint8Array;
  readonly name: string;
  readonly objectProgram?: string;
  readonly nsid: number;
  readonly params: readonly [bigint, bigint];
  /** Inputs taken in turn by the executions (none: executions without input). */
  readonly inputs?: readonly Uint8Array[];
  readonly maxOutputBytes?: number;
  /** Executions kept in flight while running (1-256). */
  readonly outstanding: number;
  /** Every execution must return this (the noise is real work, not errors). */
  readonly expectReturn?: bigint;
  readonly ioQueues?: number;
}

type ToChild = { t: 'spec'; spec: NoisyTenantSpec } | { t: 'start' } | { t: 'stop' } | { t: 'close' };
type FromChild =
  | { t: 'ready' }
  | { t: 'running' }
  | { t: 'stopped'; executions: number; cpuUs: number }
  | { t: 'failed'; message: string };

const CHILD_FLAG = '--nearbpf-noisy-tenant';
const START_TIMEOUT_MS = 30_000;

export interface NoisyPause {
  /** Executions completed since `run()`. */
  readonly executions: number;
  /** CPU time of the noisy client process meanwhile (user + system). */
  readonly cpuUs: number;
}

export class NoisyTenant {
  private waiting: { expect: FromChild['t']; resolve: (m: FromChild) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (m: FromChild) => {
      if (m.t === 'failed') return this.fail(new Error(`noisy tenant: ${m.message}`));
      const w = this.waiting;
      if (w !== undefined && w.expect === m.t) {
        this.waiting = undefined;
        w.resolve(m);
      }
    });
    child.on('exit', (code, signal) => this.fail(new Error(`noisy tenant exited (${code ?? signal})`)));
    child.on('error', (e) => this.fail(e));
  }

  /** Fork the process, connect it and load its program. */
  static async start(spec: NoisyTenantSpec): Promise<NoisyTenant> {
    if (!Number.isInteger(spec.outstanding) || spec.outstanding < 1 || spec.outstanding > 256)
      throw new RangeError(`outstanding executions are 1-256, got ${spec.outstanding}`);
    const child = fork(new URL(import.meta.url), [CHILD_FLAG], { serialization: 'advanced', stdio: 'inherit' });
    const noisy = new NoisyTenant(child);
    const timer = setTimeout(() => noisy.fail(new Error('noisy tenant did not start in 30 s')), START_TIMEOUT_MS);
    try {
      await noisy.request({ t: 'spec', spec }, 'ready');
    } catch (e) {
      child.kill('SIGKILL');
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return noisy;
  }

  /** Start the executions; resolves when the first has completed (the noise is on). */
  async run(): Promise<void> {
    await this.request({ t: 'start' }, 'running');
  }

  /** Stop starting executions; resolves when those in flight have completed. */
  async pause(): Promise<NoisyPause> {
    const m = await this.request({ t: 'stop' }, 'stopped');
    return m.t === 'stopped' ? { executions: m.executions, cpuUs: m.cpuUs } : { executions: 0, cpuUs: 0 };
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.failure ??= new Error('noisy tenant closed');
    this.child.send({ t: 'close' } satisfies ToChild);
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  }

  private request(m: ToChild, expect: FromChild['t']): Promise<FromChild> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting = { expect, resolve, reject };
      this.child.send(m);
    });
  }

  private fail(e: Error): void {
    if (this.failure === undefined) this.failure = e;
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(e);
  }
}

/** The child's side. */
async function runChild(): Promise<void> {
  const send = (m: FromChild) => process.send?.(m);
  let host: NvmeTcpHost | undefined;
  let programs: ProgramClient | undefined;
  let handle = 0;
  let spec: NoisyTenantSpec | undefined;
  let stopping = false;
  let running: Promise<void>[] = [];
  let executions = 0;
  let cpu0 = process.cpuUsage();
  let nextInput = 0;

  const once = async (): Promise<void> => {
    const s = spec as NoisyTenantSpec;
    const input = s.inputs === undefined || s.inputs.length === 0 ? undefined : s.inputs[nextInput++ % s.inputs.length];
    const r = await (programs as ProgramClient).execute(handle, {
      nsid: s.nsid,
      params: [s.params[0], s.params[1]],
      input,
      maxOutputBytes: s.maxOutputBytes,
    });
    if (s.expectReturn !== undefined && r.returnValue !== s.expectReturn)
      throw new Error(`${s.name} returned ${r.returnValue}, not ${s.expectReturn}`);
    executions++;
  };
  const failed = (e: unknown) => {
    send({ t: 'failed', message: e instanceof Error ? e.message : String(e) });
    process.exit(1);
  };

  process.on('message', (m: ToChild) => {
    switch (m.t) {
      case 'spec':
        spec = m.spec;
        (async () => {
          const s = m.spec;
          host = await NvmeTcpHost.connect({
            host: s.host,
            port: s.port,
            subsystemNqn: s.subsystemNqn,
            hostNqn: s.hostNqn,
            ioQueues: s.ioQueues ?? 1,
            queueDepth: Math.max(32, s.outstanding + 2),
          });
          programs = new ProgramClient(host);
          handle = await programs.load(s.image, { name: s.name, objectProgram: s.objectProgram });
          await once();
          send({ t: 'ready' });
        })().catch(failed);
        return;
      case 'start': {
        stopping = false;
        executions = 0;
        cpu0 = process.cpuUsage();
        let announced = false;
        const s = spec as NoisyTenantSpec;
        running = Array.from({ length: s.outstanding }, async () => {
          while (!stopping) {
            await once();
            if (!announced) {
              announced = true;
              send({ t: 'running' });
            }
          }
        });
        for (const r of running) r.catch(failed);
        return;
      }
      case 'stop':
        stopping = true;
        Promise.all(running)
          .then(() => {
            const cpu = process.cpuUsage(cpu0);
            send({ t: 'stopped', executions, cpuUs: cpu.user + cpu.system });
          })
          .catch(failed);
        return;
      case 'close':
        stopping = true;
        Promise.allSettled(running)
          .then(() => host?.close())
          .finally(() => process.exit(0));
        return;
    }
  });
}

if (process.argv.includes(CHILD_FLAG) && process.send !== undefined) {
  runChild().catch((e) => {
    process.send?.({ t: 'failed', message: String(e) } satisfies FromChild);
    process.exit(1);
  });
}
