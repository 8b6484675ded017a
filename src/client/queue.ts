/**
 * One host-side queue = one TCP connection: ICReq/ICResp, command submission with CID allocation,
 * in-capsule or R2T/H2CData data out, C2HData data in, digests, and a bound on outstanding commands.
 */
import { connect as netConnect, type Socket } from 'node:net';
import {
  DigestEnable,
  FatalErrorStatus,
  GenericStatus,
  MIN_MAX_H2C_DATA_BYTES,
  PduFlags,
  PduType,
  SGL_IN_CAPSULE,
  SGL_TRANSPORT,
  SQE_FLAGS_SGL,
  StatusCodeType,
} from '../protocol/constants.js';
import { NvmeStatusError, PduError, TransportError } from '../protocol/errors.js';
import { PduFramer } from '../protocol/framer.js';
import { type DataPdu, decodePdu, type Pdu, type R2TPdu } from '../protocol/pdu.js';
import { PduWriter } from '../protocol/pdu-writer.js';
import { type Cqe, type Sqe, statusDnr, statusOk, statusSc, statusSct } from '../protocol/sqe.js';

export interface QueueOptions {
  host: string;
  port: number;
  qid: number;
  /** Commands outstanding at most (SQSIZE + 1). */
  depth: number;
  headerDigest: boolean;
  dataDigest: boolean;
  /** Largest PDU accepted from the target. */
  maxPduBytes: number;
  /** A command without a response after this long fails and the queue is closed. */
  commandTimeoutMs: number;
  connectTimeoutMs: number;
}

export interface CommandResult {
  cqe: Cqe;
  data: Buffer | null;
}

export interface CommandData {
  /** Data to send to the target. */
  dataOut?: Buffer;
  /** Bytes expected back from the target (at most, with `variableDataIn`). */
  dataInBytes?: number;
  /** The target may send less than `dataInBytes`: resolve with only what arrived (program output). */
  variableDataIn?: boolean;
}

interface Pending {
  sqe: Sqe;
  resolve: (r: CommandResult) => void;
  reject: (e: Error) => void;
  dataOut: Buffer | null;
  /**
   * The data received. With `variableDataIn` it is allocated when the first C2HData arrives: to
   * the size of that PDU when it is the only one (a program's output usually is, and a small one
   * then comes from Node's buffer pool), else to `dataInCapacity`. Allocating the host's whole
   * offer (256 KiB by default) per execution cost more client CPU in garbage collection than the
   * rest of the command.
   */
  dataIn: Buffer | null;
  /** Bytes the command's buffer offers (the SGL length). */
  dataInCapacity: number;
  dataInReceived: number;
  /** One past the furthest byte received. */
  dataInEnd: number;
  variableDataIn: boolean;
  dataError: Error | null;
  /** performance.now() at submission: the queue's one timer fails commands older than the timeout. */
  submittedMs: number;
}

export class HostQueue {
  private readonly framer: PduFramer;
  /** Every PDU we send: encoded into a reused arena, one socket write per event-loop turn. */
  private readonly out: PduWriter;
  /** One timer per queue (not per command) for command timeouts. */
  private readonly timeoutTimer: NodeJS.Timeout;
  private readonly pending = new Map<number, Pending>();
  private readonly slotGenerations: Uint16Array;
  private readonly freeSlots: number[];
  private readonly slotBits: number;
  private readonly waiters: (() => void)[] = [];
  private closedError: Error | null = null;
  private icResp: ((pdu: Pdu) => void) | null = null;
  maxH2CDataBytes = MIN_MAX_H2C_DATA_BYTES;
  /** Largest in-capsule data we may send (admin: 8 KiB; I/O: from IOCCSZ). */
  inCapsuleBytes = 0;
  digestsGranted = { header: false, data: false };
  /** Commands submitted on this queue: each one is a round trip (capsule out, response back). */
  commandsSubmitted = 0;

