/** Shared helpers for the loopback tests: temp dirs and a target on an ephemeral port. */
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdminOpcode, CNTLID_DYNAMIC, FabricsType, PduType, SGL_IN_CAPSULE, SQE_FLAGS_SGL } from '../protocol/constants.js';
import { encodeConnectData } from '../protocol/fabrics.js';
import { PduFramer } from '../protocol/framer.js';
import { type DigestOptions, decodePdu, encodePduBytes, type Pdu } from '../protocol/pdu.js';
import { makeSqe, type Sqe } from '../protocol/sqe.js';
import { type StartTargetOptions, startTarget, type TargetHandle } from './target.js';

export const SUBNQN = 'nqn.2026-11.io.nearbpf:test';
export const RO_HOST = 'nqn.2014-08.org.nvmexpress:uuid:read-only-host';
export const DENIED_HOST = 'nqn.2014-08.org.nvmexpress:uuid:denied-host';
export const RW_HOST = 'nqn.2014-08.org.nvmexpress:uuid:rw-host';
/** The identity the loopback tests connect as (never the machine's /etc/nvme/hostnqn). */
export const TEST_HOST_NQN = 'nqn.2014-08.org.nvmexpress:uuid:test-host';

export interface TestTarget extends TargetHandle {
  dir: string;
  cleanup(): Promise<void>;
}

export async function startTestTarget(
  overrides: {
    limits?: Record<string, number>;
    digests?: object;
    subsystems?: unknown[];
    auth?: object;
    programs?: object;
    /** Ports (default: one ephemeral port on 127.0.0.1). */
    listen?: unknown;
    ioThreads?: number;
  } = {},
  options: Partial<StartTargetOptions> = {},
): Promise<TestTarget> {
  const dir = await mkdtemp(join(tmpdir(), 'nearbpf-target-'));
  const handle = await startTarget({
    ...options,
    config: {
      listen: overrides.listen ?? { host: '127.0.0.1', port: 0 },
      ...(overrides.ioThreads ? { ioThreads: overrides.ioThreads } : {}),
      dataDir: dir,
      limits: { handshakeTimeoutMs: 5000, ...overrides.limits },
      ...(overrides.digests ? { digests: overrides.digests } : {}),
      ...(overrides.auth ? { auth: overrides.auth } : {}),
      ...(overrides.programs ? { programs: overrides.programs } : {}),
      subsystems: overrides.subsystems ?? [
        {
          nqn: SUBNQN,
          hosts: [
            { nqn: '*', access: 'read-write' },
            { nqn: RO_HOST, access: 'read-only' },
          ],
          namespaces: [
            { nsid: 1, path: 'ns1.img', sizeBytes: 16 << 20, blockSize: 512 },
            { nsid: 2, path: 'ns2.img', sizeBytes: 8 << 20, blockSize: 4096 },
          ],
        },
        {
          nqn: 'nqn.2026-11.io.nearbpf:private',
          hosts: [{ nqn: RW_HOST, access: 'read-write' }],
          namespaces: [{ nsid: 1, path: 'private.img', sizeBytes: 1 << 20, blockSize: 512 }],
        },
      ],
    },
  });
  return {
    ...handle,
    dir,
    cleanup: async () => {
      await handle.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Wait for `cond` by polling, a bounded number of times (no timing assertions: failure = condition never met). */
export async function waitFor(cond: () => boolean, what: string, iterations = 1000, intervalMs = 10): Promise<void> {
  for (let i = 0; i < iterations; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`condition never met: ${what}`);
}

/** A bare-bones NVMe/TCP host on a raw socket, for sending hostile or hand-built PDUs. */
export class RawHost {
  readonly pdus: Pdu[] = [];
  closed = false;
  private readonly framer = new PduFramer({ maxPduBytes: 4 << 20 });
  digests: DigestOptions = { headerDigest: false, dataDigest: false };
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: Socket) {
    socket.on('data', (c: Buffer) => {
      this.framer.push(c);
      try {
        for (let raw = this.framer.next(); raw; raw = this.framer.next()) this.pdus.push(decodePdu(raw));
      } catch {
        socket.destroy();
      }
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  static open(port: number): Promise<RawHost> {
    return new Promise((resolve, reject) => {
      const s = netConnect({ host: '127.0.0.1', port }, () => resolve(new RawHost(s)));
      s.once('error', reject);
    });
  }

  send(bytes: Buffer | Pdu): void {
    this.socket.write(Buffer.isBuffer(bytes) ? bytes : encodePduBytes(bytes, this.digests));
  }

  /** Wait (event-driven, bounded by the test timeout) until a PDU matching `pred` arrives or the socket closes. */
  async next<T extends Pdu>(pred: (p: Pdu) => p is T): Promise<T | null>;
  async next(pred: (p: Pdu) => boolean): Promise<Pdu | null>;
  async next(pred: (p: Pdu) => boolean): Promise<Pdu | null> {
    for (;;) {
      const i = this.pdus.findIndex(pred);
      if (i >= 0) return this.pdus.splice(i, 1)[0];
      if (this.closed) return null;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  async waitClosed(): Promise<void> {
    while (!this.closed) await new Promise<void>((r) => this.waiters.push(r));
  }

  async icReq(dgst = 0): Promise<void> {
    this.send({ type: PduType.ICReq, pfv: 0, hpda: 0, dgst, maxr2t: 0 });
    const r = await this.next((p) => p.type === PduType.ICResp);
    if (!r || r.type !== PduType.ICResp) throw new Error('no ICResp');
    this.digests = { headerDigest: (r.dgst & 1) !== 0, dataDigest: (r.dgst & 2) !== 0 };
    this.framer.setDigests(this.digests.headerDigest, this.digests.dataDigest);
  }

  command(sqe: Sqe, data: Buffer | null = null): void {
    this.send({ type: PduType.CapsuleCmd, sqe, data });
  }

  async response(cid: number) {
    const r = await this.next((p) => p.type === PduType.CapsuleResp && p.cqe.cid === cid);
    return r && r.type === PduType.CapsuleResp ? r.cqe : null;
  }

  connectSqe(cid: number, qid: number, sqsize: number, kato = 0): Sqe {
    return makeSqe({
      opcode: AdminOpcode.Fabrics,
      flags: SQE_FLAGS_SGL,
      cid,
      nsid: FabricsType.Connect,
      sglLength: 1024,
      sglType: SGL_IN_CAPSULE,
      cdw10: (qid << 16) >>> 0,
      cdw11: sqsize,
      cdw12: kato,
    });
  }

  connectData(subnqn: string, hostnqn = RW_HOST, cntlid = CNTLID_DYNAMIC, hostId: Buffer = Buffer.alloc(16, 7)): Buffer {
    return encodeConnectData({ hostId, cntlid, subnqn, hostnqn });
  }

  close(): void {
    this.socket.destroy();
  }
}
