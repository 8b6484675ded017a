/**
 * The floor of the I/O benchmarks: a minimal Node TCP server that answers NVMe/TCP-shaped commands
 * with PDUs of the same sizes as the target's, from memory: a read capsule (72 bytes) gets a 24-byte
 * C2HData header with the data and a 24-byte CapsuleResp; any other capsule gets the CapsuleResp. No
 * protocol state, no validation, no storage: what Node itself costs to move these bytes, measured in
 * the same run as the target so ratios survive a noisy machine. `FloorClient` is the matching
 * minimal host. Run as a process: `node dist/bench/floor-server.js` prints "listening on HOST:PORT".
 */
import { spawn } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const READ_OPCODE = 0x02;
const CAPSULE_CMD = 4;
const CAPSULE_RESP = 5;
const C2H_DATA = 7;
const CAPSULE_HEADER_BYTES = 72;

/** Serve on `port` (0: any) until the process ends. */
export function serveFloor(port: number): Promise<{ host: string; port: number }> {
  const memory = Buffer.alloc(1 << 20, 0x5a);
  const server = createServer((socket) => {
    socket.setNoDelay(true);
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      let buf = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (buf.length >= 8) {
        const plen = buf.readUInt32LE(4);
        if (buf.length < plen) break;
        if (buf[0] === CAPSULE_CMD) {
          const cid = buf.readUInt16LE(10);
          const dataBytes = buf[8] === READ_OPCODE ? Math.min(buf.readUInt32LE(8 + 32), memory.length) : 0;
          const out = Buffer.allocUnsafe((dataBytes > 0 ? 24 + dataBytes : 0) + 24);
          let at = 0;
          if (dataBytes > 0) {
            out.fill(0, 0, 24);
            out[0] = C2H_DATA;
            out[1] = 0x04; // LAST_PDU
            out[2] = 24;
            out[3] = 24;
            out.writeUInt32LE(24 + dataBytes, 4);
            out.writeUInt16LE(cid, 8);
            out.writeUInt32LE(dataBytes, 16);
            memory.copy(out, 24, 0, dataBytes);
            at = 24 + dataBytes;
          }
          out.fill(0, at, at + 24);
          out[at] = CAPSULE_RESP;
          out[at + 2] = 24;
          out.writeUInt32LE(24, at + 4);
          out.writeUInt16LE(cid, at + 20);
          socket.write(out);
        }
        buf = buf.subarray(plen);
      }
      pending = buf;
    });
    socket.on('error', () => socket.destroy());
  });
  return new Promise((resolve) =>
    server.listen(port, '127.0.0.1', () => {
      const a = server.address() as { address: string; port: number };
      resolve({ host: a.address, port: a.port });
    }),
  );
}

export interface FloorProcess {
  readonly host: string;
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Start the floor server as a process of its own (its CPU is measured apart from the client's). */
export async function spawnFloorServer(): Promise<FloorProcess> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const address = await new Promise<{ host: string; port: number }>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const m = /listening on (.+):(\d+)$/.exec(line);
      if (m) resolve({ host: m[1], port: Number(m[2]) });
    });
    child.once('exit', (code) => reject(new Error(`floor server exited with ${code}`)));
  });
  return {
    ...address,
    pid: child.pid as number,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * The minimal host: capsules with a free CID from a pool of `depth`, completion on CapsuleResp.
 * `read(bytes)` asks for `bytes` of data; `write(data)` sends them in the capsule.
 */
export class FloorClient {
  private readonly waiting = new Map<number, () => void>();
  private readonly freeCids: number[];
  private pending: Buffer = Buffer.alloc(0);

  private constructor(
    private readonly socket: Socket,
    depth: number,
  ) {
    this.freeCids = Array.from({ length: depth }, (_, i) => i);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  static connect(host: string, port: number, depth: number): Promise<FloorClient> {
    return new Promise((resolve, reject) => {
      const s = connect({ host, port }, () => resolve(new FloorClient(s, depth)));
      s.once('error', reject);
    });
  }

  private onData(chunk: Buffer): void {
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (buf.length >= 8) {
      const plen = buf.readUInt32LE(4);
      if (buf.length < plen) break;
      if (buf[0] === CAPSULE_RESP) {
        const cid = buf.readUInt16LE(20);
        const done = this.waiting.get(cid);
        this.waiting.delete(cid);
        this.freeCids.push(cid);
        done?.();
      }
      buf = buf.subarray(plen);
    }
    this.pending = buf;
  }

  private submit(opcode: number, length: number, data: Buffer | null): Promise<void> {
    const cid = this.freeCids.pop();
    if (cid === undefined) return Promise.reject(new Error('floor client: more commands than its depth'));
    const b = Buffer.alloc(CAPSULE_HEADER_BYTES + (data?.length ?? 0));
    b[0] = CAPSULE_CMD;
    b[2] = CAPSULE_HEADER_BYTES;
    b[3] = data ? CAPSULE_HEADER_BYTES : 0;
    b.writeUInt32LE(b.length, 4);
    b[8] = opcode;
    b.writeUInt16LE(cid, 10);
    b.writeUInt32LE(length, 8 + 32);
    if (data) data.copy(b, CAPSULE_HEADER_BYTES);
    return new Promise((resolve) => {
      this.waiting.set(cid, resolve);
      this.socket.write(b);
    });
  }

  read(bytes: number): Promise<void> {
    return this.submit(READ_OPCODE, bytes, null);
  }

  write(data: Buffer): Promise<void> {
    return this.submit(0x01, data.length, data);
  }

  close(): void {
    this.socket.destroy();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const a = await serveFloor(Number(process.argv[2] ?? 0));
  process.stdout.write(`floor server listening on ${a.host}:${a.port}\n`);
  process.on('SIGTERM', () => process.exit(0));
}
