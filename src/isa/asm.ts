/**
 * Assembler for the text syntax of the bpf_conformance suite. Two passes: the first sizes every
 * instruction and records labels, the second builds instructions with jump offsets resolved.
 */
import { AssembleError } from '../errors.js';
import {
  type AccessSize,
  type AluOp,
  type AtomicOp,
  type Instruction,
  type JumpCondition,
  LDDW_SOURCE_NAMES,
  type LddwSource,
  lddw,
  type Operand,
  type Register,
} from './instruction.js';

const ALU_OPS = new Set(['add', 'sub', 'mul', 'div', 'sdiv', 'or', 'and', 'lsh', 'rsh', 'mod', 'smod', 'xor', 'mov', 'arsh']);
const JUMP_CONDS = new Set(['eq', 'gt', 'ge', 'set', 'ne', 'sgt', 'sge', 'lt', 'le', 'slt', 'sle']);
const ATOMIC_OPS = new Set(['add', 'or', 'and', 'xor', 'xchg', 'cmpxchg']);
const SIZES: Record<string, AccessSize> = { b: 1, h: 2, w: 4, dw: 8 };
const LDDW_SOURCES = new Map(Object.entries(LDDW_SOURCE_NAMES).map(([k, v]) => [v, Number(k) as LddwSource]));

interface SourceLine {
  line: number;
  text: string;
  mnemonic: string;
  operands: string[];
}

class LineParser {
  constructor(private readonly src: SourceLine) {}

  fail(reason: string): never {
    throw new AssembleError(this.src.line, this.src.text, reason);
  }

  expectOperands(n: number): void {
    if (this.src.operands.length !== n) {
      this.fail(`${this.src.mnemonic} takes ${n} operand${n === 1 ? '' : 's'}, got ${this.src.operands.length}`);
    }
  }

  register(text: string): Register {
    const m = /^%r(\d+)$/.exec(text);
    if (!m) this.fail(`expected a register, got '${text}'`);
    const r = Number(m[1]);
    if (r > 10) this.fail(`invalid register %r${r}`);
    return r as Register;
  }

  /** A 32-bit immediate: decimal in [-2^31, 2^31), or hex up to 0xffffffff (a bit pattern). */
  imm32(text: string): number {
    const value = this.integer(text);
    const isHex = /^[-+]?0x/i.test(text);
    const ok = isHex ? value >= -0x80000000n && value <= 0xffffffffn : value >= -0x80000000n && value <= 0x7fffffffn;
    if (!ok) this.fail(`immediate ${text} does not fit in 32 bits`);
    return Number(BigInt.asIntN(32, value));
  }

  integer(text: string): bigint {
    if (!/^[-+]?(0x[0-9a-f]+|\d+)$/i.test(text)) this.fail(`expected a number, got '${text}'`);
    const negative = text.startsWith('-');
    const digits = text.replace(/^[-+]/, '');
    const value = BigInt(digits);
    return negative ? -value : value;
  }

  int16(text: string, what: string): number {
    const value = this.integer(text);
    if (value < -0x8000n || value > 0x7fffn) this.fail(`${what} ${text} does not fit in 16 bits`);
    return Number(value);
  }

  operand(text: string): Operand {
    return text.startsWith('%') ? { kind: 'reg', reg: this.register(text) } : { kind: 'imm', value: this.imm32(text) };
  }

  /** `[%rN]`, `[%rN+off]` or `[%rN-off]`. */
  memory(text: string): { reg: Register; offset: number } {
    const m = /^\[\s*(%r\d+)\s*(?:([-+])\s*(0x[0-9a-f]+|\d+))?\s*\]$/i.exec(text);
    if (!m) this.fail(`expected a memory operand like [%r1+8], got '${text}'`);
    const offset = m[2] ? this.int16(`${m[2]}${m[3]}`, 'offset') : 0;
    return { reg: this.register(m[1]), offset };
  }
}

function splitOperands(rest: string): string[] {
  const trimmed = rest.trim();
  if (trimmed === '') return [];
  return trimmed.split(',').map((s) => s.trim());
}

