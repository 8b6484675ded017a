/**
 * A userspace TCP delay proxy for `bench-pushdown --rtt`: the RTT sweep of `--netns` without
 * `tc netem` (no root, no `sch_netem`). It listens on 127.0.0.1 (an ephemeral port by default) and
 * forwards every accepted connection to an upstream address, holding every chunk it reads, in each
 * direction, for a configurable one-way delay before writing it on.
 *
 * Sub-millisecond delays: `setTimeout` has 1 ms granularity (and often fires later), so the proxy
 * keeps a FIFO per direction whose entries carry a `process.hrtime.bigint()` deadline, and a pump
 * that re-arms itself with `setImmediate` while anything is held; each turn of the event loop it
 * writes on, in order, the chunks whose deadline has passed. A turn with immediates pending polls
 * for I/O without blocking, so the sockets are still served while the pump spins. Only when the
 * earliest deadline is more than 2 ms away does the pump sleep in `setTimeout` until about 1 ms before
 * it. The FIFO keeps order even when the delay is changed with data in flight.
 *
 * The proxy is not free: every chunk crosses the kernel twice more and waits for the event loop,
 * and the pump spins a core while data is held. A sweep should therefore report a row through the
 * proxy at delay 0 (the proxy's own cost) next to the direct path, and the RTT measured by
 * `pingPong` through the proxy next to the nominal one.
 */
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';

/** Sleep in setTimeout (instead of spinning) only while the next deadline is further than this. */
const SPIN_HORIZON_NS = 2_000_000n;

export interface DelayProxyOptions {
  /** Where accepted connections are forwarded. */
  readonly upstream: { readonly host: string; readonly port: number };
  /** Delay added to every chunk in each direction, in microseconds (RTT added = 2x). */
  readonly oneWayUs: number;
  /** Listen port on 127.0.0.1; 0 (default) for an ephemeral one. */
  readonly port?: number;
}

export interface DelayProxyStats {
  /** Chunks and bytes forwarded, both directions. */
  readonly chunks: number;
  readonly bytes: number;
  /** Mean time a chunk was held (µs): the configured delay plus the pump's lateness. */
  readonly meanHeldUs: number;
  /** Longest time a chunk was held (µs). */
  readonly maxHeldUs: number;
}

interface Held {
  readonly chunk: Buffer;
  readonly arrived: bigint;
  readonly due: bigint;
}

/** One direction of one connection: chunks read from `from`, held, written to `to` in order. */
class DelayedPipe {
  private readonly queue: Held[] = [];
  private head = 0;
  private ended = false;
  private waitingForDrain = false;

  constructor(
    private readonly proxy: DelayProxy,
    private readonly from: Socket,
    private readonly to: Socket,
  ) {
    from.on('data', (chunk: Buffer) => {
      const now = process.hrtime.bigint();
      this.queue.push({ chunk, arrived: now, due: now + proxy.oneWayNs });
      proxy.kick(now);
    });
    from.on('end', () => {
      this.ended = true;
      proxy.kick(process.hrtime.bigint());
    });
  }

  get pending(): boolean {
    return this.head < this.queue.length;
  }

  /** Deadline of the oldest held chunk, if any. */
  get nextDue(): bigint | undefined {
    return this.pending ? this.queue[this.head].due : undefined;
  }

  /** Write on every chunk whose deadline passed, in order; true while chunks are still held. */
  release(now: bigint): boolean {
    while (this.head < this.queue.length) {
      const h = this.queue[this.head];
      if (h.due > now) break;
      this.queue[this.head++] = undefined as unknown as Held;
      this.proxy.account(h.chunk.length, now - h.arrived);
      const open = !this.to.destroyed && !this.to.writableEnded;
      if (open && !this.to.write(h.chunk) && !this.waitingForDrain) {
        // Backpressure: stop reading the source until the destination drains.
        this.waitingForDrain = true;
        this.from.pause();
        this.to.once('drain', () => {
          this.waitingForDrain = false;
          this.from.resume();
        });
      }
    }
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
      if (this.ended && !this.to.destroyed && !this.to.writableEnded) this.to.end();
      return false;
    }
    if (this.head > 1024) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    return true;
  }
}

