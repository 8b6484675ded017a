/**
 * Vendor-specific NVMe commands that load and run storage functions, shaped after the NVMe
 * Computational Programs command set (TP4091: Load Program, Program Activation, Execute Program with
 * two 64-bit parameters and a 64-bit result). Opcode bits 1:0 give the data direction, so every
 * command below except EXECUTE_WITH_INPUT works through Linux `nvme admin-passthru` / `io-passthru`.
 *
 * Admin queue
 *   0xC1 LOAD_PROGRAM (host to target): one chunk of a load image.
 *        CDW10 = byte offset of the chunk, CDW11 = image size in bytes, CDW12 = load id (chosen by
 *        the host; chunks of one image share it). The last chunk completes the load: DW0 = handle.
 *   0xC4 UNLOAD_PROGRAM (no data): CDW10 = handle.
 *   0xC2 LIST_PROGRAMS (target to host): a list header, then one entry per program (see below).
 *   0xC6 GET_MESSAGE (target to host): the message of a failed command, UTF-8 JSON
 *        `{ code, message, log? }`. CDW10 = 0: of the load with load id CDW11; CDW10 = 1: of the
 *        command with CID CDW12 on queue CDW11 (kept for the last MESSAGE_HISTORY failures).
 *   0xC9 MAP_UPDATE (host to target): CDW10 = handle, CDW11 = map index, CDW12 = flags (0 any,
 *        1 only if absent, 2 only if present), CDW13 bit 0 = delete; data = key then value (key only
 *        to delete).
 *   0xCA MAP_DUMP (target to host): CDW10 = handle, CDW11 = map index, or MAP_INDEX_LIST for the
 *        list of the program's maps. See `encodeMapDump` / `encodeMapList`.
 * I/O queues (NSID = the namespace the program reads)
 *   0x82 EXECUTE (target to host): output bytes as read data; DW0/DW1 = the 64-bit return value.
 *        CDW2-3 = param0, CDW10-11 = param1 (low dword first), CDW12 = handle, CDW13 = flags
 *        (bit 0: scan mode; bit 1: append a 32-byte statistics trailer to the output), CDW14 = scan
 *        start LBA, CDW15 = scan length in blocks.
 *   0x83 EXECUTE_WITH_INPUT (both directions): as EXECUTE, plus an input blob sent as in-capsule
 *        data. nearbpf's own host library only: Linux passthrough cannot send bidirectional commands.
 * Failures use the vendor-specific status code type (7) and the codes of `ProgramStatus`.
 */

export const ProgramOpcode = {
  Load: 0xc1,
  List: 0xc2,
  Unload: 0xc4,
  GetMessage: 0xc6,
  MapUpdate: 0xc9,
  MapDump: 0xca,
  Execute: 0x82,
  ExecuteWithInput: 0x83,
} as const;

export const VENDOR_STATUS_CODE_TYPE = 7;

/** Status codes (SCT 7) of program commands; each budget has its own. */
export const ProgramStatus = {
  Rejected: 0x01,
  UnknownProgram: 0x02,
  BadImage: 0x03,
  NameInUse: 0x04,
  ProgramBusy: 0x05,
  LoadSequence: 0x06,
  /** The host already has its quota of verifications running or queued. */
  VerifierBusy: 0x07,
  /** Verification ran past its wall-clock limit. */
  VerificationTimeout: 0x08,
  /** Verification needed more memory than a verifier worker may use. */
  VerificationMemory: 0x09,
  /** Half-sent images would pass the association's, the host's or the target's cap. */
  UploadQuota: 0x0a,
  BudgetSteps: 0x10,
  BudgetBytesRead: 0x11,
  BudgetReadsPerStep: 0x12,
  BudgetInstructionsPerStep: 0x13,
  BudgetInstructionsPerExecution: 0x14,
  BudgetOutputBytes: 0x15,
  BudgetDeadline: 0x16,
  BudgetConcurrentExecutions: 0x17,
  BudgetLoadedPrograms: 0x18,
  BudgetMapMemory: 0x19,
  /** The host's (or all hosts') loaded programs would hold more map memory than allowed. */
  TenantMapMemory: 0x1a,
  /** The host's (or all hosts') loaded code would pass its cap. */
  TenantProgramMemory: 0x1b,
  MemoryFault: 0x20,
  StorageAccess: 0x21,
  StorageRead: 0x22,
  HelperFailed: 0x23,
  CallDepth: 0x24,
  OutputTooLarge: 0x25,
  ExecutionFailed: 0x26,
  /** The execution worker running it died (a target fault; the worker was replaced): retry. */
  ExecutionWorkerFailed: 0x27,
  MapOperationFailed: 0x30,
} as const;

