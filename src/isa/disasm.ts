/**
 * Text form of instructions, in the syntax of the bpf_conformance suite (`mov32 %r0, 1`,
 * `ldxdw %r0, [%r1+8]`, `lock fetch add32 [%r10-4], %r1`). `assemble(disassemble(p))` is `p`.
 */
import { type Instruction, LDDW_SOURCE_NAMES, lddwValue, type Operand, type Program } from './instruction.js';

const SIZE_SUFFIX = { 1: 'b', 2: 'h', 4: 'w', 8: 'dw' } as const;

function formatImm(value: number): string {
  // Small values read best in decimal; bit patterns in hex (as the u32 the field holds).
  return value > -0x10000 && value < 0x10000 ? String(value) : `0x${(value >>> 0).toString(16)}`;
}

function formatOperand(o: Operand): string {
  return o.kind === 'reg' ? `%r${o.reg}` : formatImm(o.value);
}

function formatOffset(offset: number): string {
  return offset >= 0 ? `+${offset}` : String(offset);
}

function formatMem(reg: number, offset: number): string {
  return offset === 0 ? `[%r${reg}]` : `[%r${reg}${formatOffset(offset)}]`;
}

/** One instruction as text. Jump targets are printed as slot offsets (`+3`) unless `label` gives a name. */
export function formatInstruction(insn: Instruction, label?: (offset: number) => string | undefined): string {
  const target = (offset: number) => label?.(offset) ?? formatOffset(offset);
  switch (insn.kind) {
    case 'alu': {
      const suffix = insn.width === 32 ? '32' : '';
      if (insn.op === 'neg') return `neg${suffix} %r${insn.dst}`;
      if (insn.op.startsWith('movsx')) return `${insn.op}${insn.width} %r${insn.dst}, ${formatOperand(insn.src)}`;
      return `${insn.op}${suffix} %r${insn.dst}, ${formatOperand(insn.src)}`;
    }
    case 'endian':
      return `${insn.order === 'swap' ? 'bswap' : insn.order}${insn.bits} %r${insn.dst}`;
    case 'ja':
      return `${insn.wide ? 'ja32' : 'ja'} ${target(insn.offset)}`;
    case 'jump':
      return `j${insn.cond}${insn.width === 32 ? '32' : ''} %r${insn.dst}, ${formatOperand(insn.src)}, ${target(insn.offset)}`;
    case 'call':
      if (insn.target === 'helper') return `call ${insn.imm}`;
      if (insn.target === 'kfunc') return `call kfunc ${insn.imm}`;
      return `call local ${target(insn.imm)}`;
    case 'callx':
      return `call %r${insn.reg}`;
    case 'exit':
      return 'exit';
    case 'lddw':
      if (insn.source === 0) return `lddw %r${insn.dst}, 0x${lddwValue(insn).toString(16)}`;
      return `lddw %r${insn.dst}, ${LDDW_SOURCE_NAMES[insn.source]} ${insn.imm}${insn.nextImm !== 0 ? `, ${insn.nextImm}` : ''}`;
    case 'load':
      return `ldx${insn.signed ? 's' : ''}${SIZE_SUFFIX[insn.size]} %r${insn.dst}, ${formatMem(insn.src, insn.offset)}`;
    case 'store':
      return `${insn.src.kind === 'reg' ? 'stx' : 'st'}${SIZE_SUFFIX[insn.size]} ${formatMem(insn.dst, insn.offset)}, ${formatOperand(insn.src)}`;
    case 'atomic': {
      const fetch = insn.fetch && insn.op !== 'xchg' && insn.op !== 'cmpxchg' ? 'fetch ' : '';
      return `lock ${fetch}${insn.op}${insn.size === 4 ? '32' : ''} ${formatMem(insn.dst, insn.offset)}, %r${insn.src}`;
    }
  }
}

/** A whole program, one instruction per line. With `labels`, jump targets get names `L<pc>`. */
export function disassemble(program: Program, options: { labels?: boolean; pcs?: boolean } = {}): string {
  const pcs: number[] = [];
  let pc = 0;
  for (const insn of program) {
    pcs.push(pc);
    pc += insn.kind === 'lddw' ? 2 : 1;
  }
  const targets = new Set<number>();
  if (options.labels) {
    program.forEach((insn, i) => {
      if (insn.kind === 'ja' || insn.kind === 'jump') targets.add(pcs[i] + insn.offset + 1);
      if (insn.kind === 'call' && insn.target === 'local') targets.add(pcs[i] + insn.imm + 1);
    });
  }
  const lines: string[] = [];
  program.forEach((insn, i) => {
    const here = pcs[i];
    if (targets.has(here)) lines.push(`L${here}:`);
    const label = options.labels
      ? (offset: number) => (targets.has(here + offset + 1) ? `L${here + offset + 1}` : undefined)
      : undefined;
    const text = formatInstruction(insn, label);
    lines.push(options.pcs ? `${String(here).padStart(5)}: ${text}` : text);
  });
  return `${lines.join('\n')}\n`;
}
