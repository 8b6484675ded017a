/**
 * The reference interpreter: it defines what every engine must do (RFC 9669 semantics, checked
 * memory, fuel per basic block, local calls with 512-byte frames).
 *
 * Registers are kept as two Int32Arrays (low and high halves) so the hot loop needs no BigInt;
 * 64-bit division falls back to BigInt, which is rare and measured acceptable.
 */
import {
  CallDepthError,
  FuelExhaustedError,
  HelperError,
  MemoryAccessError,
  NearbpfError,
  UnknownHelperError,
} from '../errors.js';
import { encodeProgram } from '../isa/codec.js';
import type { Program } from '../isa/instruction.js';
import { blockCosts, blockLeaders, fuelCheckpoints } from './blocks.js';
import {
  checkFuel,
  type Engine,
  type EngineOptions,
  prepareProgram,
  type RunOptions,
  type RunResult,
  STACK_FRAME_SIZE_BYTES,
  STACK_REGION_ID,
  STACK_TOP_OFFSET,
} from './engine.js';
import { HelperArgs, type HelperTable, ProgramStop, storeHelperResult } from './helpers.js';
import type { SandboxMemory } from './memory.js';
import { mulHigh32, swap16, swap32 } from './u64.js';

const R10 = 10;
const CALLEE_ZEROED = [0, 6, 7, 8, 9];

/** Per saved frame: r1-r10 low halves, r1-r10 high halves, return slot. */
const FRAME_WORDS = 21;

export interface InterpreterOptions extends EngineOptions {
  /**
   * Fault on any access that is not inside one region (the engines' own rule is the sandbox's span,
   * see memory.ts). Slower; for test oracles such as the verifier's soundness test, never for runs
   * the JIT must agree with.
   */
  readonly withinRegion?: boolean;
}

export class Interpreter implements Engine {
  readonly kind = 'interpreter' as const;
  /** Per slot: opcode | dst << 8 | src << 12 | offset << 16 (one load decodes everything but imm). */
  private readonly code: Int32Array;
  private readonly imm: Int32Array;
  private readonly cost: Int32Array;
  /** 1 where exhaustion is checked on entry (see blocks.ts). */
  private readonly checkpoint: Uint8Array;
  /** The sandbox's bounds (see memory.ts): mapped from `low`, writable below `writableEnd`. */
  private readonly low: number;
  private readonly writableEnd: number;
  private readonly readableEnd: number;
  /** Test oracle mode: every access must lie inside one region (see `InterpreterOptions`). */
  private readonly withinRegion: boolean;
  private readonly helpers: HelperTable;
  private readonly memory: SandboxMemory;
  /** r1-r5 of a helper call as word pairs, and the one `HelperArgs` every call reuses. */
  private readonly helperWords: Int32Array;
  private readonly helperArgs: HelperArgs;
  private readonly maxDepth: number;

  constructor(program: Program, options: InterpreterOptions) {
    const layout = prepareProgram(program, options);
    const bytes = encodeProgram(program);
    const n = layout.slotCount;
    const view = new DataView(bytes.buffer);
    this.code = new Int32Array(n);
    this.imm = new Int32Array(n);
    for (let pc = 0; pc < n; pc++) {
      const regs = view.getUint8(pc * 8 + 1);
      this.code[pc] = view.getUint8(pc * 8) | ((regs & 0xf) << 8) | ((regs >> 4) << 12) | (view.getInt16(pc * 8 + 2, true) << 16);
      this.imm[pc] = view.getInt32(pc * 8 + 4, true);
    }
    const leaders = blockLeaders(layout);
    this.cost = blockCosts(layout, leaders);
    this.checkpoint = fuelCheckpoints(layout, leaders);
    this.withinRegion = options.withinRegion === true;
    this.low = options.memory.lowAddress;
    this.writableEnd = options.memory.writableEnd;
    this.readableEnd = options.memory.readableEnd;
    this.helpers = options.helpers;
    this.memory = options.memory;
    this.maxDepth = options.maxCallDepth ?? 8;
    this.helperWords = new Int32Array(10);
    this.helperArgs = new HelperArgs(options.memory, this.helperWords, 0);
  }

