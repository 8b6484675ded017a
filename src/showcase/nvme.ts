/**
 * The showcase over NVMe/TCP: byte-granular readers and writers on top of the block-granular
 * `NvmeTcpHost.read/write`, and an in-process target on 127.0.0.1 with temporary sparse
 * namespaces, for the demo, the benchmark and the tests.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NvmeTcpHost } from '../client/host.js';
import { startTarget, type TargetHandle } from '../target/target.js';
import type { ByteReader, ByteWriter } from './btree.js';

export const SHOWCASE_NQN = 'nqn.2026-11.io.nearbpf:showcase';
/** The host of an in-process session: its own target, so the machine's identity is not needed. */
export const SHOWCASE_HOST_NQN = 'nqn.2026-11.io.nearbpf:showcase-host';

/**
 * Keep-alive timeout of the showcase's hosts: generous, because the benchmarks deliberately keep
 * the target's one thread saturated with executions.
 */
export const SHOWCASE_KATO_MS = 60_000;

/** Largest transfer per command: the controller's MDTS, capped at 1 MiB. */
function maxTransfer(host: NvmeTcpHost, blockSize: number): number {
  const mdts = Math.min(host.controller.maxDataTransferBytes, 1 << 20);
  return Math.max(blockSize, Math.floor(mdts / blockSize) * blockSize);
}

/**
 * A host on the showcase subsystem with the benchmarks' queue shape (one I/O queue, 64 deep, the
 * showcase keep-alive). `hostNqn` names a tenant; `commandTimeoutMs` lengthens the per-command wait
 * (a LOAD completes only once the target has verified the program).
 */
export function connectShowcaseHost(
  target: { readonly host: string; readonly port: number },
  options: { readonly hostNqn?: string; readonly commandTimeoutMs?: number } = {},
): Promise<NvmeTcpHost> {
  return NvmeTcpHost.connect({
    host: target.host,
    port: target.port,
    subsystemNqn: SHOWCASE_NQN,
    ioQueues: 1,
    queueDepth: 64,
    keepAliveTimeoutMs: SHOWCASE_KATO_MS,
    ...options,
  });
}

/**
 * A `ByteReader` over namespace `nsid`: reads the blocks covering [offset, offset + length) (one
 * command per MDTS-sized piece) and returns the bytes asked for.
 */
export function blockReader(host: NvmeTcpHost, nsid: number, blockSize: number): ByteReader {
  const max = maxTransfer(host, blockSize);
  return async (offsetBytes, lengthBytes) => {
    const first = Math.floor(offsetBytes / blockSize);
    const end = Math.ceil((offsetBytes + lengthBytes) / blockSize);
    const skip = offsetBytes - first * blockSize;
    if (end - first <= max / blockSize) {
      const data = await host.read(nsid, first, end - first);
      return data.subarray(skip, skip + lengthBytes);
    }
    const pieces: Promise<Buffer>[] = [];
    for (let lba = first; lba < end; lba += max / blockSize)
      pieces.push(host.read(nsid, lba, Math.min(max / blockSize, end - lba)));
    const all = Buffer.concat(await Promise.all(pieces));
    return all.subarray(skip, skip + lengthBytes);
  };
}

/**
 * A pipelined `ByteWriter` over namespace `nsid`: `write` resolves once the command is queued with
 * fewer than `maxInFlight` outstanding (callers hand over fresh buffers), `drain` waits for all.
 * Writes that do not cover whole blocks become read-modify-write, after draining the queue so they
 * see every earlier write. The first failure is thrown by the next `write` or `drain`.
 */
export function blockWriter(
  host: NvmeTcpHost,
  nsid: number,
  blockSize: number,
  options: { maxInFlight?: number } = {},
): { write: ByteWriter; drain: () => Promise<void> } {
  const max = maxTransfer(host, blockSize);
  const limit = options.maxInFlight ?? 8;
  const inflight = new Set<Promise<void>>();
  let failure: unknown = null;
  const track = (p: Promise<void>) => {
    const q = p.then(
      () => {
        inflight.delete(q);
      },
      (e) => {
        inflight.delete(q);
        failure ??= e;
      },
    );
    inflight.add(q);
  };
  const drain = async () => {
    while (inflight.size > 0) await Promise.all([...inflight]);
    if (failure) throw failure;
  };
  const write: ByteWriter = async (offsetBytes, bytes) => {
    if (failure) throw failure;
    let data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let first = Math.floor(offsetBytes / blockSize);
    if (offsetBytes % blockSize !== 0 || bytes.length % blockSize !== 0) {
      await drain();
      const end = Math.ceil((offsetBytes + bytes.length) / blockSize);
      const merged = Buffer.concat(await readBlocks(host, nsid, first, end - first, max / blockSize));
      merged.set(bytes, offsetBytes - first * blockSize);
      data = merged;
    }
    for (let at = 0; at < data.length; at += max) {
      while (inflight.size >= limit) await Promise.race([...inflight]);
      if (failure) throw failure;
      const piece = data.subarray(at, Math.min(at + max, data.length));
      track(host.write(nsid, first, piece));
      first += piece.length / blockSize;
    }
  };
  return { write, drain };
}

