/**
 * NVM command set I/O commands against a namespace: Read, Write (FUA), Flush, Write Zeroes and Dataset
 * Management (deallocate = write zeros, see namespace.ts). Every LBA range is checked (LBA Out of Range),
 * every transfer against MDTS; writes from read-only hosts fail with Namespace Is Write Protected.
 */

import { BufferPool } from '../protocol/buffer-pool.js';
import {
  DSM_DEALLOCATE,
  DSM_RANGE_BYTES,
  GenericStatus,
  IoOpcode,
  MediaErrorStatus,
  RW_FUA,
  StatusCodeType,
} from '../protocol/constants.js';
import { type Sqe, sqeNlb, sqeSlba } from '../protocol/sqe.js';
import {
  type Completion,
  failure,
  generic,
  INVALID_FIELD,
  INVALID_NAMESPACE,
  INVALID_OPCODE,
  LBA_OUT_OF_RANGE,
  success,
} from './completion.js';
import type { IoStats } from './identify.js';
import type { Namespace } from './namespace.js';

export interface IoContext {
  namespaces: ReadonlyMap<number, Namespace>;
  readOnly: boolean;
  maxDataTransferBytes: number;
  maxDeallocateRangeBytes: number;
  /** The subsystem's counters (SMART log). */
  stats: IoStats;
  /** The counters of the port the association lives on. */
  portStats: IoStats;
}

const ALL_NAMESPACES = 0xffffffff;
const WRITE_PROTECTED = generic(GenericStatus.NamespaceWriteProtected);
const DATA_SGL_LENGTH_INVALID = generic(GenericStatus.DataSglLengthInvalid);
const SUCCESS = success();

/** Data buffers of reads that missed the cache and of R2T transfers, shared by every connection. */
export const ioBuffers = new BufferPool();
const releaseIoBuffer = (buf: Buffer) => ioBuffers.give(buf);

/** How an I/O command that could not complete at once reports its completion. */
export type IoCompletion<T> = (token: T, c: Completion) => void;

/**
 * Execute an NVM I/O command. Returns the completion when it is known at once (a read served from
 * the page cache, whose `data` is then a view valid only until the caller returns to the event
 * loop, or an error), else null and `done(token, completion)` runs later. No promise, timer or
 * closure on the path of a cache hit.
 */
export function executeIo<T>(ctx: IoContext, sqe: Sqe, data: Buffer | null, done: IoCompletion<T>, token: T): Completion | null {
  if (sqe.opcode === IoOpcode.Flush) return later(flush(ctx, sqe.nsid), done, token);
  const ns = ctx.namespaces.get(sqe.nsid);
  switch (sqe.opcode) {
    case IoOpcode.Read:
    case IoOpcode.Write:
    case IoOpcode.WriteZeroes:
    case IoOpcode.DatasetManagement:
      break;
    default:
      return INVALID_OPCODE;
  }
  if (!ns) return INVALID_NAMESPACE;
  if (sqe.opcode === IoOpcode.DatasetManagement) return later(datasetManagement(ctx, ns, sqe, data), done, token);
  const slba = sqeSlba(sqe);
  const nlb = sqeNlb(sqe);
  if (slba + nlb > ns.blockCount) return LBA_OUT_OF_RANGE;
  const offset = slba * ns.blockSize;
  const bytes = nlb * ns.blockSize;
  switch (sqe.opcode) {
    case IoOpcode.Read: {
      if (bytes > ctx.maxDataTransferBytes) return INVALID_FIELD;
      if (sqe.sglLength < bytes) return DATA_SGL_LENGTH_INVALID;
      ctx.stats.readCommands++;
      ctx.stats.bytesRead += bytes;
      ctx.portStats.readCommands++;
      ctx.portStats.bytesRead += bytes;
      const view = ns.cachedView(offset, bytes);
      if (view !== undefined) return success(0, view);
      const op: PendingRead<T> = { dest: ioBuffers.take(bytes), done, token };
      ns.readInto(offset, op.dest, readDone, op as PendingRead<unknown>);
      return null;
    }
    case IoOpcode.Write: {
      if (ctx.readOnly) return WRITE_PROTECTED;
      if (bytes > ctx.maxDataTransferBytes) return INVALID_FIELD;
      if (!data || data.length < bytes) return DATA_SGL_LENGTH_INVALID;
      const op: PendingWrite<T> = {
        ns,
        stats: ctx.stats,
        portStats: ctx.portStats,
        bytes,
        fua: (sqe.cdw12 & RW_FUA) !== 0,
        done,
        token,
      };
      ns.writeFrom(offset, data.length === bytes ? data : data.subarray(0, bytes), writeDone, op as PendingWrite<unknown>);
      return null;
    }
    default: {
      if (ctx.readOnly) return WRITE_PROTECTED;
      // Write Zeroes: bounded by NLB (65536 blocks); written in 1 MiB pieces from one shared zero buffer.
      const op: PendingWrite<T> = {
        ns,
        stats: ctx.stats,
        portStats: ctx.portStats,
        bytes: 0,
        fua: (sqe.cdw12 & RW_FUA) !== 0,
        done,
        token,
      };
      ns.writeZeroesThen(offset, bytes, writeDone, op as PendingWrite<unknown>);
      return null;
    }
  }
}

