/** Field values of the RFC 9669 encoding. Names follow the RFC. */

export const CLASS_LD = 0x00;
export const CLASS_LDX = 0x01;
export const CLASS_ST = 0x02;
export const CLASS_STX = 0x03;
export const CLASS_ALU = 0x04;
export const CLASS_JMP = 0x05;
export const CLASS_JMP32 = 0x06;
export const CLASS_ALU64 = 0x07;

export const SRC_K = 0x00;
export const SRC_X = 0x08;

export const SIZE_W = 0x00;
export const SIZE_H = 0x08;
export const SIZE_B = 0x10;
export const SIZE_DW = 0x18;

export const MODE_IMM = 0x00;
export const MODE_ABS = 0x20;
export const MODE_IND = 0x40;
export const MODE_MEM = 0x60;
export const MODE_MEMSX = 0x80;
export const MODE_ATOMIC = 0xc0;

export const ALU_CODES = {
  add: 0x00,
  sub: 0x10,
  mul: 0x20,
  div: 0x30,
  or: 0x40,
  and: 0x50,
  lsh: 0x60,
  rsh: 0x70,
  neg: 0x80,
  mod: 0x90,
  xor: 0xa0,
  mov: 0xb0,
  arsh: 0xc0,
  end: 0xd0,
} as const;

export const JMP_CODES = {
  ja: 0x00,
  eq: 0x10,
  gt: 0x20,
  ge: 0x30,
  set: 0x40,
  ne: 0x50,
  sgt: 0x60,
  sge: 0x70,
  call: 0x80,
  exit: 0x90,
  lt: 0xa0,
  le: 0xb0,
  slt: 0xc0,
  sle: 0xd0,
} as const;

export const ATOMIC_FETCH = 0x01;
export const ATOMIC_CODES = {
  add: 0x00,
  or: 0x40,
  and: 0x50,
  xor: 0xa0,
  xchg: 0xe0,
  cmpxchg: 0xf0,
} as const;

export const OP_LDDW = CLASS_LD | MODE_IMM | SIZE_DW; // 0x18
export const OP_CALL = CLASS_JMP | JMP_CODES.call; // 0x85
export const OP_CALLX = CLASS_JMP | JMP_CODES.call | SRC_X; // 0x8d
export const OP_EXIT = CLASS_JMP | JMP_CODES.exit; // 0x95

export const SIZE_BYTES: Record<number, 1 | 2 | 4 | 8> = {
  [SIZE_W]: 4,
  [SIZE_H]: 2,
  [SIZE_B]: 1,
  [SIZE_DW]: 8,
};
export const SIZE_FIELD: Record<1 | 2 | 4 | 8, number> = {
  1: SIZE_B,
  2: SIZE_H,
  4: SIZE_W,
  8: SIZE_DW,
};

/** Four fields of one 8-byte slot as on the wire (little-endian), with `offset` and `imm` signed. */
export interface RawSlot {
  opcode: number;
  dst: number;
  src: number;
  offset: number;
  imm: number;
}

export const INSTRUCTION_SIZE_BYTES = 8;
