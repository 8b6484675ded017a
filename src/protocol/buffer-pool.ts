/**
 * Reusable data buffers in power-of-two size classes (4 KiB .. 1 MiB), so the data of reads that
 * missed the cache and of R2T transfers is not a fresh allocation per command. Larger requests are
 * plain allocations (they are rare and would pin too much memory). A class keeps at most
 * `maxIdleBytesPerClass` of idle buffers; the rest is left to the garbage collector.
 */
const MIN_CLASS_BYTES = 4096;
const MAX_CLASS_BYTES = 1 << 20;

export class BufferPool {
  private readonly classes: Buffer[][] = [];
  private readonly maxIdlePerClass: number[] = [];
  /** Memory this pool allocated: `give` ignores anything else (never pool someone else's slab). */
  private readonly ours = new WeakSet<ArrayBufferLike>();
  /** Idle now: a second `give` of the same buffer is ignored instead of handing it out twice. */
  private readonly idle = new WeakSet<ArrayBufferLike>();

  constructor(readonly maxIdleBytesPerClass = 4 << 20) {
    for (let size = MIN_CLASS_BYTES; size <= MAX_CLASS_BYTES; size *= 2) {
      this.classes.push([]);
      this.maxIdlePerClass.push(Math.max(1, Math.floor(maxIdleBytesPerClass / size)));
    }
  }

  /** A buffer of exactly `bytes` (a view of a pooled one when a class fits); give it back with `give`. */
  take(bytes: number): Buffer {
    const c = classOf(bytes);
    if (c < 0) return Buffer.allocUnsafeSlow(bytes);
    const free = this.classes[c];
    let buf = free.pop();
    if (buf === undefined) {
      buf = Buffer.allocUnsafeSlow(MIN_CLASS_BYTES << c);
      this.ours.add(buf.buffer);
    } else {
      this.idle.delete(buf.buffer);
    }
    return buf.length === bytes ? buf : buf.subarray(0, bytes);
  }

  /** Return a buffer from `take` (any view of it: the whole underlying buffer goes back). */
  give(buf: Buffer): void {
    if (!this.ours.has(buf.buffer) || this.idle.has(buf.buffer)) return;
    const c = classOf(buf.buffer.byteLength);
    const free = this.classes[c];
    if (free.length >= this.maxIdlePerClass[c]) return;
    this.idle.add(buf.buffer);
    free.push(
      buf.byteOffset === 0 && buf.length === buf.buffer.byteLength ? buf : Buffer.from(buf.buffer, 0, buf.buffer.byteLength),
    );
  }

  /** Idle bytes held (tests and monitoring). */
  get idleBytes(): number {
    let n = 0;
    for (let c = 0; c < this.classes.length; c++) n += this.classes[c].length * (MIN_CLASS_BYTES << c);
    return n;
  }
}

/** Index of the smallest class holding `bytes`, or -1 above the largest. */
function classOf(bytes: number): number {
  if (bytes > MAX_CLASS_BYTES) return -1;
  let c = 0;
  while (MIN_CLASS_BYTES << c < bytes) c++;
  return c;
}