export const PROGRAM_STATUS_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(ProgramStatus).map(([name, code]) => [code, name]),
);

export const EXECUTE_FLAG_SCAN = 1;
/** Append an `ExecutionStatsTrailer` to the output (nearbpf's host library sets it). */
export const EXECUTE_FLAG_STATS = 2;
export const STATS_TRAILER_BYTES = 32;

export interface ExecutionStatsTrailer {
  readonly steps: number;
  readonly reads: number;
  readonly bytesRead: number;
  readonly instructions: number;
  readonly durationUs: number;
}

export function encodeStatsTrailer(t: ExecutionStatsTrailer): Buffer {
  const out = Buffer.alloc(STATS_TRAILER_BYTES);
  writeStatsTrailer(t, out, 0);
  return out;
}

/** Write the trailer into `out` at `at` (STATS_TRAILER_BYTES bytes); u64 fields as two u32 halves, no BigInt. */
export function writeStatsTrailer(t: ExecutionStatsTrailer, out: Buffer, at: number): void {
  out.writeUInt32LE(t.steps, at);
  out.writeUInt32LE(t.reads, at + 4);
  writeU64(out, at + 8, t.bytesRead);
  writeU64(out, at + 16, t.instructions);
  writeU64(out, at + 24, Math.round(t.durationUs));
}

function writeU64(out: Buffer, at: number, value: number): void {
  const v = Math.max(0, Math.min(Number.MAX_SAFE_INTEGER, value));
  out.writeUInt32LE(v % 0x1_0000_0000, at);
  out.writeUInt32LE(Math.floor(v / 0x1_0000_0000), at + 4);
}

export function decodeStatsTrailer(b: Buffer): ExecutionStatsTrailer {
  return {
    steps: b.readUInt32LE(0),
    reads: b.readUInt32LE(4),
    bytesRead: Number(b.readBigUInt64LE(8)),
    instructions: Number(b.readBigUInt64LE(16)),
    durationUs: Number(b.readBigUInt64LE(24)),
  };
}
export const MESSAGE_KIND_LOAD = 0;
export const MESSAGE_KIND_COMMAND = 1;
export const MESSAGE_HISTORY = 64;

/** Load image: a 128-byte header, then the program (raw bytecode or an ELF object). */
export const LOAD_IMAGE_MAGIC = 0x444c424e; // "NBLD"
export const LOAD_IMAGE_VERSION = 1;
export const LOAD_HEADER_BYTES = 128;
export const PROGRAM_NAME_MAX_BYTES = 64;
const OBJECT_PROGRAM_MAX_BYTES = 48;
/** Largest image a target accepts. */
export const MAX_LOAD_IMAGE_BYTES = 16 * 1024 * 1024;

export type ProgramFormat = 'bytecode' | 'elf';

export interface LoadImageHeader {
  readonly format: ProgramFormat;
  /** The name the program is known by on the target. */
  readonly name: string;
  /** For ELF objects: which program of the object (empty: the first). */
  readonly objectProgram: string;
}

export class ProgramImageError extends Error {}

function putString(into: Buffer, at: number, max: number, text: string, what: string): void {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > max) throw new ProgramImageError(`${what} is longer than ${max} bytes`);
  bytes.copy(into, at);
}