  run(args: readonly bigint[], options: RunOptions): RunResult {
    checkFuel(options.fuel);
    const lo = new Int32Array(11);
    const hi = new Int32Array(11);
    for (let i = 0; i < 5 && i < args.length; i++) {
      const v = BigInt.asUintN(64, args[i]);
      lo[i + 1] = Number(v & 0xffffffffn) | 0;
      hi[i + 1] = Number(v >> 32n) | 0;
    }
    if (options.clearStack !== false) this.memory.bytes(STACK_REGION_ID).fill(0);
    lo[R10] = this.memory.address(STACK_REGION_ID, STACK_TOP_OFFSET);
    const budget = options.fuel;
    const fuel = { left: budget };
    try {
      this.execute(lo, hi, fuel);
    } catch (e) {
      if (e instanceof ProgramStop) return { r0: e.r0, fuelUsed: budget - fuel.left };
      throw e;
    }
    return {
      r0: (BigInt(hi[0] >>> 0) << 32n) | BigInt(lo[0] >>> 0),
      fuelUsed: budget - fuel.left,
    };
  }

  private execute(lo: Int32Array, hi: Int32Array, fuel: { left: number }): void {
    const { code, imm, cost, checkpoint, memory } = this;
    const budget = fuel.left;
    // A local copy keeps the hot loop free of property writes; `finally` publishes it for fuelUsed.
    let left = budget;
    // Caller frames, preallocated so a local call allocates nothing.
    const frames = new Int32Array(this.maxDepth * FRAME_WORDS);
    let depth = 0;
    // The sandbox's memory never grows (its maximum is its size), so one view serves every access.
    const view = new DataView(memory.memory.buffer);
    let pc = 0;
    try {
      for (;;) {
        const c = cost[pc];
        if (c !== 0) {
          left -= c;
          if (left < 0 && checkpoint[pc] !== 0) throw new FuelExhaustedError(pc, budget);
        }
        const w = code[pc];
        const o = w & 0xff;
        const d = (w >> 8) & 0xf;
        const s = (w >> 12) & 0xf;
        const off = w >> 16;
        // Second operand of ALU/JMP: register (X) or sign-extended immediate (K).
        let blo: number;
        let bhi: number;
        if (o & 0x08) {
          blo = lo[s];
          bhi = hi[s];
        } else {
          blo = imm[pc];
          bhi = blo >> 31;
        }
        switch (o) {
          // ---- ALU64 ----
          case 0x07:
          case 0x0f: {
            const sum = (lo[d] >>> 0) + (blo >>> 0);
            hi[d] = (hi[d] + bhi + (sum > 0xffffffff ? 1 : 0)) | 0;
            lo[d] = sum | 0;
            break;
          }
          case 0x17:
          case 0x1f: {
            const diff = (lo[d] >>> 0) - (blo >>> 0);
            hi[d] = (hi[d] - bhi - (diff < 0 ? 1 : 0)) | 0;
            lo[d] = diff | 0;
            break;
          }
          case 0x27:
          case 0x2f: {
            const a = lo[d];
            hi[d] = (mulHigh32(a, blo) + Math.imul(a, bhi) + Math.imul(hi[d], blo)) | 0;
            lo[d] = Math.imul(a, blo);
            break;
          }
          case 0x37:
          case 0x3f:
          case 0x97:
          case 0x9f:
            this.divmod64(lo, hi, d, blo, bhi, (o & 0xf0) === 0x90, off === 1);
            break;
          case 0x47:
          case 0x4f:
            lo[d] |= blo;
            hi[d] |= bhi;
            break;
          case 0x57:
          case 0x5f:
            lo[d] &= blo;
            hi[d] &= bhi;
            break;
          case 0xa7:
          case 0xaf:
            lo[d] ^= blo;
            hi[d] ^= bhi;
            break;
          case 0x67:
          case 0x6f: {
            const n = blo & 63;
            if (n >= 32) {
              hi[d] = lo[d] << (n - 32);
              lo[d] = 0;
            } else if (n > 0) {
              hi[d] = (hi[d] << n) | (lo[d] >>> (32 - n));
              lo[d] = lo[d] << n;
            }
            break;
          }
          case 0x77:
          case 0x7f: {
            const n = blo & 63;
            if (n >= 32) {
              lo[d] = hi[d] >>> (n - 32);
              hi[d] = 0;
            } else if (n > 0) {
              lo[d] = (lo[d] >>> n) | (hi[d] << (32 - n));
              hi[d] = hi[d] >>> n;
            }
            break;
          }
          case 0xc7:
          case 0xcf: {
            const n = blo & 63;
            if (n >= 32) {
              lo[d] = hi[d] >> (n - 32);
              hi[d] = hi[d] >> 31;
            } else if (n > 0) {
              lo[d] = (lo[d] >>> n) | (hi[d] << (32 - n));
              hi[d] = hi[d] >> n;
            }
            break;
          }
          case 0x87: {
            const l = lo[d];
            lo[d] = -l | 0;
            hi[d] = (~hi[d] + (l === 0 ? 1 : 0)) | 0;
            break;
          }
          case 0xb7:
            lo[d] = blo;
            hi[d] = bhi;
            break;
          case 0xbf:
            switch (off) {
              case 0:
                lo[d] = blo;
                hi[d] = bhi;
                break;
              case 8:
                lo[d] = (blo << 24) >> 24;
                hi[d] = lo[d] >> 31;
                break;
              case 16:
                lo[d] = (blo << 16) >> 16;
                hi[d] = lo[d] >> 31;
                break;
              default: // 32
                lo[d] = blo;
                hi[d] = blo >> 31;
            }
            break;
          case 0xd7: // BSWAP (v4): the same swap-then-truncate as be on a little-endian host
            byteSwap(lo, hi, d, imm[pc]);
            break;

          // ---- ALU (32-bit; results zero-extended) ----
          case 0x04:
          case 0x0c:
            lo[d] = (lo[d] + blo) | 0;
            hi[d] = 0;
            break;
          case 0x14:
          case 0x1c:
            lo[d] = (lo[d] - blo) | 0;
            hi[d] = 0;
            break;
          case 0x24:
          case 0x2c:
            lo[d] = Math.imul(lo[d], blo);
            hi[d] = 0;
            break;
          case 0x34:
          case 0x3c:
          case 0x94:
          case 0x9c:
            lo[d] = divmod32(lo[d], blo, (o & 0xf0) === 0x90, off === 1);
            hi[d] = 0;
            break;
          case 0x44:
          case 0x4c:
            lo[d] |= blo;
            hi[d] = 0;
            break;
          case 0x54:
          case 0x5c:
            lo[d] &= blo;
            hi[d] = 0;
            break;
          case 0xa4:
          case 0xac:
            lo[d] ^= blo;
            hi[d] = 0;
            break;
          case 0x64:
          case 0x6c:
            lo[d] = lo[d] << (blo & 31);
            hi[d] = 0;
            break;
          case 0x74:
          case 0x7c:
            lo[d] = lo[d] >>> (blo & 31);
            hi[d] = 0;
            break;
          case 0xc4:
          case 0xcc:
            lo[d] = lo[d] >> (blo & 31);
            hi[d] = 0;
            break;
          case 0x84:
            lo[d] = -lo[d] | 0;
            hi[d] = 0;
            break;
          case 0xb4:
            lo[d] = blo;
            hi[d] = 0;
            break;
          case 0xbc:
            lo[d] = off === 8 ? (blo << 24) >> 24 : off === 16 ? (blo << 16) >> 16 : blo;
            hi[d] = 0;
            break;
          case 0xd4: // le: truncate
            if (imm[pc] === 16) lo[d] &= 0xffff;
            if (imm[pc] !== 64) hi[d] = 0;
            break;
          case 0xdc: // be: swap then truncate
            byteSwap(lo, hi, d, imm[pc]);
            break;

          // ---- lddw ----
          case 0x18:
            lo[d] = imm[pc];
            hi[d] = imm[pc + 1];
            pc += 2;
            continue;

          // ---- loads ----
          case 0x61:
          case 0x69:
          case 0x71:
          case 0x79:
          case 0x81:
          case 0x89:
          case 0x91: {
            const size = SIZE_OF[o & 0x18];
            const at = this.address(lo[s], hi[s], off, size, 'read', pc);
            const signed = (o & 0xe0) === 0x80;
            if (size === 8) {
              lo[d] = view.getInt32(at, true);
              hi[d] = view.getInt32(at + 4, true);
            } else {
              const v =
                size === 1
                  ? signed
                    ? view.getInt8(at)
                    : view.getUint8(at)
                  : size === 2
                    ? signed
                      ? view.getInt16(at, true)
                      : view.getUint16(at, true)
                    : view.getInt32(at, true);
              lo[d] = v;
              hi[d] = signed ? v >> 31 : 0;
            }
            break;
          }

          // ---- stores ----
          case 0x62:
          case 0x6a:
          case 0x72:
          case 0x7a:
          case 0x63:
          case 0x6b:
          case 0x73:
          case 0x7b: {
            const size = SIZE_OF[o & 0x18];
            const at = this.address(lo[d], hi[d], off, size, 'write', pc);
            const fromReg = (o & 0x07) === 0x03;
            const vlo = fromReg ? lo[s] : imm[pc];
            const vhi = fromReg ? hi[s] : imm[pc] >> 31;
            if (size === 1) view.setUint8(at, vlo & 0xff);
            else if (size === 2) view.setUint16(at, vlo & 0xffff, true);
            else {
              view.setInt32(at, vlo, true);
              if (size === 8) view.setInt32(at + 4, vhi, true);
            }
            break;
          }

          // ---- atomics ----
          case 0xc3:
          case 0xdb:
            this.atomic(lo, hi, pc, o === 0xdb ? 8 : 4, view);
            break;

          // ---- jumps ----
          case 0x05:
            pc += off + 1;
            continue;
          case 0x06:
            pc += imm[pc] + 1;
            continue;
          case 0x95:
            if (left < 0) throw new FuelExhaustedError(pc, budget);
            if (depth === 0) return;
            depth--;
            pc = restoreFrame(frames, depth * FRAME_WORDS, lo, hi);
            continue;
          case 0x85:
          case 0x8d: {
            if (o === 0x85 && s === 1) {
              if (depth + 1 >= this.maxDepth) throw new CallDepthError(pc, this.maxDepth);
              // The callee gets its own view of r1-r10; the caller's come back on return (the JIT's
              // functions keep them in locals, so both engines agree even for unverified programs).
              const at = depth * FRAME_WORDS;
              for (let r = 1; r <= 10; r++) {
                frames[at + r - 1] = lo[r];
                frames[at + r + 9] = hi[r];
              }
              frames[at + 20] = pc + 1;
              depth++;
              // A callee starts with r0 and r6-r9 zeroed: nothing of the caller's state leaks into it
              // beyond its arguments (r1-r5) and frame pointer, exactly as in the JIT's functions.
              for (const r of CALLEE_ZEROED) {
                lo[r] = 0;
                hi[r] = 0;
              }
              // r10 - 512 as a 64-bit subtraction: an unverified program may have written r10, and
              // the borrow must reach the high half (region id), as in the JIT's i64.sub.
              const fpLo = lo[R10] >>> 0;
              lo[R10] = (fpLo - STACK_FRAME_SIZE_BYTES) | 0;
              if (fpLo < STACK_FRAME_SIZE_BYTES) hi[R10] = (hi[R10] - 1) | 0;
              pc += imm[pc] + 1;
              continue;
            }
            if (left < 0) throw new FuelExhaustedError(pc, budget);
            // callx: an id beyond 32 bits can name no helper.
            const id = o === 0x85 ? imm[pc] : hi[d] === 0 ? lo[d] >>> 0 : -1;
            this.callHelper(id, lo, hi, pc);
            break;
          }
          default: {
            // Conditional jumps: JMP (class 5) and JMP32 (class 6).
            if (jumpTaken(o, lo[d], hi[d], blo, bhi)) {
              pc += off + 1;
              continue;
            }
          }
        }
        pc++;
      }
    } finally {
      fuel.left = left;
    }
  }

