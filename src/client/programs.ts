/**
 * Storage functions from the host side: load a program (ELF object or bytecode) into the target,
 * execute it next to a namespace, list and unload programs. Speaks the vendor commands of
 * src/protocol/programs.ts over an `NvmeTcpHost`.
 */
import { NearbpfError } from '../errors.js';
import { NvmeStatusError } from '../protocol/errors.js';
import {
  decodeMapDump,
  decodeMapList,
  decodeProgramList,
  decodeStatsTrailer,
  EXECUTE_FLAG_SCAN,
  EXECUTE_FLAG_STATS,
  type ExecutionStatsTrailer,
  encodeLoadImage,
  MAP_INDEX_LIST,
  MAP_UPDATE_DELETE,
  type MapInfo,
  MESSAGE_KIND_COMMAND,
  MESSAGE_KIND_LOAD,
  PROGRAM_STATUS_NAMES,
  type ProgramListEntry,
  ProgramOpcode,
  STATS_TRAILER_BYTES,
  VENDOR_STATUS_CODE_TYPE,
} from '../protocol/programs.js';
import { makeSqe } from '../protocol/sqe.js';
import type { NvmeTcpHost } from './host.js';

const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46];
/** Bytes of a load image sent per LOAD_PROGRAM command (within the admin queue's in-capsule size). */
const LOAD_CHUNK_BYTES = 8192;
const LIST_BYTES = 64 * 1024;
const MESSAGE_BYTES = 256 * 1024;
/** Output accepted by default: with the statistics trailer, within the smallest MDTS we advertise. */
export const DEFAULT_MAX_OUTPUT_BYTES = 256 * 1024 - 32;

/** A program command failed on the target; `message` and `log` come from the target. */
export class ProgramCommandError extends NearbpfError {
  readonly code = 'ERR_PROGRAM_COMMAND';
  constructor(
    /** Name of the vendor status (e.g. `Rejected`, `BudgetSteps`). */
    readonly status: string,
    readonly statusCode: number,
    message: string,
    /** The target's error code (e.g. `ERR_VERIFIER_REJECTED`). */
    readonly targetCode?: string,
    /** The verifier log, for a rejected load. */
    readonly log?: string,
    /** The instruction the failure refers to, when there is one. */
    readonly pc?: number,
  ) {
    super(message);
  }
}

export interface LoadOptions {
  /** Name of the program on the target (unique per host). */
  readonly name: string;
  /** Program of an ELF object with several (default: the first). */
  readonly objectProgram?: string;
}

export interface ExecuteOptions {
  readonly nsid: number;
  readonly params?: readonly [bigint, bigint];
  /** Parameter blob (up to 4 KiB); sent in the command capsule. */
  readonly input?: Uint8Array;
  /** Scan mode over blocks [startLba, startLba + blocks). */
  readonly scan?: { readonly startLba: number; readonly blocks: number };
  /** Largest output accepted. */
  readonly maxOutputBytes?: number;
  readonly qid?: number;
}

export interface ExecuteResult {
  readonly returnValue: bigint;
  readonly output: Buffer;
  readonly stats: ExecutionStatsTrailer;
}

let nextLoadId = (Date.now() & 0xffff) << 8;

export class ProgramClient {
  constructor(readonly host: NvmeTcpHost) {}

  /** Load and verify a program; resolves with its handle, or rejects with the verifier's log. */
  async load(program: Uint8Array, options: LoadOptions): Promise<number> {
    const isElf = ELF_MAGIC.every((b, i) => program[i] === b);
    const image = encodeLoadImage(
      { format: isElf ? 'elf' : 'bytecode', name: options.name, objectProgram: options.objectProgram ?? '' },
      program,
    );
    const loadId = (nextLoadId = (nextLoadId + 1) >>> 0);
    let handle = 0;
    for (let offset = 0; offset < image.length; offset += LOAD_CHUNK_BYTES) {
      const chunk = image.subarray(offset, Math.min(offset + LOAD_CHUNK_BYTES, image.length));
      const sqe = makeSqe({ opcode: ProgramOpcode.Load, cdw10: offset, cdw11: image.length, cdw12: loadId });
      try {
        const r = await this.host.adminCommand(sqe, { dataOut: chunk });
        handle = r.cqe.dw0 >>> 0;
      } catch (e) {
        throw await this.explain(e, MESSAGE_KIND_LOAD, loadId);
      }
    }
    return handle;
  }

  async unload(handle: number): Promise<void> {
    try {
      await this.host.adminCommand(makeSqe({ opcode: ProgramOpcode.Unload, cdw10: handle }));
    } catch (e) {
      throw await this.explain(e);
    }
  }

  async list(): Promise<ProgramListEntry[]> {
    const r = await this.host.adminCommand(makeSqe({ opcode: ProgramOpcode.List }), { dataInBytes: LIST_BYTES });
    return decodeProgramList(r.data ?? Buffer.alloc(0));
  }

  /** Handle of the program named `name`, or undefined. */
  async find(name: string): Promise<number | undefined> {
    return (await this.list()).find((p) => p.name === name)?.handle;
  }