function tokenize(source: string): (SourceLine | { line: number; label: string; text: string })[] {
  const out: (SourceLine | { line: number; label: string; text: string })[] = [];
  source.split(/\r?\n/).forEach((raw, i) => {
    let text = raw.replace(/(#|\/\/|;).*$/, '').trim();
    const line = i + 1;
    while (true) {
      const m = /^([A-Za-z_.$][\w.$]*)\s*:\s*(.*)$/.exec(text);
      if (!m) break;
      out.push({ line, label: m[1], text: raw });
      text = m[2];
    }
    if (text === '') return;
    const m = /^(\S+)\s*(.*)$/.exec(text);
    if (!m) return;
    let mnemonic = m[1].toLowerCase();
    let rest = m[2];
    if (mnemonic === 'lock') {
      // `lock [fetch] op[32] [mem], %rN`: fold the modifiers into the mnemonic.
      const lm = /^((?:fetch\s+)?)(\w+)\s*(.*)$/i.exec(rest);
      if (!lm) {
        out.push({ line, text: raw, mnemonic: 'lock', operands: [] });
        return;
      }
      mnemonic = `lock ${lm[1].trim() ? 'fetch ' : ''}${lm[2].toLowerCase()}`;
      rest = lm[3];
    }
    out.push({ line, text: raw, mnemonic, operands: splitOperands(rest) });
  });
  return out;
}

function slotsOf(mnemonic: string): number {
  return mnemonic === 'lddw' ? 2 : 1;
}

/** Assemble text into instructions. Throws `AssembleError` with the line number. */
export function assemble(source: string): Instruction[] {
  const items = tokenize(source);
  const labels = new Map<string, number>();
  let pc = 0;
  let firstExit: number | undefined;
  for (const item of items) {
    if ('label' in item) {
      if (labels.has(item.label)) throw new AssembleError(item.line, item.text, `label '${item.label}' defined twice`);
      labels.set(item.label, pc);
    } else {
      if (item.mnemonic === 'exit' && firstExit === undefined) firstExit = pc;
      pc += slotsOf(item.mnemonic);
    }
  }
  const out: Instruction[] = [];
  pc = 0;
  for (const item of items) {
    if ('label' in item) continue;
    const p: LineParser = new LineParser(item);
    const target = (text: string): number => {
      if (/^[-+]?(0x[0-9a-f]+|\d+)$/i.test(text)) return Number(p.integer(text));
      // The conformance suite jumps to `exit` without defining it: it names the first exit.
      const at = labels.get(text) ?? (text === 'exit' ? firstExit : undefined);
      if (at === undefined) p.fail(`unknown label '${text}'`);
      return at - pc - 1;
    };
    out.push(assembleLine(item, p, target));
    pc += slotsOf(item.mnemonic);
  }
  if (out.length === 0) throw new AssembleError(1, '', 'program has no instructions');
  return out;
}

function assembleLine(src: SourceLine, p: LineParser, target: (text: string) => number): Instruction {
  const { mnemonic: m, operands: ops } = src;
  const jumpOffset = (text: string) => {
    const offset = target(text);
    if (offset < -0x8000 || offset > 0x7fff) p.fail(`jump offset ${offset} does not fit in 16 bits (use ja32)`);
    return offset;
  };

  if (m === 'exit') {
    p.expectOperands(0);
    return { kind: 'exit' };
  }
  if (m === 'ja' || m === 'ja32') {
    p.expectOperands(1);
    return m === 'ja'
      ? { kind: 'ja', offset: jumpOffset(ops[0]), wide: false }
      : { kind: 'ja', offset: target(ops[0]), wide: true };
  }
  if (m === 'call') {
    if (ops.length === 1 && ops[0].startsWith('%')) return { kind: 'callx', reg: p.register(ops[0]) };
    p.expectOperands(1);
    const words = ops[0].split(/\s+/);
    if (words.length === 2 && words[0] === 'local') return { kind: 'call', target: 'local', imm: target(words[1]) };
    if (words.length === 2 && words[0] === 'kfunc') return { kind: 'call', target: 'kfunc', imm: p.imm32(words[1]) };
    if (words.length !== 1) p.fail(`bad call target '${ops[0]}'`);
    return { kind: 'call', target: 'helper', imm: p.imm32(words[0]) };
  }
  if (m === 'lddw') {
    p.expectOperands(ops.length === 3 ? 3 : 2);
    const dst = p.register(ops[0]);
    const words = ops[1].split(/\s+/);
    if (words.length === 2) {
      const source = LDDW_SOURCES.get(words[0]);
      if (source === undefined) p.fail(`unknown lddw source '${words[0]}'`);
      return {
        kind: 'lddw',
        dst,
        source,
        imm: p.imm32(words[1]),
        nextImm: ops.length === 3 ? p.imm32(ops[2]) : 0,
      };
    }
    if (ops.length !== 2) p.fail('lddw with an immediate takes 2 operands');
    const value = p.integer(ops[1]);
    if (value < -(1n << 63n) || value >= 1n << 64n) p.fail(`immediate ${ops[1]} does not fit in 64 bits`);
    return lddw(dst, BigInt.asUintN(64, value));
  }
  if (m.startsWith('lock')) {
    const lm = /^lock (fetch )?(\w+?)(32)?$/.exec(m);
    if (!lm || !ATOMIC_OPS.has(lm[2]))
      p.fail(ops.length === 0 ? 'Invalid number of operands for lock' : `unknown atomic operation '${m}'`);
    p.expectOperands(2);
    const op = lm[2] as AtomicOp;
    const mem = p.memory(ops[0]);
    return {
      kind: 'atomic',
      size: lm[3] ? 4 : 8,
      op,
      fetch: lm[1] !== undefined || op === 'xchg' || op === 'cmpxchg',
      dst: mem.reg,
      src: p.register(ops[1]),
      offset: mem.offset,
    };
  }
  let mm = /^ldx(s?)(b|h|w|dw)$/.exec(m);
  if (mm) {
    p.expectOperands(2);
    if (mm[1] && mm[2] === 'dw') p.fail('there is no sign-extending 64-bit load');
    const mem = p.memory(ops[1]);
    return {
      kind: 'load',
      size: SIZES[mm[2]],
      signed: mm[1] === 's',
      dst: p.register(ops[0]),
      src: mem.reg,
      offset: mem.offset,
    };
  }
  mm = /^(stx?)(b|h|w|dw)$/.exec(m);
  if (mm) {
    p.expectOperands(2);
    const mem = p.memory(ops[0]);
    const src: Operand = mm[1] === 'stx' ? { kind: 'reg', reg: p.register(ops[1]) } : { kind: 'imm', value: p.imm32(ops[1]) };
    return {
      kind: 'store',
      size: SIZES[mm[2]],
      dst: mem.reg,
      offset: mem.offset,
      src,
    };
  }
  mm = /^(le|be|b?swap)(16|32|64)$/.exec(m);
  if (mm) {
    p.expectOperands(1);
    const order = mm[1] === 'le' ? 'le' : mm[1] === 'be' ? 'be' : 'swap';
    return {
      kind: 'endian',
      order,
      bits: Number(mm[2]) as 16 | 32 | 64,
      dst: p.register(ops[0]),
    };
  }
  mm = /^j(\w+?)(32)?$/.exec(m);
  if (mm && JUMP_CONDS.has(mm[1])) {
    p.expectOperands(3);
    return {
      kind: 'jump',
      width: mm[2] ? 32 : 64,
      cond: mm[1] as JumpCondition,
      dst: p.register(ops[0]),
      src: p.operand(ops[1]),
      offset: jumpOffset(ops[2]),
    };
  }
  mm = /^neg(32|64)?$/.exec(m);
  if (mm) {
    p.expectOperands(1);
    return {
      kind: 'alu',
      width: mm[1] === '32' ? 32 : 64,
      op: 'neg',
      dst: p.register(ops[0]),
      src: { kind: 'imm', value: 0 },
    };
  }
  mm = /^movsx(8|16|32)(32|64)$/.exec(m);
  if (mm) {
    p.expectOperands(2);
    if (mm[1] === '32' && mm[2] === '32') p.fail('movsx3232 does not exist');
    return {
      kind: 'alu',
      width: mm[2] === '32' ? 32 : 64,
      op: `movsx${mm[1]}` as AluOp,
      dst: p.register(ops[0]),
      src: { kind: 'reg', reg: p.register(ops[1]) },
    };
  }
  mm = /^([a-z]+?)(32|64)?$/.exec(m);
  if (mm && ALU_OPS.has(mm[1])) {
    p.expectOperands(2);
    return {
      kind: 'alu',
      width: mm[2] === '32' ? 32 : 64,
      op: mm[1] as AluOp,
      dst: p.register(ops[0]),
      src: p.operand(ops[1]),
    };
  }
  return p.fail(`unknown mnemonic '${m}'`);
}
