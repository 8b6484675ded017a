/**
 * A small WebAssembly binary emitter: just what the JIT needs (one memory import, function imports,
 * i32/i64 globals, functions with i32/i64 locals, exports), encoded by hand per the Wasm 1.0 spec.
 */

export const I32 = 0x7f;
export const I64 = 0x7e;
export type ValType = typeof I32 | typeof I64;
export const VOID_BLOCK = 0x40;

/** Prefix of the threads proposal's atomic instructions (a u32 sub-opcode follows, then a memarg). */
export const ATOMIC_PREFIX = 0xfe;

/**
 * Atomic read-modify-write sub-opcodes on i64 operands: the full 64-bit form and the 32-bit form
 * (`i64.atomic.rmw32.*_u`: the value is wrapped to 32 bits, the old value zero-extended). Each
 * returns the old value; cmpxchg takes (address, expected, replacement), comparing the wrapped form.
 */
export const AtomicRmw = {
  add: { wide: 0x1f, narrow: 0x24 },
  and: { wide: 0x2d, narrow: 0x32 },
  or: { wide: 0x34, narrow: 0x39 },
  xor: { wide: 0x3b, narrow: 0x40 },
  xchg: { wide: 0x42, narrow: 0x47 },
  cmpxchg: { wide: 0x49, narrow: 0x4e },
} as const;

/** Instruction opcodes used by the JIT. */
export const Op = {
  unreachable: 0x00,
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  br_if: 0x0d,
  br_table: 0x0e,
  return: 0x0f,
  call: 0x10,
  drop: 0x1a,
  select: 0x1b,
  local_get: 0x20,
  local_set: 0x21,
  local_tee: 0x22,
  global_get: 0x23,
  global_set: 0x24,
  i32_load: 0x28,
  i64_load: 0x29,
  i64_load8_s: 0x30,
  i64_load8_u: 0x31,
  i64_load16_s: 0x32,
  i64_load16_u: 0x33,
  i64_load32_s: 0x34,
  i64_load32_u: 0x35,
  i64_store: 0x37,
  i64_store8: 0x3c,
  i64_store16: 0x3d,
  i64_store32: 0x3e,
  i32_const: 0x41,
  i64_const: 0x42,
  i32_eqz: 0x45,
  i32_eq: 0x46,
  i32_ne: 0x47,
  i32_lt_s: 0x48,
  i32_lt_u: 0x49,
  i32_gt_s: 0x4a,
  i32_gt_u: 0x4b,
  i32_le_s: 0x4c,
  i32_le_u: 0x4d,
  i32_ge_s: 0x4e,
  i32_ge_u: 0x4f,
  i64_eqz: 0x50,
  i64_eq: 0x51,
  i64_ne: 0x52,
  i64_lt_s: 0x53,
  i64_lt_u: 0x54,
  i64_gt_s: 0x55,
  i64_gt_u: 0x56,
  i64_le_s: 0x57,
  i64_le_u: 0x58,
  i64_ge_s: 0x59,
  i64_ge_u: 0x5a,
  i32_add: 0x6a,
  i32_sub: 0x6b,
  i32_mul: 0x6c,
  i32_div_s: 0x6d,
  i32_div_u: 0x6e,
  i32_rem_s: 0x6f,
  i32_rem_u: 0x70,
  i32_and: 0x71,
  i32_or: 0x72,
  i32_xor: 0x73,
  i32_shl: 0x74,
  i32_shr_s: 0x75,
  i32_shr_u: 0x76,
  i32_rotl: 0x77,
  i32_rotr: 0x78,
  i64_add: 0x7c,
  i64_sub: 0x7d,
  i64_mul: 0x7e,
  i64_div_s: 0x7f,
  i64_div_u: 0x80,
  i64_rem_s: 0x81,
  i64_rem_u: 0x82,
  i64_and: 0x83,
  i64_or: 0x84,
  i64_xor: 0x85,
  i64_shl: 0x86,
  i64_shr_s: 0x87,
  i64_shr_u: 0x88,
  i64_rotl: 0x89,
  i64_rotr: 0x8a,
  i32_wrap_i64: 0xa7,
  i64_extend_i32_s: 0xac,
  i64_extend_i32_u: 0xad,
  i32_extend8_s: 0xc0,
  i32_extend16_s: 0xc1,
  i64_extend8_s: 0xc2,
  i64_extend16_s: 0xc3,
  i64_extend32_s: 0xc4,
} as const;

/** Growable byte buffer with LEB128 writers. */
export class ByteWriter {
  private buf: Uint8Array<ArrayBuffer> = new Uint8Array(256);
  length = 0;

  byte(b: number): this {
    if (this.length === this.buf.length) this.grow(1);
    this.buf[this.length++] = b;
    return this;
  }

  bytes(bs: ArrayLike<number>): this {
    if (this.length + bs.length > this.buf.length) this.grow(bs.length);
    this.buf.set(bs, this.length);
    this.length += bs.length;
    return this;
  }