function readBlocks(host: NvmeTcpHost, nsid: number, first: number, blocks: number, maxBlocks: number): Promise<Buffer[]> {
  const pieces: Promise<Buffer>[] = [];
  for (let lba = first; lba < first + blocks; lba += maxBlocks)
    pieces.push(host.read(nsid, lba, Math.min(maxBlocks, first + blocks - lba)));
  return Promise.all(pieces);
}

export interface ShowcaseNamespace {
  nsid: number;
  sizeBytes: number;
}

export interface LoopbackSession {
  readonly target: TargetHandle;
  readonly host: NvmeTcpHost;
  readonly blockSize: number;
  readonly dir: string;
  /** Disconnect the host, stop the target and delete the namespace files. */
  close(): Promise<void>;
}

/**
 * Start a target on 127.0.0.1 (ephemeral port) with sparse-file namespaces of 512-byte blocks in a
 * temporary directory, and connect a host to it.
 */
export async function startLoopbackSession(options: {
  namespaces: readonly ShowcaseNamespace[];
  ioQueues?: number;
  queueDepth?: number;
  listenHost?: string;
  /** Per-tenant storage-function limits replacing the showcase's defaults (budgets, slots). */
  programDefaults?: Record<string, number>;
  /** The target's `programs.executionWorkers` (default: its own, one per core beyond the first). */
  executionWorkers?: number;
}): Promise<LoopbackSession> {
  const blockSize = 512;
  const dir = await mkdtemp(join(tmpdir(), 'nearbpf-showcase-'));
  let target: TargetHandle | undefined;
  try {
    const config = targetConfig(dir, options.namespaces, options.listenHost ?? '127.0.0.1', 0, options.programDefaults) as {
      programs: Record<string, unknown>;
    };
    if (options.executionWorkers !== undefined) config.programs.executionWorkers = options.executionWorkers;
    target = await startTarget({ config });
    const host = await NvmeTcpHost.connect({
      host: '127.0.0.1',
      port: target.address.port,
      subsystemNqn: SHOWCASE_NQN,
      hostNqn: SHOWCASE_HOST_NQN,
      ioQueues: options.ioQueues ?? 1,
      queueDepth: options.queueDepth ?? 64,
      keepAliveTimeoutMs: SHOWCASE_KATO_MS,
      // A LOAD completes when the target has verified the program, which it allows up to its
      // verifyTimeoutMs (60 s by default): wait longer than that, not the default 30 s.
      commandTimeoutMs: 120_000,
    });
    const handle = target;
    return {
      target: handle,
      host,
      blockSize,
      dir,
      close: async () => {
        try {
          await host.close().catch(() => host.disconnect());
        } finally {
          await handle.close();
          await rm(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (e) {
    await target?.close();
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

/** The target configuration of the showcase: one subsystem open to any host, 512-byte-block sparse files. */
export function targetConfig(
  dir: string,
  namespaces: readonly ShowcaseNamespace[],
  host: string,
  port: number,
  programDefaults: Record<string, number> = { maxConcurrentExecutions: 32 },
  /** More fields of the `programs` section (execution workers, their priority). */
  programs: Record<string, unknown> = {},
): object {
  return {
    listen: { host, port },
    dataDir: dir,
    limits: { maxQueueDepth: 128 },
    // The throughput runs keep up to 32 executions of one program in flight.
    programs: { ...programs, defaults: programDefaults },
    subsystems: [
      {
        nqn: SHOWCASE_NQN,
        hosts: [{ nqn: '*', access: 'read-write' }],
        namespaces: namespaces.map((n) => ({
          nsid: n.nsid,
          path: `showcase-ns${n.nsid}.img`,
          sizeBytes: Math.ceil(n.sizeBytes / 4096) * 4096,
          blockSize: 512,
        })),
      },
    ],
  };
}
