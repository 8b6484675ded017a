/**
 * NVMe/TCP PDUs as plain data, their encoders (to a list of buffers, so large data is never copied)
 * and decoders (from a `RawPdu` that the framer has already delimited and checked).
 */
import {
  DIGEST_BYTES,
  FatalErrorStatus,
  MAX_TERM_REQ_ERROR_HEADER_BYTES,
  PDU_HEADER_BYTES,
  PduFlags,
  PduType,
} from './constants.js';
import { crc32c } from './crc32c.js';
import { PduError } from './errors.js';
import { type Cqe, decodeCqe, decodeSqe, encodeCqe, encodeSqe, type Sqe } from './sqe.js';

export interface ICReqPdu {
  type: typeof PduType.ICReq;
  pfv: number;
  /** Host PDU data alignment, 0's based in dwords: C2H data must start at a multiple of (hpda + 1) * 4. */
  hpda: number;
  /** DigestEnable bits the host asks for. */
  dgst: number;
  /** Maximum outstanding R2Ts per command, 0's based. */
  maxr2t: number;
}

export interface ICRespPdu {
  type: typeof PduType.ICResp;
  pfv: number;
  /** Controller PDU data alignment, 0's based in dwords. */
  cpda: number;
  /** DigestEnable bits the controller granted. */
  dgst: number;
  maxH2CDataBytes: number;
}

export interface TermReqPdu {
  type: typeof PduType.H2CTermReq | typeof PduType.C2HTermReq;
  /** Fatal error status. */
  fes: number;
  /** Fatal error information: byte offset of the offending field, or 0. */
  fei: number;
  /** The header of the PDU in error (at most 128 bytes). */
  errorHeader: Buffer;
}

export interface CapsuleCmdPdu {
  type: typeof PduType.CapsuleCmd;
  sqe: Sqe;
  /** In-capsule data, or null. */
  data: Buffer | null;
}

export interface CapsuleRespPdu {
  type: typeof PduType.CapsuleResp;
  cqe: Cqe;
}

export interface DataPdu {
  type: typeof PduType.H2CData | typeof PduType.C2HData;
  /** Command capsule CID. */
  cccid: number;
  /** Transfer tag (from the R2T for H2C data; 0 for C2H). */
  ttag: number;
  /** Offset of this data in the command's data buffer. */
  datao: number;
  last: boolean;
  /** C2H only: no CapsuleResp follows. */
  success: boolean;
  data: Buffer;
}

export interface R2TPdu {
  type: typeof PduType.R2T;
  cccid: number;
  ttag: number;
  r2to: number;
  r2tl: number;
}

export type Pdu = ICReqPdu | ICRespPdu | TermReqPdu | CapsuleCmdPdu | CapsuleRespPdu | DataPdu | R2TPdu;

/** A delimited PDU with digests verified and removed. */
export interface RawPdu {
  type: number;
  flags: number;
  hlen: number;
  pdo: number;
  plen: number;
  /** Exactly `hlen` bytes, common header included. */
  header: Buffer;
  /** The data (or TermReq error header), without padding or digest; null if none. */
  data: Buffer | null;
  /** False when the data digest did not match (the PDU is otherwise usable for error reporting). */
  dataDigestOk: boolean;
}

export interface DigestOptions {
  headerDigest: boolean;
  dataDigest: boolean;
  /** Data alignment the receiver asked for (HPDA/CPDA + 1) * 4; 0 or 4 means none. */
  pdoAlignBytes?: number;
}

const NO_DIGESTS: DigestOptions = { headerDigest: false, dataDigest: false };

/** Whether a PDU type can carry header/data digests at all (ICReq/ICResp/TermReq never do). */
export const pduTypeHasDigests = (type: number): boolean =>
  type !== PduType.ICReq && type !== PduType.ICResp && type !== PduType.H2CTermReq && type !== PduType.C2HTermReq;