interface PendingRead<T> {
  dest: Buffer;
  done: IoCompletion<T>;
  token: T;
}

function readDone(op: PendingRead<unknown>, e: NodeJS.ErrnoException | null): void {
  if (e !== null) {
    ioBuffers.give(op.dest);
    op.done(op.token, mediaError(true, e));
    return;
  }
  const c = success(0, op.dest);
  c.dataRelease = releaseIoBuffer;
  op.done(op.token, c);
}

interface PendingWrite<T> {
  ns: Namespace;
  stats: IoStats;
  portStats: IoStats;
  /** Bytes written counted in the SMART log (0 for write zeroes). */
  bytes: number;
  fua: boolean;
  done: IoCompletion<T>;
  token: T;
}

function writeDone(op: PendingWrite<unknown>, e: NodeJS.ErrnoException | null): void {
  if (e !== null) {
    op.done(op.token, mediaError(false, e));
    return;
  }
  if (op.fua) {
    // FUA: durable before the completion.
    op.fua = false;
    op.ns.flush().then(
      () => writeDone(op, null),
      (err: NodeJS.ErrnoException) => writeDone(op, err),
    );
    return;
  }
  op.stats.writeCommands++;
  op.stats.bytesWritten += op.bytes;
  op.portStats.writeCommands++;
  op.portStats.bytesWritten += op.bytes;
  op.done(op.token, SUCCESS);
}

function later<T>(p: Promise<Completion>, done: IoCompletion<T>, token: T): null {
  p.then((c) => done(token, c));
  return null;
}

async function flush(ctx: IoContext, nsid: number): Promise<Completion> {
  try {
    if (nsid === ALL_NAMESPACES) {
      await Promise.all([...ctx.namespaces.values()].map((ns) => ns.flush()));
      return success();
    }
    const ns = ctx.namespaces.get(nsid);
    if (!ns) return INVALID_NAMESPACE;
    await ns.flush();
    return success();
  } catch (e) {
    return mediaError(false, e);
  }
}

async function datasetManagement(ctx: IoContext, ns: Namespace, sqe: Sqe, data: Buffer | null): Promise<Completion> {
  const ranges = (sqe.cdw10 & 0xff) + 1;
  if (!data || data.length < ranges * DSM_RANGE_BYTES) return DATA_SGL_LENGTH_INVALID;
  // Attributes other than deallocate are hints we may ignore.
  if ((sqe.cdw11 & DSM_DEALLOCATE) === 0) return success();
  if (ctx.readOnly) return WRITE_PROTECTED;
  const maxBlocks = Math.floor(ctx.maxDeallocateRangeBytes / ns.blockSize);
  const todo: [number, number][] = [];
  for (let i = 0; i < ranges; i++) {
    const at = i * DSM_RANGE_BYTES;
    const nlb = data.readUInt32LE(at + 4);
    const slba = data.readUInt32LE(at + 8) + data.readUInt32LE(at + 12) * 0x1_0000_0000;
    if (nlb === 0) continue;
    if (slba + nlb > ns.blockCount) return LBA_OUT_OF_RANGE;
    if (nlb > maxBlocks) return INVALID_FIELD;
    todo.push([slba * ns.blockSize, nlb * ns.blockSize]);
  }
  try {
    for (const [offset, bytes] of todo) await ns.writeZeroes(offset, bytes);
    return success();
  } catch (e) {
    return mediaError(false, e);
  }
}

function mediaError(read: boolean, e: unknown): Completion {
  const code = (e as NodeJS.ErrnoException)?.code;
  const c =
    code === 'EIO' || code === 'ENOSPC' || code === 'EROFS' || code === 'EDQUOT'
      ? failure(StatusCodeType.MediaError, read ? MediaErrorStatus.UnrecoveredReadError : MediaErrorStatus.WriteFault, false)
      : generic(GenericStatus.InternalError, false);
  c.error = e instanceof Error ? e.message : String(e);
  return c;
}
