/**
 * Submission and completion queue entries as plain data, with their 64- and 16-byte little-endian
 * encodings. Numbers only (no BigInt): 64-bit fields are split into Lo/Hi halves.
 */
import { CQE_BYTES, SQE_BYTES } from './constants.js';

export interface Sqe {
  opcode: number;
  /** Byte 1: FUSE (1:0), PSDT (7:6). */
  flags: number;
  /** Command identifier, 16 bits (Linux puts a generation counter in the upper bits). */
  cid: number;
  /** Namespace id; for fabrics commands byte 4 holds FCTYPE. */
  nsid: number;
  cdw2: number;
  cdw3: number;
  mptrLo: number;
  mptrHi: number;
  sglAddressLo: number;
  sglAddressHi: number;
  sglLength: number;
  /** SGL descriptor type and subtype, byte 15 of the descriptor (SQE byte 39). */
  sglType: number;
  cdw10: number;
  cdw11: number;
  cdw12: number;
  cdw13: number;
  cdw14: number;
  cdw15: number;
}

export interface Cqe {
  dw0: number;
  dw1: number;
  sqhd: number;
  sqid: number;
  cid: number;
  /** The 16-bit status field: phase (bit 0), SC (8:1), SCT (11:9), CRD, M (14), DNR (15). */
  status: number;
}

/** An SQE with every field zero except those given. */
export function makeSqe(fields: Partial<Sqe> & Pick<Sqe, 'opcode'>): Sqe {
  return {
    flags: 0,
    cid: 0,
    nsid: 0,
    cdw2: 0,
    cdw3: 0,
    mptrLo: 0,
    mptrHi: 0,
    sglAddressLo: 0,
    sglAddressHi: 0,
    sglLength: 0,
    sglType: 0,
    cdw10: 0,
    cdw11: 0,
    cdw12: 0,
    cdw13: 0,
    cdw14: 0,
    cdw15: 0,
    ...fields,
  };
}

export function encodeSqe(sqe: Sqe, out: Buffer = Buffer.alloc(SQE_BYTES), at = 0): Buffer {
  out.fill(0, at, at + SQE_BYTES);
  out[at] = sqe.opcode;
  out[at + 1] = sqe.flags;
  out.writeUInt16LE(sqe.cid, at + 2);
  out.writeUInt32LE(sqe.nsid >>> 0, at + 4);
  out.writeUInt32LE(sqe.cdw2 >>> 0, at + 8);
  out.writeUInt32LE(sqe.cdw3 >>> 0, at + 12);
  out.writeUInt32LE(sqe.mptrLo >>> 0, at + 16);
  out.writeUInt32LE(sqe.mptrHi >>> 0, at + 20);
  out.writeUInt32LE(sqe.sglAddressLo >>> 0, at + 24);
  out.writeUInt32LE(sqe.sglAddressHi >>> 0, at + 28);
  out.writeUInt32LE(sqe.sglLength >>> 0, at + 32);
  out[at + 39] = sqe.sglType;
  out.writeUInt32LE(sqe.cdw10 >>> 0, at + 40);
  out.writeUInt32LE(sqe.cdw11 >>> 0, at + 44);
  out.writeUInt32LE(sqe.cdw12 >>> 0, at + 48);
  out.writeUInt32LE(sqe.cdw13 >>> 0, at + 52);
  out.writeUInt32LE(sqe.cdw14 >>> 0, at + 56);
  out.writeUInt32LE(sqe.cdw15 >>> 0, at + 60);
  return out;
}

export function decodeSqe(b: Uint8Array, at = 0): Sqe {
  const v = new DataView(b.buffer, b.byteOffset + at, SQE_BYTES);
  return {
    opcode: b[at],
    flags: b[at + 1],
    cid: v.getUint16(2, true),
    nsid: v.getUint32(4, true),
    cdw2: v.getUint32(8, true),
    cdw3: v.getUint32(12, true),
    mptrLo: v.getUint32(16, true),
    mptrHi: v.getUint32(20, true),
    sglAddressLo: v.getUint32(24, true),
    sglAddressHi: v.getUint32(28, true),
    sglLength: v.getUint32(32, true),
    sglType: b[at + 39],
    cdw10: v.getUint32(40, true),
    cdw11: v.getUint32(44, true),
    cdw12: v.getUint32(48, true),
    cdw13: v.getUint32(52, true),
    cdw14: v.getUint32(56, true),
    cdw15: v.getUint32(60, true),
  };
}

export function encodeCqe(cqe: Cqe, out: Buffer = Buffer.alloc(CQE_BYTES), at = 0): Buffer {
  out.writeUInt32LE(cqe.dw0 >>> 0, at);
  out.writeUInt32LE(cqe.dw1 >>> 0, at + 4);
  out.writeUInt16LE(cqe.sqhd, at + 8);
  out.writeUInt16LE(cqe.sqid, at + 10);
  out.writeUInt16LE(cqe.cid, at + 12);
  out.writeUInt16LE(cqe.status, at + 14);
  return out;
}

export function decodeCqe(b: Uint8Array, at = 0): Cqe {
  const v = new DataView(b.buffer, b.byteOffset + at, CQE_BYTES);
  return {
    dw0: v.getUint32(0, true),
    dw1: v.getUint32(4, true),
    sqhd: v.getUint16(8, true),
    sqid: v.getUint16(10, true),
    cid: v.getUint16(12, true),
    status: v.getUint16(14, true),
  };
}

/** The CQE status field for a status code type and code (phase bit 0, as on fabrics). */
export function makeStatus(sct: number, sc: number, dnr = false): number {
  return ((sc & 0xff) << 1) | ((sct & 0x7) << 9) | (dnr ? 0x8000 : 0);
}
export const statusSc = (status: number): number => (status >>> 1) & 0xff;
export const statusSct = (status: number): number => (status >>> 9) & 0x7;
export const statusDnr = (status: number): boolean => (status & 0x8000) !== 0;
/** True when SCT and SC are both zero. */
export const statusOk = (status: number): boolean => (status & 0x0ffe) === 0;

/** Starting LBA of a Read/Write/Write Zeroes (CDW10-11) as a number; exact up to 2^53. */
export const sqeSlba = (sqe: Sqe): number => sqe.cdw11 * 0x1_0000_0000 + sqe.cdw10;
/** Number of logical blocks of a Read/Write/Write Zeroes (CDW12 bits 15:0 are 0's based). */
export const sqeNlb = (sqe: Sqe): number => (sqe.cdw12 & 0xffff) + 1;
/** FCTYPE of a fabrics command (SQE byte 4). */
export const sqeFctype = (sqe: Sqe): number => sqe.nsid & 0xff;