/** Encode a PDU as a list of buffers to be written in order (header [+ digest] [+ pad], data, data digest). */
export function encodePdu(pdu: Pdu, options: DigestOptions = NO_DIGESTS): Buffer[] {
  const hlen = PDU_HEADER_BYTES[pdu.type];
  const digests = pduTypeHasDigests(pdu.type);
  const hdgst = digests && options.headerDigest;
  let data: Buffer | null = null;
  const header = Buffer.alloc(hlen);
  const v = header;
  switch (pdu.type) {
    case PduType.ICReq:
      v.writeUInt16LE(pdu.pfv, 8);
      v[10] = pdu.hpda;
      v[11] = pdu.dgst;
      v.writeUInt32LE(pdu.maxr2t >>> 0, 12);
      break;
    case PduType.ICResp:
      v.writeUInt16LE(pdu.pfv, 8);
      v[10] = pdu.cpda;
      v[11] = pdu.dgst;
      v.writeUInt32LE(pdu.maxH2CDataBytes >>> 0, 12);
      break;
    case PduType.H2CTermReq:
    case PduType.C2HTermReq:
      v.writeUInt16LE(pdu.fes, 8);
      v.writeUInt32LE(pdu.fei >>> 0, 10);
      data = pdu.errorHeader.subarray(0, MAX_TERM_REQ_ERROR_HEADER_BYTES);
      break;
    case PduType.CapsuleCmd:
      encodeSqe(pdu.sqe, header, 8);
      data = pdu.data && pdu.data.length > 0 ? pdu.data : null;
      break;
    case PduType.CapsuleResp:
      encodeCqe(pdu.cqe, header, 8);
      break;
    case PduType.H2CData:
    case PduType.C2HData:
      v.writeUInt16LE(pdu.cccid, 8);
      v.writeUInt16LE(pdu.ttag, 10);
      v.writeUInt32LE(pdu.datao >>> 0, 12);
      v.writeUInt32LE(pdu.data.length, 16);
      data = pdu.data;
      break;
    case PduType.R2T:
      v.writeUInt16LE(pdu.cccid, 8);
      v.writeUInt16LE(pdu.ttag, 10);
      v.writeUInt32LE(pdu.r2to >>> 0, 12);
      v.writeUInt32LE(pdu.r2tl >>> 0, 16);
      break;
  }
  let flags = 0;
  if (pdu.type === PduType.H2CData || pdu.type === PduType.C2HData) {
    if (pdu.last) flags |= PduFlags.LAST_PDU;
    if (pdu.success) flags |= PduFlags.SUCCESS;
  }
  const isTerm = pdu.type === PduType.H2CTermReq || pdu.type === PduType.C2HTermReq;
  const ddgst = digests && options.dataDigest && data !== null;
  if (hdgst) flags |= PduFlags.HDGSTF;
  if (ddgst) flags |= PduFlags.DDGSTF;
  const headerEnd = hlen + (hdgst ? DIGEST_BYTES : 0);
  let pdo = 0;
  let pad = 0;
  if (data !== null && !isTerm) {
    const align = options.pdoAlignBytes ?? 0;
    pdo = align > 4 ? Math.ceil(headerEnd / align) * align : headerEnd;
    pad = pdo - headerEnd;
  }
  const plen = headerEnd + pad + (data?.length ?? 0) + (ddgst ? DIGEST_BYTES : 0);
  header[0] = pdu.type;
  header[1] = flags;
  header[2] = hlen;
  header[3] = pdo;
  header.writeUInt32LE(plen, 4);
  const head = headerEnd + pad === hlen ? header : Buffer.alloc(headerEnd + pad);
  if (head !== header) {
    header.copy(head);
    if (hdgst) head.writeUInt32LE(crc32c(header), hlen);
  }
  const out: Buffer[] = [head];
  if (data !== null) {
    out.push(data);
    if (ddgst) {
      const d = Buffer.allocUnsafe(DIGEST_BYTES);
      d.writeUInt32LE(crc32c(data), 0);
      out.push(d);
    }
  }
  return out;
}

/** Encode to one buffer (tests, small PDUs). */
export const encodePduBytes = (pdu: Pdu, options?: DigestOptions): Buffer => Buffer.concat(encodePdu(pdu, options));

/** Decode a framed PDU into its typed form. Throws `PduError` naming the field. */
export function decodePdu(raw: RawPdu): Pdu {
  const h = raw.header;
  switch (raw.type) {
    case PduType.ICReq:
      return { type: PduType.ICReq, pfv: h.readUInt16LE(8), hpda: h[10], dgst: h[11], maxr2t: h.readUInt32LE(12) };
    case PduType.ICResp:
      return { type: PduType.ICResp, pfv: h.readUInt16LE(8), cpda: h[10], dgst: h[11], maxH2CDataBytes: h.readUInt32LE(12) };
    case PduType.H2CTermReq:
    case PduType.C2HTermReq:
      return {
        type: raw.type,
        fes: h.readUInt16LE(8),
        fei: h.readUInt32LE(10),
        errorHeader: raw.data ?? Buffer.alloc(0),
      };
    case PduType.CapsuleCmd:
      return { type: PduType.CapsuleCmd, sqe: decodeSqe(h, 8), data: raw.data };
    case PduType.CapsuleResp:
      return { type: PduType.CapsuleResp, cqe: decodeCqe(h, 8) };
    case PduType.H2CData:
    case PduType.C2HData: {
      const datal = h.readUInt32LE(16);
      const data = raw.data ?? Buffer.alloc(0);
      if (datal !== data.length || datal === 0) {
        throw new PduError(
          'datal',
          `does not match the ${data.length} data bytes`,
          FatalErrorStatus.InvalidPduHeaderField,
          16,
          datal,
        );
      }
      return {
        type: raw.type,
        cccid: h.readUInt16LE(8),
        ttag: h.readUInt16LE(10),
        datao: h.readUInt32LE(12),
        last: (raw.flags & PduFlags.LAST_PDU) !== 0,
        success: (raw.flags & PduFlags.SUCCESS) !== 0,
        data,
      };
    }
    case PduType.R2T:
      return {
        type: PduType.R2T,
        cccid: h.readUInt16LE(8),
        ttag: h.readUInt16LE(10),
        r2to: h.readUInt32LE(12),
        r2tl: h.readUInt32LE(16),
      };
    default:
      throw new PduError('type', 'unknown PDU type', FatalErrorStatus.InvalidPduHeaderField, 0, raw.type);
  }
}
