/**
 * One TCP connection = one NVMe queue. Explicit state machine:
 *
 *   awaitingIcReq --ICReq--> awaitingConnect --Connect ok--> ready --(fatal error | close)--> closing --> closed
 *
 * The connection owns framing, digests, data movement (in-capsule, R2T/H2CData, C2HData) and
 * backpressure; what a command means is decided by the `CommandRouter` (controller / I/O code).
 *
 * Backpressure: every data buffer a command holds (in-capsule data, R2T buffer, read buffer until the
 * socket took it) counts against `maxInFlightBytesPerConnection`. R2Ts and reads wait in FIFO order for
 * budget, and the socket is paused while the budget is exhausted by anything other than R2T buffers that
 * are waiting for the host's data (pausing then would deadlock). Commands per queue are bounded by SQSIZE.
 */
import type { Socket } from 'node:net';
import {
  ADMIN_IN_CAPSULE_BYTES,
  AdminOpcode,
  DigestEnable,
  FabricsType,
  FatalErrorStatus,
  GenericStatus,
  MAX_TERM_REQ_ERROR_HEADER_BYTES,
  PDU_HEADER_BYTES,
  PduFlags,
  PduType,
  SGL_IN_CAPSULE,
  SGL_TRANSPORT,
} from '../protocol/constants.js';
import { PduError } from '../protocol/errors.js';
import { PduFramer } from '../protocol/framer.js';
import { type DataPdu, decodePdu, type ICReqPdu, type Pdu, type RawPdu } from '../protocol/pdu.js';
import { COPY_DATA_MAX_BYTES, PduWriter } from '../protocol/pdu-writer.js';
import { ProgramOpcode } from '../protocol/programs.js';
import { type Sqe, sqeFctype } from '../protocol/sqe.js';
import { type Completion, generic, INVALID_FIELD, SEQUENCE_ERROR } from './completion.js';
import type { TargetLimits } from './config.js';
import { ioBuffers } from './io.js';
import { type Logger, logEvent } from './logger.js';

export type ConnectionState = 'awaitingIcReq' | 'awaitingConnect' | 'ready' | 'closing' | 'closed';

/** What a queue is bound to after a successful Connect. */
export interface QueueBinding {
  qid: number;
  /** Maximum commands outstanding on this queue (SQSIZE + 1, plus held AERs on the admin queue). */
  depth: number;
  /** Submission queue entries (SQSIZE + 1): the modulus of SQHD. */
  sqEntries: number;
  /** Called for every command received on the queue (keep-alive bookkeeping). */
  touch(): void;
  /** The association and host, for the log. */
  cntlid: number;
  host: string;
}

export interface CommandRouter {
  /** Handle a Connect; on success it must call `conn.bind()`. */
  connect(conn: TargetConnection, sqe: Sqe, data: Buffer | null): Promise<Completion>;
  /**
   * Handle any other command on a bound queue: its completion now (the data of a completion returned
   * synchronously is sent before the connection returns to the event loop, so it may be a borrowed
   * view), a promise of it, or null when it completes later through `conn.complete(handle, c)` (or
   * `conn.completeLater(cid, c)`).
   */
  execute(
    conn: TargetConnection,
    sqe: Sqe,
    data: Buffer | null,
    handle: CommandHandle,
  ): Completion | Promise<Completion | null> | null;
  closed(conn: TargetConnection): void;
}

/** A command in progress, as the router sees it: something to complete through its connection. */
export interface CommandHandle {
  readonly owner: TargetConnection;
  readonly sqe: Sqe;
  /** When the router started the command (set only with metrics on, for its latency). */
  startedAtMs: number;
}

interface Command extends CommandHandle {
  sqe: Sqe;
  /** Bytes the host expects to send (h2c) or receive (c2h). */
  transferBytes: number;
  direction: 'none' | 'h2c' | 'c2h';
  data: Buffer | null;
  heldBytes: number;
  /** R2T state for host-to-target data. */
  ttag: number;
  received: number;
  r2tOffset: number;
  r2tLength: number;
  dataDigestFailed: boolean;
  /** `data` came from the I/O buffer pool (an R2T buffer) and goes back when the command ends. */
  dataPooled: boolean;
}