export class DelayProxy {
  private server: Server | undefined;
  private readonly pipes = new Set<DelayedPipe>();
  private readonly sockets = new Set<Socket>();
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private timerDue = 0n;
  private delayNs: bigint;
  private chunks = 0;
  private bytes = 0;
  private heldNs = 0n;
  private maxHeldNs = 0n;
  host = '127.0.0.1';
  port = 0;

  constructor(private readonly options: DelayProxyOptions) {
    this.delayNs = DelayProxy.toNs(options.oneWayUs);
  }

  private static toNs(us: number): bigint {
    if (!Number.isFinite(us) || us < 0) throw new RangeError(`one-way delay must be >= 0 µs, got ${us}`);
    return BigInt(Math.round(us * 1000));
  }

  /** Listen on 127.0.0.1; resolves with the proxy once it accepts connections. */
  static async start(options: DelayProxyOptions): Promise<DelayProxy> {
    const proxy = new DelayProxy(options);
    await proxy.listen();
    return proxy;
  }

  private listen(): Promise<void> {
    // Half-open allowed: a FIN is forwarded (after the data held before it), not answered at once.
    const server = createServer({ noDelay: true, allowHalfOpen: true }, (client) => this.accept(client));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        this.port = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  private accept(client: Socket): void {
    const upstream = connect({
      host: this.options.upstream.host,
      port: this.options.upstream.port,
      noDelay: true,
      allowHalfOpen: true,
    });
    client.setNoDelay(true);
    const toUpstream = new DelayedPipe(this, client, upstream);
    const toClient = new DelayedPipe(this, upstream, client);
    this.pipes.add(toUpstream);
    this.pipes.add(toClient);
    this.sockets.add(client);
    this.sockets.add(upstream);
    const teardown = () => {
      // A reset or error on either side ends both (held data is dropped, as a dead link would).
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on('error', teardown);
      s.on('close', () => {
        this.sockets.delete(s);
        if (client.destroyed && upstream.destroyed) {
          this.pipes.delete(toUpstream);
          this.pipes.delete(toClient);
        }
      });
    }
  }

  /** One-way delay now applied to newly read chunks (µs). */
  get oneWayUs(): number {
    return Number(this.delayNs) / 1000;
  }

  /** @internal */
  get oneWayNs(): bigint {
    return this.delayNs;
  }

  /** Change the one-way delay; chunks already held keep their deadlines (and their order). */
  setOneWayDelay(us: number): void {
    this.delayNs = DelayProxy.toNs(us);
  }

  /** @internal Count a forwarded chunk. */
  account(bytes: number, heldNs: bigint): void {
    this.chunks++;
    this.bytes += bytes;
    this.heldNs += heldNs;
    if (heldNs > this.maxHeldNs) this.maxHeldNs = heldNs;
  }

  /** Forwarding statistics since the start or the last `resetStats`. */
  stats(): DelayProxyStats {
    return {
      chunks: this.chunks,
      bytes: this.bytes,
      meanHeldUs: this.chunks > 0 ? Number(this.heldNs / BigInt(this.chunks)) / 1000 : 0,
      maxHeldUs: Number(this.maxHeldNs) / 1000,
    };
  }

  resetStats(): void {
    this.chunks = 0;
    this.bytes = 0;
    this.heldNs = 0n;
    this.maxHeldNs = 0n;
  }

  /** @internal Release what is due now (a zero delay forwards at once) and keep the pump going. */
  kick(now: bigint): void {
    this.pump(now);
  }

  private readonly turn = () => {
    this.scheduled = false;
    this.timer = undefined;
    this.pump(process.hrtime.bigint());
  };

  private pump(now: bigint): void {
    let next: bigint | undefined;
    for (const p of this.pipes) {
      if (!p.release(now)) continue;
      const due = p.nextDue as bigint;
      if (next === undefined || due < next) next = due;
    }
    if (next === undefined) return;
    if (this.scheduled) {
      // A sleeping pump must wake for a nearer deadline (a new connection, a shorter delay).
      if (!this.timer || next >= this.timerDue) return;
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.scheduled = true;
    if (next - now > SPIN_HORIZON_NS) {
      // Far away: sleep until about 1 ms before it, then spin.
      this.timerDue = next;
      this.timer = setTimeout(this.turn, Number((next - now) / 1_000_000n) - 1);
    } else setImmediate(this.turn);
  }

  /** Stop listening and drop every connection. */
  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

// ---- measuring the round trip ----

/** A TCP echo server on 127.0.0.1 (ephemeral port), for `pingPong`. */
export async function startEchoServer(): Promise<{ host: string; port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer({ noDelay: true }, (s) => {
    sockets.add(s);
    s.on('data', (c: Buffer) => s.write(c));
    s.on('end', () => s.end());
    s.on('error', () => s.destroy());
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    host: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface RoundTrips {
  readonly rounds: number;
  readonly minUs: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly meanUs: number;
}

/** Summary of round-trip samples (µs). */
export function summarizeRoundTrips(samplesUs: readonly number[]): RoundTrips {
  const sorted = [...samplesUs].sort((a, b) => a - b);
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
  return {
    rounds: sorted.length,
    minUs: sorted[0],
    p50Us: pct(0.5),
    p99Us: pct(0.99),
    meanUs: sorted.reduce((a, b) => a + b, 0) / sorted.length,
  };
}

/**
 * Ping-pong `rounds` messages of `bytes` bytes with an echo server at host:port, one at a time
 * (after `warmup` unmeasured ones); every round trip timed with `process.hrtime.bigint()`.
 * Resolves with the round trips in µs, in order.
 */
export async function pingPong(
  host: string,
  port: number,
  options: { rounds?: number; warmup?: number; bytes?: number } = {},
): Promise<number[]> {
  const rounds = options.rounds ?? 200;
  const warmup = options.warmup ?? 20;
  const size = options.bytes ?? 72;
  const socket = connect({ host, port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const rtts: number[] = [];
  let waiting: { left: number; resolve: () => void; reject: (e: Error) => void } | undefined;
  let failure: Error | undefined;
  const fail = (e: Error) => {
    failure ??= e;
    waiting?.reject(failure);
    waiting = undefined;
  };
  socket.on('data', (c: Buffer) => {
    if (!waiting) return;
    waiting.left -= c.length;
    if (waiting.left <= 0) {
      const w = waiting;
      waiting = undefined;
      w.resolve();
    }
  });
  socket.on('error', fail);
  socket.on('close', () => fail(new Error('connection closed during ping-pong')));
  try {
    const message = Buffer.alloc(size, 0x5a);
    for (let i = 0; i < warmup + rounds; i++) {
      if (failure) throw failure;
      const back = new Promise<void>((resolve, reject) => {
        waiting = { left: size, resolve, reject };
      });
      const t0 = process.hrtime.bigint();
      socket.write(message);
      await back;
      if (i >= warmup) rtts.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
  } finally {
    socket.removeAllListeners('close');
    socket.destroy();
  }
  return rtts;
}

/**
 * The round trips (µs) a delay proxy with this one-way delay achieves here: ping-pong through a
 * proxy of that delay to a local echo server (`oneWayUs` undefined: straight to the echo server).
 */
export async function pingPongVia(oneWayUs: number | undefined, rounds = 200): Promise<number[]> {
  const echo = await startEchoServer();
  const proxy = oneWayUs === undefined ? undefined : await DelayProxy.start({ upstream: echo, oneWayUs });
  try {
    return await pingPong(proxy?.host ?? echo.host, proxy?.port ?? echo.port, { rounds });
  } finally {
    await proxy?.close();
    await echo.close();
  }
}

/** `pingPongVia`, summarized. */
export const measureProxyRtt = async (oneWayUs: number | undefined, rounds = 200): Promise<RoundTrips> =>
  summarizeRoundTrips(await pingPongVia(oneWayUs, rounds));