  private grow(atLeast: number): void {
    const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.length + atLeast));
    bigger.set(this.buf.subarray(0, this.length));
    this.buf = bigger;
  }

  u32(value: number): this {
    let v = value >>> 0;
    do {
      const b = v & 0x7f;
      v >>>= 7;
      this.byte(v === 0 ? b : b | 0x80);
    } while (v !== 0);
    return this;
  }

  s32(value: number): this {
    let v = value | 0;
    for (;;) {
      const b = v & 0x7f;
      v >>= 7;
      const done = (v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0);
      this.byte(done ? b : b | 0x80);
      if (done) return this;
    }
  }

  /** Signed LEB128 of a 64-bit value; numbers in the int32 range (most constants) avoid BigInt. */
  s64(value: bigint | number): this {
    if (typeof value === 'number') {
      if (value === (value | 0)) return this.s32(value);
      value = BigInt(value);
    }
    let v = BigInt.asIntN(64, value);
    for (;;) {
      const b = Number(v & 0x7fn);
      v >>= 7n;
      const done = (v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0);
      this.byte(done ? b : b | 0x80);
      if (done) return this;
    }
  }

  name(text: string): this {
    const utf8 = new TextEncoder().encode(text);
    return this.u32(utf8.length).bytes(utf8);
  }

  toBytes(): Uint8Array<ArrayBuffer> {
    return this.buf.slice(0, this.length);
  }
}

export interface FuncType {
  params: ValType[];
  results: ValType[];
}

export interface FunctionBody {
  type: number;
  /** Local declarations beyond the parameters, in order. */
  locals: ValType[];
  code: Uint8Array;
}

/** Builds a module: function imports come first in the function index space, then defined functions. */
export class ModuleBuilder {
  private types: FuncType[] = [];
  private funcImports: { module: string; name: string; type: number }[] = [];
  private memoryImport?: {
    module: string;
    name: string;
    minPages: number;
    maxPages: number;
    shared: boolean;
  };
  private globals: { type: ValType; mutable: boolean; init: bigint }[] = [];
  private functions: FunctionBody[] = [];
  private exports: { name: string; kind: number; index: number }[] = [];

  type(params: ValType[], results: ValType[]): number {
    const key = `${params.join(',')}:${results.join(',')}`;
    const found = this.types.findIndex((t) => `${t.params.join(',')}:${t.results.join(',')}` === key);
    if (found >= 0) return found;
    this.types.push({ params, results });
    return this.types.length - 1;
  }

  importFunction(module: string, name: string, type: number): number {
    if (this.functions.length > 0) throw new Error('imports must be declared before functions');
    this.funcImports.push({ module, name, type });
    return this.funcImports.length - 1;
  }

  /** A shared memory (threads proposal) is declared with limits flag 0x03 and needs a maximum. */
  importMemory(module: string, name: string, minPages: number, maxPages: number, shared = false): void {
    this.memoryImport = { module, name, minPages, maxPages, shared };
  }

  global(type: ValType, mutable: boolean, init: bigint): number {
    this.globals.push({ type, mutable, init });
    return this.globals.length - 1;
  }

  /** Index the next defined function will have. */
  get nextFunctionIndex(): number {
    return this.funcImports.length + this.functions.length;
  }

  addFunction(body: FunctionBody): number {
    this.functions.push(body);
    return this.funcImports.length + this.functions.length - 1;
  }

  /** Replace the body of an already added function (lets callers reserve indexes first). */
  setFunction(index: number, body: FunctionBody): void {
    this.functions[index - this.funcImports.length] = body;
  }

  exportFunction(name: string, index: number): void {
    this.exports.push({ name, kind: 0x00, index });
  }

  exportGlobal(name: string, index: number): void {
    this.exports.push({ name, kind: 0x03, index });
  }

  build(): Uint8Array<ArrayBuffer> {
    const out = new ByteWriter().bytes([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
    const section = (id: number, write: (w: ByteWriter) => void) => {
      const w = new ByteWriter();
      write(w);
      out.byte(id).u32(w.length).bytes(w.toBytes());
    };
    section(1, (w) => {
      w.u32(this.types.length);
      for (const t of this.types) {
        w.byte(0x60).u32(t.params.length).bytes(t.params).u32(t.results.length).bytes(t.results);
      }
    });
    section(2, (w) => {
      w.u32(this.funcImports.length + (this.memoryImport ? 1 : 0));
      for (const imp of this.funcImports) w.name(imp.module).name(imp.name).byte(0x00).u32(imp.type);
      if (this.memoryImport) {
        const m = this.memoryImport;
        w.name(m.module)
          .name(m.name)
          .byte(0x02)
          .byte(m.shared ? 0x03 : 0x01)
          .u32(m.minPages)
          .u32(m.maxPages);
      }
    });
    section(3, (w) => {
      w.u32(this.functions.length);
      for (const f of this.functions) w.u32(f.type);
    });
    if (this.globals.length > 0) {
      section(6, (w) => {
        w.u32(this.globals.length);
        for (const g of this.globals) {
          w.byte(g.type).byte(g.mutable ? 1 : 0);
          if (g.type === I32) w.byte(Op.i32_const).s32(Number(g.init));
          else w.byte(Op.i64_const).s64(g.init);
          w.byte(Op.end);
        }
      });
    }
    section(7, (w) => {
      w.u32(this.exports.length);
      for (const e of this.exports) w.name(e.name).byte(e.kind).u32(e.index);
    });
    section(10, (w) => {
      w.u32(this.functions.length);
      for (const f of this.functions) {
        const body = new ByteWriter();
        // Run-length encode local declarations.
        const groups: [number, ValType][] = [];
        for (const t of f.locals) {
          const last = groups[groups.length - 1];
          if (last && last[1] === t) last[0]++;
          else groups.push([1, t]);
        }
        body.u32(groups.length);
        for (const [n, t] of groups) body.u32(n).byte(t);
        body.bytes(f.code);
        w.u32(body.length).bytes(body.toBytes());
      }
    });
    return out.toBytes();
  }
}