let nextConnectionId = 1;

export class TargetConnection {
  readonly id = nextConnectionId++;
  state: ConnectionState = 'awaitingIcReq';
  binding: QueueBinding | null = null;
  private readonly framer: PduFramer;
  /** Every PDU we send: encoded into a reused arena, one socket write per event-loop turn. */
  private readonly out: PduWriter;
  private readonly commands = new Map<number, Command>();
  private readonly transfers = new Map<number, Command>();
  private nextTtag = 1;
  private heldBytes = 0;
  /** Held bytes of R2T buffers still waiting for host data: excluded from the pause decision. */
  private awaitingH2cBytes = 0;
  private readonly budgetWaiters: { cmd: Command; bytes: number; go: () => void }[] = [];
  private paused = false;
  private draining = false;
  private sqHead = 0;
  private handshakeTimer: NodeJS.Timeout | null;
  private closeTimer: NodeJS.Timeout | null = null;
  readonly remote: string;
  /** Our end of the connection (what the discovery log advertises). */
  readonly local: { address: string; port: number };

  constructor(
    private readonly socket: Socket,
    private readonly router: CommandRouter,
    private readonly limits: TargetLimits,
    private readonly allowDigests: { header: boolean; data: boolean },
    private readonly log: Logger,
  ) {
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.local = { address: (socket.localAddress ?? '127.0.0.1').replace(/^::ffff:/, ''), port: socket.localPort ?? 0 };
    const maxPduBytes =
      Math.max(
        PDU_HEADER_BYTES[PduType.CapsuleCmd] + Math.max(limits.inCapsuleDataBytes, ADMIN_IN_CAPSULE_BYTES),
        24 + limits.maxH2CDataBytes,
      ) +
      8 + // digests
      256; // PDO padding the host may add
    this.framer = new PduFramer({
      maxPduBytes,
      acceptedTypes: [PduType.ICReq, PduType.H2CTermReq, PduType.CapsuleCmd, PduType.H2CData],
    });
    socket.setNoDelay(true);
    this.out = new PduWriter(socket, () => {
      // The socket took a flush: output no longer holds the budget.
      if (this.paused) this.drain();
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => logEvent(this.log, 'connection.socket_error', { ...this.logIds(), error: err.message }));
    socket.on('close', () => this.onClose());
    socket.on('end', () => this.shutdown());
    this.handshakeTimer = setTimeout(() => {
      logEvent(this.log, 'connection.handshake_timeout', this.logIds());
      this.shutdown();
    }, limits.handshakeTimeoutMs);
    this.handshakeTimer.unref();
  }

  /** What identifies this connection in the log: its id and peer, and once connected its association and queue. */
  logIds(): { conn: number; remote: string; host?: string; cntlid?: number; qid?: number } {
    const b = this.binding;
    return b === null
      ? { conn: this.id, remote: this.remote }
      : { conn: this.id, remote: this.remote, host: b.host, cntlid: b.cntlid, qid: b.qid };
  }

  /** Snapshot for monitoring and tests. */
  stats(): { id: number; state: ConnectionState; qid: number | null; outstanding: number; heldBytes: number; paused: boolean } {
    return {
      id: this.id,
      state: this.state,
      qid: this.binding?.qid ?? null,
      outstanding: this.commands.size,
      heldBytes: this.heldBytes,
      paused: this.paused,
    };
  }

  /** Called by the router when Connect succeeds. */
  bind(binding: QueueBinding): void {
    this.binding = binding;
    this.state = 'ready';
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
  }

  /** Close the connection without a TermReq (association teardown, keep-alive expiry, target close). */
  shutdown(): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.state = 'closing';
    this.out.flush();
    this.socket.end();
    this.closeTimer = setTimeout(() => this.socket.destroy(), 1000);
    this.closeTimer.unref();
  }