  /** Linear-memory offset of a checked access, or a `MemoryAccessError`. */
  private address(baseLo: number, baseHi: number, offset: number, size: number, access: 'read' | 'write', pc: number): number {
    const sum = (baseLo >>> 0) + offset;
    const addrLo = sum | 0;
    const addrHi = (baseHi + (sum > 0xffffffff ? 1 : sum < 0 ? -1 : 0)) | 0;
    // The same rule as SandboxMemory.check, on numbers.
    const at = addrLo >>> 0;
    if (this.withinRegion) {
      if (this.memory.checkWithinRegion(addrHi, addrLo, size, access) >= 0) return at;
    } else if (addrHi === 0 && at >= this.low && at + size <= (access === 'read' ? this.readableEnd : this.writableEnd)) {
      return at;
    }
    throw new MemoryAccessError(pc, access, (BigInt(addrHi >>> 0) << 32n) | BigInt(addrLo >>> 0), size);
  }

  private atomic(lo: Int32Array, hi: Int32Array, pc: number, size: 4 | 8, view: DataView): void {
    const w = this.code[pc];
    const d = (w >> 8) & 0xf;
    const s = (w >> 12) & 0xf;
    const code = this.imm[pc];
    const at = this.address(lo[d], hi[d], w >> 16, size, 'write', pc);
    const mask = size === 8 ? 0xffffffffffffffffn : 0xffffffffn;
    const old = size === 8 ? view.getBigUint64(at, true) : BigInt(view.getUint32(at, true));
    const operand = ((BigInt(hi[s] >>> 0) << 32n) | BigInt(lo[s] >>> 0)) & mask;
    let next = old;
    switch (code & ~1) {
      case 0x00:
        next = (old + operand) & mask;
        break;
      case 0x40:
        next = old | operand;
        break;
      case 0x50:
        next = old & operand;
        break;
      case 0xa0:
        next = old ^ operand;
        break;
      case 0xe0:
        next = operand;
        break;
      case 0xf0: {
        const r0 = ((BigInt(hi[0] >>> 0) << 32n) | BigInt(lo[0] >>> 0)) & mask;
        if (r0 === old) next = operand;
        break;
      }
    }
    if (size === 8) view.setBigUint64(at, next, true);
    else view.setUint32(at, Number(next), true);
    if (code & 1) {
      const into = code === 0xf1 ? 0 : s;
      lo[into] = Number(old & 0xffffffffn) | 0;
      hi[into] = Number(old >> 32n) | 0;
    }
  }