  private constructor(
    private readonly socket: Socket,
    readonly options: QueueOptions,
  ) {
    this.framer = new PduFramer({
      maxPduBytes: options.maxPduBytes,
      acceptedTypes: [PduType.ICResp, PduType.C2HTermReq, PduType.CapsuleResp, PduType.C2HData, PduType.R2T],
    });
    this.slotBits = Math.max(1, Math.ceil(Math.log2(options.depth)));
    this.slotGenerations = new Uint16Array(options.depth);
    this.freeSlots = Array.from({ length: options.depth }, (_, i) => options.depth - 1 - i);
    socket.setNoDelay(true);
    this.out = new PduWriter(socket);
    this.timeoutTimer = setInterval(
      () => this.checkTimeouts(),
      Math.max(10, Math.min(1000, Math.floor(options.commandTimeoutMs / 4))),
    );
    this.timeoutTimer.unref();
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.fail(new TransportError(`socket error: ${e.message}`)));
    socket.on('close', () => this.fail(new TransportError('connection closed')));
  }

  get qid(): number {
    return this.options.qid;
  }

  get closed(): boolean {
    return this.closedError !== null;
  }

  /** Bytes of this queue's TCP stream so far, every PDU with its headers and digests (kept after close). */
  get wireBytes(): { sent: number; received: number } {
    return { sent: this.socket.bytesWritten, received: this.socket.bytesRead };
  }

  /** Open the TCP connection and exchange ICReq/ICResp. */
  static async open(options: QueueOptions): Promise<HostQueue> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = netConnect({ host: options.host, port: options.port });
      const t = setTimeout(() => {
        s.destroy();
        reject(new TransportError(`connect to ${options.host}:${options.port} timed out`));
      }, options.connectTimeoutMs);
      s.once('connect', () => {
        clearTimeout(t);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (e) => {
        clearTimeout(t);
        reject(new TransportError(`connect to ${options.host}:${options.port}: ${e.message}`));
      });
    });
    const q = new HostQueue(socket, options);
    const resp = await new Promise<Pdu>((resolve, reject) => {
      const t = setTimeout(() => reject(new TransportError('no ICResp')), options.connectTimeoutMs);
      q.icResp = (pdu) => {
        clearTimeout(t);
        resolve(pdu);
      };
      q.onClosedOnce = (e) => {
        clearTimeout(t);
        reject(e);
      };
      q.out.pdu({
        type: PduType.ICReq,
        pfv: 0,
        hpda: 0,
        dgst: (options.headerDigest ? DigestEnable.HEADER : 0) | (options.dataDigest ? DigestEnable.DATA : 0),
        maxr2t: 0,
      });
    }).catch((e) => {
      q.close();
      throw e;
    });
    q.onClosedOnce = null;
    if (resp.type !== PduType.ICResp || resp.pfv !== 0 || resp.maxH2CDataBytes < MIN_MAX_H2C_DATA_BYTES) {
      q.close();
      throw new TransportError('invalid ICResp');
    }
    const header = (resp.dgst & DigestEnable.HEADER) !== 0;
    const data = (resp.dgst & DigestEnable.DATA) !== 0;
    q.digestsGranted = { header, data };
    q.out.digests = { headerDigest: header, dataDigest: data, pdoAlignBytes: (resp.cpda + 1) * 4 };
    q.framer.setDigests(header, data);
    q.maxH2CDataBytes = resp.maxH2CDataBytes;
    return q;
  }

  private onClosedOnce: ((e: Error) => void) | null = null;

  /** Submit a command; resolves with the CQE (and data) on success, rejects with NvmeStatusError/TransportError. */
  async submit(sqe: Sqe, io: CommandData = {}): Promise<CommandResult> {
    if (this.closedError) throw this.closedError;
    this.commandsSubmitted++;
    const outBytes = io.dataOut?.length ?? 0;
    if (outBytes > 0 && (io.dataInBytes ?? 0) > 0 && outBytes > this.inCapsuleBytes) {
      throw new TransportError(`bidirectional command data of ${outBytes} bytes exceeds the ${this.inCapsuleBytes}-byte capsule`);
    }
    // Loop: a slot freed for us can be taken by a submit that ran before our continuation.
    while (this.freeSlots.length === 0) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
      if (this.closedError) throw this.closedError;
    }
    const slot = this.freeSlots.pop()!;
    // Generation counter in the upper bits: a late PDU for a reused slot does not match.
    const gen = (this.slotGenerations[slot] = (this.slotGenerations[slot] + 1) & ((1 << (16 - this.slotBits)) - 1));
    const cid = ((gen << this.slotBits) | slot) & 0xffff;
    const dataOut = io.dataOut && io.dataOut.length > 0 ? io.dataOut : null;
    const dataInBytes = io.dataInBytes ?? 0;
    const cmd: Sqe = { ...sqe, cid, flags: SQE_FLAGS_SGL, sglAddressLo: 0, sglAddressHi: 0 };
    let inCapsule: Buffer | null = null;
    if (dataOut) {
      cmd.sglLength = dataOut.length;
      if (dataOut.length <= this.inCapsuleBytes) {
        cmd.sglType = SGL_IN_CAPSULE;
        inCapsule = dataOut;
      } else {
        cmd.sglType = SGL_TRANSPORT;
      }
    } else {
      cmd.sglLength = dataInBytes;
      cmd.sglType = SGL_TRANSPORT;
    }
    return new Promise<CommandResult>((resolve, reject) => {
      this.pending.set(cid, {
        sqe: cmd,
        resolve,
        reject,
        dataOut,
        // With variableDataIn only the bytes that arrived are returned, so the rest need no zeroing.
        dataIn: dataInBytes > 0 && !io.variableDataIn ? Buffer.alloc(dataInBytes) : null,
        dataInCapacity: dataInBytes,
        dataInReceived: 0,
        dataInEnd: 0,
        variableDataIn: io.variableDataIn === true,
        dataError: null,
        submittedMs: performance.now(),
      });
      this.out.capsuleCmd(cmd, inCapsule);
    });
  }

  private finish(cid: number): Pending | undefined {
    const p = this.pending.get(cid);
    if (!p) return undefined;
    this.pending.delete(cid);
    this.freeSlots.push(cid & ((1 << this.slotBits) - 1));
    this.waiters.shift()?.();
    return p;
  }

  private onData(chunk: Buffer): void {
    if (this.closedError) return;
    this.framer.push(chunk);
    try {
      for (let raw = this.framer.next(); raw; raw = this.framer.next()) {
        const pdu = decodePdu(raw);
        if (!raw.dataDigestOk && pdu.type === PduType.C2HData) {
          const p = this.pending.get(pdu.cccid);
          if (p)
            p.dataError = new NvmeStatusError(StatusCodeType.Generic, GenericStatus.TransientTransportError, false, p.sqe.opcode);
          continue;
        }
        this.onPdu(pdu);
        if (this.closedError) return;
      }
    } catch (e) {
      if (e instanceof PduError) {
        this.out.pdu({ type: PduType.H2CTermReq, fes: e.fes, fei: e.fei, errorHeader: Buffer.alloc(0) });
        this.out.flush();
        this.fail(new TransportError(`protocol error from target: ${e.message}`, e.fes));
      } else {
        this.fail(e as Error);
      }
    }
  }

  private onPdu(pdu: Pdu): void {
    switch (pdu.type) {
      case PduType.ICResp:
        if (!this.icResp) throw new PduError('type', 'unexpected ICResp', FatalErrorStatus.PduSequenceError, 0, pdu.type);
        this.icResp(pdu);
        this.icResp = null;
        return;
      case PduType.C2HTermReq:
        this.fail(new TransportError(`target terminated the connection (FES ${pdu.fes}, FEI ${pdu.fei})`, pdu.fes));
        return;
      case PduType.CapsuleResp: {
        const p = this.finish(pdu.cqe.cid);
        if (!p)
          throw new PduError('cid', 'response for an unknown command', FatalErrorStatus.InvalidPduHeaderField, 20, pdu.cqe.cid);
        this.complete(p, pdu.cqe);
        return;
      }
      case PduType.C2HData:
        this.onC2HData(pdu);
        return;
      case PduType.R2T:
        this.onR2T(pdu);
        return;
      default:
        throw new PduError('type', 'unexpected PDU', FatalErrorStatus.InvalidPduHeaderField, 0, pdu.type);
    }
  }

  private complete(p: Pending, cqe: Cqe): void {
    if (!statusOk(cqe.status)) {
      p.reject(
        new NvmeStatusError(
          statusSct(cqe.status),
          statusSc(cqe.status),
          statusDnr(cqe.status),
          p.sqe.opcode,
          cqe.dw0,
          p.sqe.cid,
          this.options.qid,
        ),
      );
    } else if (p.dataError) {
      p.reject(p.dataError);
    } else {
      p.resolve({ cqe, data: p.variableDataIn ? receivedData(p) : p.dataIn });
    }
  }

  private onC2HData(pdu: DataPdu): void {
    const p = this.pending.get(pdu.cccid);
    if (!p || p.dataInCapacity === 0)
      throw new PduError('cccid', 'data for an unknown command', FatalErrorStatus.InvalidPduHeaderField, 8, pdu.cccid);
    if (pdu.datao + pdu.data.length > (p.dataIn?.length ?? p.dataInCapacity)) {
      throw new PduError('datao', 'data beyond the command buffer', FatalErrorStatus.DataTransferOutOfRange, 12, pdu.datao);
    }
    p.dataIn ??= Buffer.allocUnsafe(pdu.last && pdu.datao === 0 ? pdu.data.length : p.dataInCapacity);
    pdu.data.copy(p.dataIn, pdu.datao);
    p.dataInReceived += pdu.data.length;
    p.dataInEnd = Math.max(p.dataInEnd, pdu.datao + pdu.data.length);
    if (pdu.last && pdu.success) {
      this.finish(pdu.cccid);
      this.complete(p, { dw0: 0, dw1: 0, sqhd: 0, sqid: this.qid, cid: pdu.cccid, status: 0 });
    }
  }

  private onR2T(r2t: R2TPdu): void {
    const p = this.pending.get(r2t.cccid);
    if (!p?.dataOut)
      throw new PduError('cccid', 'R2T for an unknown command', FatalErrorStatus.InvalidPduHeaderField, 8, r2t.cccid);
    if (r2t.r2tl === 0 || r2t.r2to + r2t.r2tl > p.dataOut.length) {
      throw new PduError('r2tl', 'R2T outside the command data', FatalErrorStatus.DataTransferOutOfRange, 16, r2t.r2tl);
    }
    const end = r2t.r2to + r2t.r2tl;
    for (let off = r2t.r2to; off < end; off += this.maxH2CDataBytes) {
      const n = Math.min(this.maxH2CDataBytes, end - off);
      const last = off + n >= end;
      // Large pieces are written from the caller's buffer, which it keeps until the command completes.
      this.out.dataPdu(PduType.H2CData, r2t.cccid, r2t.ttag, off, p.dataOut.subarray(off, off + n), last ? PduFlags.LAST_PDU : 0);
    }
  }

  /** The queue's timer: a command without a response after `commandTimeoutMs` fails the queue. */
  private checkTimeouts(): void {
    if (this.pending.size === 0) return;
    const now = performance.now();
    for (const p of this.pending.values()) {
      if (now - p.submittedMs > this.options.commandTimeoutMs) {
        this.fail(
          new TransportError(`command 0x${p.sqe.opcode.toString(16)} timed out after ${this.options.commandTimeoutMs} ms`),
        );
        return;
      }
    }
  }

  /** Fail every outstanding command and close the socket. */
  private fail(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    clearInterval(this.timeoutTimer);
    this.onClosedOnce?.(err);
    for (const cid of [...this.pending.keys()]) this.finish(cid)?.reject(err);
    for (const w of this.waiters.splice(0)) w();
    this.socket.destroy();
  }

  close(): void {
    this.fail(new TransportError('queue closed'));
  }

  /** Send raw bytes (tests of hostile input). */
  sendRaw(bytes: Buffer): void {
    this.out.flush();
    this.socket.write(bytes);
  }
}

/** What a variable-length read received: the bytes up to the furthest one that arrived (none: empty). */
function receivedData(p: Pending): Buffer | null {
  if (p.dataInCapacity === 0) return null;
  return p.dataIn === null ? Buffer.alloc(0) : p.dataIn.subarray(0, p.dataInEnd);
}