function getString(from: Buffer, at: number, max: number): string {
  const raw = from.subarray(at, at + max);
  const end = raw.indexOf(0);
  return raw.subarray(0, end < 0 ? max : end).toString('utf8');
}

export function encodeLoadImage(header: LoadImageHeader, program: Uint8Array): Buffer {
  const image = Buffer.alloc(LOAD_HEADER_BYTES + program.length);
  image.writeUInt32LE(LOAD_IMAGE_MAGIC, 0);
  image.writeUInt16LE(LOAD_IMAGE_VERSION, 4);
  image.writeUInt8(header.format === 'elf' ? 1 : 0, 6);
  putString(image, 8, PROGRAM_NAME_MAX_BYTES, header.name, 'program name');
  putString(image, 8 + PROGRAM_NAME_MAX_BYTES, OBJECT_PROGRAM_MAX_BYTES, header.objectProgram, 'object program name');
  image.set(program, LOAD_HEADER_BYTES);
  return image;
}

export function decodeLoadImage(image: Buffer): { header: LoadImageHeader; program: Buffer } {
  if (image.length < LOAD_HEADER_BYTES) throw new ProgramImageError(`image of ${image.length} bytes has no header`);
  if (image.readUInt32LE(0) !== LOAD_IMAGE_MAGIC) throw new ProgramImageError('bad image magic');
  if (image.readUInt16LE(4) !== LOAD_IMAGE_VERSION)
    throw new ProgramImageError(`unsupported image version ${image.readUInt16LE(4)}`);
  const format = image.readUInt8(6);
  if (format > 1) throw new ProgramImageError(`unknown program format ${format}`);
  return {
    header: {
      format: format === 1 ? 'elf' : 'bytecode',
      name: getString(image, 8, PROGRAM_NAME_MAX_BYTES),
      objectProgram: getString(image, 8 + PROGRAM_NAME_MAX_BYTES, OBJECT_PROGRAM_MAX_BYTES),
    },
    program: image.subarray(LOAD_HEADER_BYTES),
  };
}

/** One entry of LIST_PROGRAMS. */
export interface ProgramListEntry {
  readonly handle: number;
  readonly name: string;
  readonly instructions: number;
  readonly executions: number;
  readonly failures: number;
  readonly steps: number;
  readonly instructionsExecuted: number;
  readonly bytesRead: number;
  readonly loadedAtMs: number;
}

export const LIST_HEADER_BYTES = 8;
export const LIST_ENTRY_BYTES = 128;
export const MAX_LISTED_PROGRAMS = 256;

export function encodeProgramList(entries: readonly ProgramListEntry[]): Buffer {
  const out = Buffer.alloc(LIST_HEADER_BYTES + entries.length * LIST_ENTRY_BYTES);
  out.writeUInt32LE(entries.length, 0);
  entries.forEach((e, i) => {
    const at = LIST_HEADER_BYTES + i * LIST_ENTRY_BYTES;
    out.writeUInt32LE(e.handle, at);
    out.writeUInt32LE(e.instructions, at + 4);
    putString(out, at + 8, PROGRAM_NAME_MAX_BYTES, e.name, 'program name');
    const nums = [e.executions, e.failures, e.steps, e.instructionsExecuted, e.bytesRead, e.loadedAtMs];
    nums.forEach((n, k) => {
      out.writeBigUInt64LE(BigInt(Math.max(0, Math.floor(n))), at + 72 + k * 8);
    });
  });
  return out;
}

export function decodeProgramList(data: Buffer): ProgramListEntry[] {
  if (data.length < LIST_HEADER_BYTES) throw new ProgramImageError('program list is truncated');
  const count = data.readUInt32LE(0);
  const fits = Math.floor((data.length - LIST_HEADER_BYTES) / LIST_ENTRY_BYTES);
  const entries: ProgramListEntry[] = [];
  for (let i = 0; i < Math.min(count, fits); i++) {
    const at = LIST_HEADER_BYTES + i * LIST_ENTRY_BYTES;
    const n = (k: number) => Number(data.readBigUInt64LE(at + 72 + k * 8));
    entries.push({
      handle: data.readUInt32LE(at),
      instructions: data.readUInt32LE(at + 4),
      name: getString(data, at + 8, PROGRAM_NAME_MAX_BYTES),
      executions: n(0),
      failures: n(1),
      steps: n(2),
      instructionsExecuted: n(3),
      bytesRead: n(4),
      loadedAtMs: n(5),
    });
  }
  return entries;
}