  private divmod64(lo: Int32Array, hi: Int32Array, d: number, blo: number, bhi: number, isMod: boolean, signed: boolean): void {
    if (!signed && hi[d] === 0 && bhi === 0) {
      const a = lo[d] >>> 0;
      const b = blo >>> 0;
      lo[d] = b === 0 ? (isMod ? a : 0) : isMod ? a % b : Math.floor(a / b);
      return;
    }
    const a = (BigInt(hi[d] >>> 0) << 32n) | BigInt(lo[d] >>> 0);
    const b = (BigInt(bhi >>> 0) << 32n) | BigInt(blo >>> 0);
    let r: bigint;
    if (b === 0n) r = isMod ? a : 0n;
    else if (!signed) r = isMod ? a % b : a / b;
    else {
      const sa = BigInt.asIntN(64, a);
      const sb = BigInt.asIntN(64, b);
      r = BigInt.asUintN(64, isMod ? sa % sb : sa / sb); // BigInt division truncates, as eBPF's
    }
    lo[d] = Number(r & 0xffffffffn) | 0;
    hi[d] = Number(r >> 32n) | 0;
  }

  private callHelper(id: number, lo: Int32Array, hi: Int32Array, pc: number): void {
    const helper = this.helpers.get(id);
    if (helper === undefined) throw new UnknownHelperError(pc, id);
    const words = this.helperWords;
    for (let r = 1; r <= 5; r++) {
      words[2 * r - 2] = lo[r];
      words[2 * r - 1] = hi[r];
    }
    this.helperArgs.pc = pc;
    let r0: number | bigint;
    try {
      r0 = helper.fn(this.helperArgs);
    } catch (e) {
      if (e instanceof ProgramStop || e instanceof NearbpfError) throw e;
      throw new HelperError(pc, id, e instanceof Error ? e.message : String(e));
    }
    if (!storeHelperResult(words, 0, r0)) throw new HelperError(pc, id, `returned ${String(r0)}, not a 64-bit integer`);
    lo[0] = words[0];
    hi[0] = words[1];
    // r1-r5 are clobbered by calls (RFC 9669 §4.3.1); leave them as they were, as the kernel does.
  }
}