  async execute(handle: number, options: ExecuteOptions): Promise<ExecuteResult> {
    const [p0, p1] = options.params ?? [0n, 0n];
    const u0 = BigInt.asUintN(64, p0);
    const u1 = BigInt.asUintN(64, p1);
    const input = options.input && options.input.length > 0 ? Buffer.from(options.input) : undefined;
    const sqe = makeSqe({
      opcode: input ? ProgramOpcode.ExecuteWithInput : ProgramOpcode.Execute,
      nsid: options.nsid,
      cdw2: Number(u0 & 0xffffffffn),
      cdw3: Number(u0 >> 32n),
      cdw10: Number(u1 & 0xffffffffn),
      cdw11: Number(u1 >> 32n),
      cdw12: handle,
      cdw13: EXECUTE_FLAG_STATS | (options.scan ? EXECUTE_FLAG_SCAN : 0),
      cdw14: options.scan?.startLba ?? 0,
      cdw15: options.scan?.blocks ?? 0,
    });
    const maxOutput = (options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES) + STATS_TRAILER_BYTES;
    let r: Awaited<ReturnType<NvmeTcpHost['ioCommand']>>;
    try {
      r = await this.host.ioCommand(sqe, { dataOut: input, dataInBytes: maxOutput, variableDataIn: true }, options.qid);
    } catch (e) {
      throw await this.explain(e, MESSAGE_KIND_COMMAND);
    }
    const data = r.data ?? Buffer.alloc(0);
    if (data.length < STATS_TRAILER_BYTES) throw new ProgramCommandError('Truncated', 0, 'execution result lacks its statistics');
    const cut = data.length - STATS_TRAILER_BYTES;
    return {
      returnValue: (BigInt(r.cqe.dw1 >>> 0) << 32n) | BigInt(r.cqe.dw0 >>> 0),
      output: data.subarray(0, cut),
      stats: decodeStatsTrailer(data.subarray(cut)),
    };
  }

  /** The maps of a loaded program (name, kind, sizes); their index is their position. */
  async maps(handle: number): Promise<MapInfo[]> {
    const r = await this.mapCommand(makeSqe({ opcode: ProgramOpcode.MapDump, cdw10: handle, cdw11: MAP_INDEX_LIST }), {
      dataInBytes: LIST_BYTES,
      variableDataIn: true,
    });
    return decodeMapList(r.data ?? Buffer.alloc(0));
  }

  /** Every entry of map `index` of a program (bounded by the target's transfer size). */
  async mapEntries(handle: number, index: number, maxBytes = 1024 * 1024): Promise<{ key: Buffer; value: Buffer }[]> {
    const r = await this.mapCommand(makeSqe({ opcode: ProgramOpcode.MapDump, cdw10: handle, cdw11: index }), {
      dataInBytes: maxBytes,
      variableDataIn: true,
    });
    return decodeMapDump(r.data ?? Buffer.alloc(0));
  }

  /** Create or replace an entry (`flags`: 0 any, 1 only if absent, 2 only if present). */
  async mapUpdate(handle: number, index: number, key: Uint8Array, value: Uint8Array, flags = 0): Promise<void> {
    const data = Buffer.concat([key, value]);
    await this.mapCommand(makeSqe({ opcode: ProgramOpcode.MapUpdate, cdw10: handle, cdw11: index, cdw12: flags }), {
      dataOut: data,
    });
  }

  async mapDelete(handle: number, index: number, key: Uint8Array): Promise<void> {
    await this.mapCommand(makeSqe({ opcode: ProgramOpcode.MapUpdate, cdw10: handle, cdw11: index, cdw13: MAP_UPDATE_DELETE }), {
      dataOut: Buffer.from(key),
    });
  }

  private async mapCommand(sqe: ReturnType<typeof makeSqe>, io: Parameters<NvmeTcpHost['adminCommand']>[1]) {
    try {
      return await this.host.adminCommand(sqe, io);
    } catch (e) {
      throw await this.explain(e);
    }
  }

  /** Turn a vendor NVMe status into a `ProgramCommandError` carrying the target's message. */
  private async explain(e: unknown, kind?: number, loadId?: number): Promise<unknown> {
    if (!(e instanceof NvmeStatusError) || e.sct !== VENDOR_STATUS_CODE_TYPE) return e;
    const status = PROGRAM_STATUS_NAMES[e.sc] ?? `0x${e.sc.toString(16)}`;
    let detail: { code?: string; message?: string; log?: string } = {};
    if (kind !== undefined) {
      const cdw11 = kind === MESSAGE_KIND_LOAD ? (loadId ?? 0) : (e.qid ?? 0);
      const cdw12 = kind === MESSAGE_KIND_COMMAND ? (e.cid ?? 0) : 0;
      try {
        const r = await this.host.adminCommand(makeSqe({ opcode: ProgramOpcode.GetMessage, cdw10: kind, cdw11, cdw12 }), {
          dataInBytes: MESSAGE_BYTES,
          variableDataIn: true,
        });
        detail = JSON.parse((r.data ?? Buffer.alloc(0)).toString('utf8'));
      } catch {
        // No message kept (or none fetched): the status alone must do.
      }
    }
    const pc = e.sc === 0x01 || e.sc >= 0x20 ? e.dw0 : undefined;
    return new ProgramCommandError(
      status,
      e.sc,
      detail.message ?? `program command failed: ${status}`,
      detail.code,
      detail.log,
      pc,
    );
  }
}