  /** Stop reading new commands (target close: in-flight work finishes, nothing new starts). */
  quiesce(): void {
    this.socket.pause();
    this.paused = true;
    if (this.state !== 'closed') this.state = 'closing';
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onClose(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.commands.clear();
    this.transfers.clear();
    this.budgetWaiters.length = 0;
    this.router.closed(this);
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.framer.push(chunk);
    this.drain();
    // Responses of this chunk's commands that completed at once (cache hits): one write now.
    this.out.flush();
  }

  /** Process buffered PDUs until none is complete or we are over budget. Never throws. */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      this.drainLoop();
    } finally {
      this.draining = false;
    }
    this.updatePause();
  }

  private drainLoop(): void {
    while (this.state !== 'closing' && this.state !== 'closed' && !this.overBudget()) {
      let raw: RawPdu | null;
      try {
        raw = this.framer.next();
      } catch (e) {
        if (e instanceof PduError) {
          this.fatal(e, this.framer.pendingHeader(MAX_TERM_REQ_ERROR_HEADER_BYTES));
          return;
        }
        logEvent(this.log, 'connection.internal_error', { ...this.logIds(), error: String(e) });
        this.destroy();
        return;
      }
      if (!raw) break;
      try {
        this.onPdu(raw, decodePdu(raw));
      } catch (e) {
        if (e instanceof PduError) {
          this.fatal(e, raw.header);
          return;
        }
        logEvent(this.log, 'connection.internal_error', { ...this.logIds(), error: String(e) });
        this.fatal(new PduError('(internal)', 'internal error', FatalErrorStatus.InvalidPduHeaderField, 0), raw.header);
        return;
      }
    }
  }

  /** Data held by commands plus output the socket has not taken yet, R2T buffers awaiting host data excluded. */
  private overBudget(): boolean {
    return (
      this.heldBytes - this.awaitingH2cBytes + this.socket.writableLength + this.out.unflushedBytes >=
      this.limits.maxInFlightBytesPerConnection
    );
  }

  private updatePause(): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    const over = this.overBudget();
    if (over && !this.paused) {
      this.paused = true;
      this.socket.pause();
    } else if (!over && this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private onPdu(raw: RawPdu, pdu: Pdu): void {
    switch (pdu.type) {
      case PduType.ICReq:
        if (this.state !== 'awaitingIcReq')
          throw new PduError('type', 'ICReq after initialization', FatalErrorStatus.PduSequenceError, 0, 0);
        this.onIcReq(pdu);
        return;
      case PduType.H2CTermReq:
        logEvent(this.log, 'connection.terminated_by_host', { ...this.logIds(), fes: pdu.fes, fei: pdu.fei });
        this.shutdown();
        return;
      case PduType.CapsuleCmd:
        if (this.state === 'awaitingIcReq')
          throw new PduError('type', 'capsule before ICReq', FatalErrorStatus.PduSequenceError, 0, raw.type);
        this.onCapsule(pdu.sqe, pdu.data, raw.dataDigestOk);
        return;
      case PduType.H2CData:
        this.onH2CData(pdu, raw.dataDigestOk);
        return;
      default:
        throw new PduError('type', 'unexpected PDU type', FatalErrorStatus.InvalidPduHeaderField, 0, raw.type);
    }
  }

  private onIcReq(pdu: ICReqPdu): void {
    if (pdu.pfv !== 0)
      throw new PduError('pfv', 'unsupported PDU format version', FatalErrorStatus.UnsupportedParameter, 8, pdu.pfv);
    if (pdu.hpda > 31) throw new PduError('hpda', 'must be at most 31', FatalErrorStatus.InvalidPduHeaderField, 10, pdu.hpda);
    const header = this.allowDigests.header && (pdu.dgst & DigestEnable.HEADER) !== 0;
    const data = this.allowDigests.data && (pdu.dgst & DigestEnable.DATA) !== 0;
    this.out.pdu({
      type: PduType.ICResp,
      pfv: 0,
      cpda: 0,
      dgst: (header ? DigestEnable.HEADER : 0) | (data ? DigestEnable.DATA : 0),
      maxH2CDataBytes: this.limits.maxH2CDataBytes,
    });
    // ICResp itself goes out without digests; everything after uses them.
    this.out.digests = { headerDigest: header, dataDigest: data, pdoAlignBytes: (pdu.hpda + 1) * 4 };
    this.framer.setDigests(header, data);
    this.state = 'awaitingConnect';
    logEvent(this.log, 'connection.initialized', { ...this.logIds(), headerDigest: header, dataDigest: data });
  }

  private onCapsule(sqe: Sqe, data: Buffer | null, dataDigestOk: boolean): void {
    if (this.commands.has(sqe.cid)) {
      throw new PduError('cid', 'command identifier already in use', FatalErrorStatus.PduSequenceError, 10, sqe.cid);
    }
    const depth = this.binding?.depth ?? 1;
    if (this.commands.size >= depth) {
      throw new PduError('cid', `more than ${depth} commands outstanding`, FatalErrorStatus.PduSequenceError, 10, sqe.cid);
    }
    this.sqHead = this.binding ? (this.sqHead + 1) % this.binding.sqEntries : 0;
    this.binding?.touch();
    const cmd: Command = {
      owner: this,
      sqe,
      transferBytes: sqe.sglLength,
      direction: 'none',
      data: null,
      heldBytes: 0,
      ttag: 0,
      received: 0,
      r2tOffset: 0,
      r2tLength: 0,
      dataDigestFailed: !dataDigestOk,
      dataPooled: false,
      startedAtMs: 0,
    };
    this.commands.set(sqe.cid, cmd);
    if (data) this.hold(cmd, data.length);

    const isFabrics = sqe.opcode === AdminOpcode.Fabrics;
    const bits = isFabrics ? sqeFctype(sqe) & 3 : sqe.opcode & 3;
    const maxInCapsule = !this.binding || this.binding.qid === 0 ? ADMIN_IN_CAPSULE_BYTES : this.limits.inCapsuleDataBytes;
    const len = sqe.sglLength;
    let early: Completion | null = null;
    if (!dataDigestOk) early = generic(GenericStatus.TransientTransportError, false);
    else if (bits === 3 && !(sqe.opcode === ProgramOpcode.ExecuteWithInput && this.binding && this.binding.qid > 0))
      early = INVALID_FIELD;
    else if (bits === 3) {
      // nearbpf's one bidirectional command: input in the capsule, output back as C2HData.
      if (sqe.sglType !== SGL_IN_CAPSULE || len > maxInCapsule || (len > 0 && (data === null || data.length !== len))) {
        early = generic(GenericStatus.DataSglLengthInvalid);
      } else {
        cmd.direction = 'c2h';
        cmd.data = data;
        cmd.transferBytes = this.limits.maxDataTransferBytes;
      }
    } else if (len > this.limits.maxDataTransferBytes && !(bits === 1 && sqe.sglType === SGL_IN_CAPSULE)) early = INVALID_FIELD;
    else if (bits === 1 && len > 0) {
      cmd.direction = 'h2c';
      if (sqe.sglType === SGL_IN_CAPSULE) {
        if (len > maxInCapsule || data === null || data.length !== len) early = generic(GenericStatus.DataSglLengthInvalid);
        else cmd.data = data;
      } else if (sqe.sglType === SGL_TRANSPORT) {
        if (data !== null) early = INVALID_FIELD;
      } else {
        early = generic(GenericStatus.SglDescriptorTypeInvalid);
      }
    } else if (data !== null) {
      early = INVALID_FIELD;
    } else if (bits === 2 && len > 0) {
      cmd.direction = 'c2h';
    }
    if (!early && this.state === 'awaitingConnect' && !(isFabrics && sqeFctype(sqe) === FabricsType.Connect))
      early = SEQUENCE_ERROR;
    if (early) {
      cmd.direction = 'none';
      this.respond(cmd, early);
      return;
    }
    if (cmd.direction === 'h2c' && cmd.data === null) {
      this.reserve(cmd, len, () => this.startR2T(cmd));
    } else if (cmd.direction === 'c2h') {
      // (For EXECUTE_WITH_INPUT this reserves the input; its output is bounded by the tenant's budget.)
      this.reserve(cmd, len, () => this.run(cmd));
    } else {
      this.run(cmd);
    }
  }

  private hold(cmd: Command, bytes: number): void {
    cmd.heldBytes += bytes;
    this.heldBytes += bytes;
  }

  /** Run `go` once `bytes` fit in the budget (immediately if nothing else is held). */
  private reserve(cmd: Command, bytes: number, go: () => void): void {
    if (
      this.budgetWaiters.length === 0 &&
      (this.heldBytes === 0 || this.heldBytes + bytes <= this.limits.maxInFlightBytesPerConnection)
    ) {
      this.hold(cmd, bytes);
      go();
    } else {
      this.budgetWaiters.push({ cmd, bytes, go });
    }
  }

  private release(cmd: Command): void {
    this.heldBytes -= cmd.heldBytes;
    cmd.heldBytes = 0;
    while (this.budgetWaiters.length > 0) {
      const w = this.budgetWaiters[0];
      if (this.heldBytes !== 0 && this.heldBytes + w.bytes > this.limits.maxInFlightBytesPerConnection) break;
      this.budgetWaiters.shift();
      this.hold(w.cmd, w.bytes);
      w.go();
    }
    if (this.paused && !this.overBudget() && this.state !== 'closing' && this.state !== 'closed') {
      // Process what the framer already holds before reading more from the socket.
      this.drain();
    }
  }

  private startR2T(cmd: Command): void {
    if (this.state !== 'ready' && this.state !== 'awaitingConnect') return;
    cmd.data = ioBuffers.take(cmd.transferBytes);
    cmd.dataPooled = true;
    this.awaitingH2cBytes += cmd.transferBytes;
    do cmd.ttag = this.nextTtag++ & 0xffff;
    while (cmd.ttag === 0xffff || this.transfers.has(cmd.ttag));
    this.transfers.set(cmd.ttag, cmd);
    this.sendR2T(cmd);
  }

  private sendR2T(cmd: Command): void {
    cmd.r2tOffset = cmd.received;
    cmd.r2tLength = Math.min(this.limits.maxH2CDataBytes, cmd.transferBytes - cmd.received);
    this.out.r2t(cmd.sqe.cid, cmd.ttag, cmd.r2tOffset, cmd.r2tLength);
  }

  private onH2CData(pdu: DataPdu, dataDigestOk: boolean): void {
    const cmd = this.transfers.get(pdu.ttag);
    if (!cmd) throw new PduError('ttag', 'no transfer with this tag', FatalErrorStatus.InvalidPduHeaderField, 10, pdu.ttag);
    if (cmd.sqe.cid !== pdu.cccid)
      throw new PduError('cccid', 'does not match the transfer tag', FatalErrorStatus.InvalidPduHeaderField, 8, pdu.cccid);
    const end = cmd.r2tOffset + cmd.r2tLength;
    if (pdu.datao !== cmd.received || pdu.datao + pdu.data.length > end) {
      throw new PduError('datao', 'data outside the requested range', FatalErrorStatus.DataTransferOutOfRange, 12, pdu.datao);
    }
    pdu.data.copy(cmd.data!, pdu.datao);
    cmd.received += pdu.data.length;
    if (!dataDigestOk) cmd.dataDigestFailed = true;
    if (cmd.received < end) {
      if (pdu.last)
        throw new PduError('flags', 'LAST_PDU before the end of the R2T', FatalErrorStatus.PduSequenceError, 1, cmd.received);
      return;
    }
    if (cmd.received < cmd.transferBytes) {
      this.sendR2T(cmd);
      return;
    }
    this.transfers.delete(cmd.ttag);
    this.awaitingH2cBytes -= cmd.transferBytes;
    if (cmd.dataDigestFailed) {
      this.respond(cmd, generic(GenericStatus.TransientTransportError, false));
      return;
    }
    this.run(cmd);
  }

  private run(cmd: Command): void {
    const sqe = cmd.sqe;
    if (sqe.opcode === AdminOpcode.Fabrics && sqeFctype(sqe) === FabricsType.Connect) {
      this.settle(cmd, this.state === 'awaitingConnect' ? this.router.connect(this, sqe, cmd.data) : SEQUENCE_ERROR);
      return;
    }
    let r: Completion | Promise<Completion | null> | null;
    try {
      r = this.router.execute(this, sqe, cmd.data, cmd);
    } catch (e) {
      logEvent(this.log, 'connection.internal_error', { ...this.logIds(), opcode: sqe.opcode, error: String(e) });
      r = generic(GenericStatus.InternalError, false);
    }
    if (r !== null) this.settle(cmd, r);
  }

  private settle(cmd: Command, r: Completion | Promise<Completion | null>): void {
    if (!(r instanceof Promise)) {
      this.respond(cmd, r);
      return;
    }
    r.then(
      (c) => c,
      (e) => {
        logEvent(this.log, 'connection.internal_error', { ...this.logIds(), opcode: cmd.sqe.opcode, error: String(e) });
        return generic(GenericStatus.InternalError, false);
      },
    )
      .then((c) => {
        if (c) this.respond(cmd, c);
      })
      .catch((e) => {
        // A bug while answering must not take the process down: drop this connection only.
        logEvent(this.log, 'connection.internal_error', { ...this.logIds(), error: String(e) });
        this.destroy();
      });
  }

  /** Complete a command the router returned null for (I/O that finished in the thread pool). */
  complete(handle: CommandHandle, c: Completion): void {
    try {
      this.respond(handle as Command, c);
    } catch (e) {
      logEvent(this.log, 'connection.internal_error', { ...this.logIds(), error: String(e) });
      this.destroy();
    }
  }

  /** Complete a command the router deferred (returned null for), e.g. an Asynchronous Event Request. */
  completeLater(cid: number, c: Completion): void {
    const cmd = this.commands.get(cid);
    if (cmd) this.respond(cmd, c);
  }

  private respond(cmd: Command, c: Completion): void {
    if (this.commands.get(cmd.sqe.cid) === cmd) this.commands.delete(cmd.sqe.cid);
    if (this.state === 'closed' || (this.state === 'closing' && this.socket.destroyed)) {
      if (c.data !== null) c.dataRelease?.(c.data);
      this.endCommand(cmd);
      return;
    }
    const cid = cmd.sqe.cid;
    if (c.status === 0 && c.data !== null && cmd.direction === 'c2h') {
      const data = c.data.length > cmd.transferBytes ? c.data.subarray(0, cmd.transferBytes) : c.data;
      const step = this.limits.maxC2HDataBytes;
      // Small data is copied into the output arena (a borrowed cache view must be); large data is
      // written from its own buffer, which goes back to its pool once the socket took it.
      const copied = data.length <= COPY_DATA_MAX_BYTES;
      for (let off = 0; off < data.length; off += step) {
        const end = Math.min(off + step, data.length);
        const last = end === data.length;
        const release = last && !copied ? c.dataRelease : undefined;
        this.out.dataPdu(PduType.C2HData, cid, 0, off, data.subarray(off, end), last ? PduFlags.LAST_PDU : 0, release);
      }
      if (copied && c.dataRelease) c.dataRelease(c.data);
    } else if (c.data !== null) {
      c.dataRelease?.(c.data);
    }
    this.out.capsuleResp(cid, c.status, c.dw0, c.dw1, this.sqHead, this.binding?.qid ?? 0);
    this.endCommand(cmd);
  }

  /** The command holds nothing any more: its budget and pooled buffer go back. */
  private endCommand(cmd: Command): void {
    if (cmd.dataPooled && cmd.data !== null) {
      cmd.dataPooled = false;
      ioBuffers.give(cmd.data);
    }
    cmd.data = null;
    this.release(cmd);
  }

  /** Fatal transport error: C2HTermReq naming the field, then close. Other connections are unaffected. */
  fatal(err: PduError, header: Buffer): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    logEvent(this.log, 'connection.fatal', {
      ...this.logIds(),
      field: err.field,
      reason: err.reason,
      fes: err.fes,
    });
    this.out.pdu({
      type: PduType.C2HTermReq,
      fes: err.fes,
      fei: err.fei,
      errorHeader: header.subarray(0, MAX_TERM_REQ_ERROR_HEADER_BYTES),
    });
    this.shutdown();
  }
}