/** Swap the low `bits` (16, 32 or 64) bits of register `d` and zero the rest. */
function byteSwap(lo: Int32Array, hi: Int32Array, d: number, bits: number): void {
  if (bits === 16) {
    lo[d] = swap16(lo[d]);
    hi[d] = 0;
  } else if (bits === 32) {
    lo[d] = swap32(lo[d]);
    hi[d] = 0;
  } else {
    const l = lo[d];
    lo[d] = swap32(hi[d]);
    hi[d] = swap32(l);
  }
}

/** Restore the caller's r1-r10; returns the slot to continue at. */
function restoreFrame(frames: Int32Array, at: number, lo: Int32Array, hi: Int32Array): number {
  for (let r = 1; r <= 10; r++) {
    lo[r] = frames[at + r - 1];
    hi[r] = frames[at + r + 9];
  }
  return frames[at + 20];
}

const SIZE_OF: Record<number, number> = { 0: 4, 8: 2, 16: 1, 24: 8 };

/** 32-bit DIV/MOD/SDIV/SMOD with the RFC's rules for zero and INT_MIN / -1. */
export function divmod32(a: number, b: number, isMod: boolean, signed: boolean): number {
  if (b === 0) return isMod ? a : 0;
  if (!signed) return isMod ? ((a >>> 0) % (b >>> 0)) | 0 : Math.floor((a >>> 0) / (b >>> 0)) | 0;
  if (b === -1) return isMod ? 0 : -a | 0;
  return isMod ? (a % b) | 0 : Math.trunc(a / b) | 0;
}