export const MAP_INDEX_LIST = 0xffffffff;
export const MAP_UPDATE_DELETE = 1;
const MAP_NAME_BYTES = 32;
const MAP_INFO_BYTES = 48;

export interface MapInfo {
  readonly name: string;
  readonly type: 'array' | 'hash';
  readonly keySizeBytes: number;
  readonly valueSizeBytes: number;
  readonly maxEntries: number;
}

/** MAP_DUMP with MAP_INDEX_LIST: u32 count, then per map name[32], type u32 (0 array, 1 hash), key, value, max entries. */
export function encodeMapList(maps: readonly MapInfo[]): Buffer {
  const out = Buffer.alloc(4 + maps.length * MAP_INFO_BYTES);
  out.writeUInt32LE(maps.length, 0);
  maps.forEach((m, i) => {
    const at = 4 + i * MAP_INFO_BYTES;
    Buffer.from(m.name, 'utf8').subarray(0, MAP_NAME_BYTES).copy(out, at);
    out.writeUInt32LE(m.type === 'hash' ? 1 : 0, at + 32);
    out.writeUInt32LE(m.keySizeBytes, at + 36);
    out.writeUInt32LE(m.valueSizeBytes, at + 40);
    out.writeUInt32LE(m.maxEntries, at + 44);
  });
  return out;
}

export function decodeMapList(data: Buffer): MapInfo[] {
  if (data.length < 4) throw new ProgramImageError('map list is truncated');
  const count = Math.min(data.readUInt32LE(0), Math.floor((data.length - 4) / MAP_INFO_BYTES));
  return Array.from({ length: count }, (_, i) => {
    const at = 4 + i * MAP_INFO_BYTES;
    return {
      name: getString(data, at, MAP_NAME_BYTES),
      type: data.readUInt32LE(at + 32) === 1 ? 'hash' : 'array',
      keySizeBytes: data.readUInt32LE(at + 36),
      valueSizeBytes: data.readUInt32LE(at + 40),
      maxEntries: data.readUInt32LE(at + 44),
    } satisfies MapInfo;
  });
}

/** MAP_DUMP of one map: u32 entry count, u32 key size, u32 value size, then key/value pairs. */
export function encodeMapDump(
  keySizeBytes: number,
  valueSizeBytes: number,
  entries: readonly [Uint8Array, Uint8Array][],
): Buffer {
  const pair = keySizeBytes + valueSizeBytes;
  const out = Buffer.alloc(12 + entries.length * pair);
  out.writeUInt32LE(entries.length, 0);
  out.writeUInt32LE(keySizeBytes, 4);
  out.writeUInt32LE(valueSizeBytes, 8);
  entries.forEach(([k, v], i) => {
    out.set(k, 12 + i * pair);
    out.set(v, 12 + i * pair + keySizeBytes);
  });
  return out;
}

export function decodeMapDump(data: Buffer): { key: Buffer; value: Buffer }[] {
  if (data.length < 12) throw new ProgramImageError('map dump is truncated');
  const keySize = data.readUInt32LE(4);
  const valueSize = data.readUInt32LE(8);
  const pair = keySize + valueSize;
  const count = pair === 0 ? 0 : Math.min(data.readUInt32LE(0), Math.floor((data.length - 12) / pair));
  return Array.from({ length: count }, (_, i) => ({
    key: data.subarray(12 + i * pair, 12 + i * pair + keySize),
    value: data.subarray(12 + i * pair + keySize, 12 + (i + 1) * pair),
  }));
}