function jumpTaken(op: number, alo: number, ahi: number, blo: number, bhi: number): boolean {
  const is32 = (op & 0x07) === 0x06;
  let cmp: number; // -1, 0, 1 unsigned
  let scmp: number; // signed
  if (is32) {
    cmp = alo >>> 0 < blo >>> 0 ? -1 : alo >>> 0 > blo >>> 0 ? 1 : 0;
    scmp = alo < blo ? -1 : alo > blo ? 1 : 0;
  } else {
    const lc = alo >>> 0 < blo >>> 0 ? -1 : alo >>> 0 > blo >>> 0 ? 1 : 0;
    cmp = ahi >>> 0 < bhi >>> 0 ? -1 : ahi >>> 0 > bhi >>> 0 ? 1 : lc;
    scmp = ahi < bhi ? -1 : ahi > bhi ? 1 : lc;
  }
  switch (op & 0xf0) {
    case 0x10:
      return cmp === 0;
    case 0x50:
      return cmp !== 0;
    case 0x20:
      return cmp > 0;
    case 0x30:
      return cmp >= 0;
    case 0xa0:
      return cmp < 0;
    case 0xb0:
      return cmp <= 0;
    case 0x60:
      return scmp > 0;
    case 0x70:
      return scmp >= 0;
    case 0xc0:
      return scmp < 0;
    case 0xd0:
      return scmp <= 0;
    case 0x40:
      return (alo & blo) !== 0 || (!is32 && (ahi & bhi) !== 0);
    default:
      throw new Error(`unreachable: opcode 0x${op.toString(16)} passed decoding`);
  }
}
