/**
 * A single-producer single-consumer ring of fixed-size slots in a SharedArrayBuffer, and the wake
 * word two threads use to sleep on it. The execution hand-off (execution-channel.ts) is built from
 * these: one ring carries submissions to a worker, another carries completions back.
 *
 * Layout: a 64-byte header (Int32 words: [0] head = slots the consumer released, [1] tail = slots
 * the producer published; both count up and wrap at 2^32), then `slots` slots of `slotBytes`.
 * The producer fills a slot with plain writes and publishes it by an atomic store of the tail; the
 * consumer reads the tail atomically, so every plain write before the store is visible to it (the
 * store synchronizes with the load), and gives the slot back by an atomic store of the head.
 * Nothing here allocates or blocks: a full ring answers `reserve() === -1` and the caller decides
 * what waiting means (see execution-channel.ts).
 */

const HEAD = 0;
const TAIL = 1;
/** Header bytes before the first slot (one cache line: head and tail are written by different threads). */
export const RING_HEADER_BYTES = 64;
/** Largest ring: bounds the shared memory one producer-consumer pair can take. */
export const MAX_RING_SLOTS = 4096;
export const MAX_RING_SLOT_BYTES = 64 * 1024;

/** What another thread needs to attach to a ring. */
export interface SharedSlotRing {
  readonly buffer: SharedArrayBuffer;
  readonly slots: number;
  readonly slotBytes: number;
}

export class SlotRing {
  readonly buffer: SharedArrayBuffer;
  readonly slots: number;
  readonly slotBytes: number;
  private readonly mask: number;
  private readonly header: Int32Array;
  /** Views over the whole buffer; a slot's fields are addressed by byte offset (`offsetOf`). */
  readonly bytes: Uint8Array;
  readonly u32: Uint32Array;
  readonly f64: Float64Array;
  readonly u64: BigUint64Array;

  private constructor(shared: SharedSlotRing) {
    const { buffer, slots, slotBytes } = shared;
    if (!Number.isInteger(slots) || slots < 2 || slots > MAX_RING_SLOTS || (slots & (slots - 1)) !== 0) {
      throw new RangeError(`ring slots must be a power of two in 2..${MAX_RING_SLOTS}, got ${slots}`);
    }
    if (!Number.isInteger(slotBytes) || slotBytes < 64 || slotBytes > MAX_RING_SLOT_BYTES || slotBytes % 8 !== 0) {
      throw new RangeError(`ring slot size must be a multiple of 8 in 64..${MAX_RING_SLOT_BYTES}, got ${slotBytes}`);
    }
    if (buffer.byteLength !== RING_HEADER_BYTES + slots * slotBytes) {
      throw new RangeError(`ring buffer of ${buffer.byteLength} bytes does not hold ${slots} slots of ${slotBytes}`);
    }
    this.buffer = buffer;
    this.slots = slots;
    this.slotBytes = slotBytes;
    this.mask = slots - 1;
    this.header = new Int32Array(buffer, 0, RING_HEADER_BYTES / 4);
    this.bytes = new Uint8Array(buffer);
    this.u32 = new Uint32Array(buffer);
    this.f64 = new Float64Array(buffer);
    this.u64 = new BigUint64Array(buffer);
  }

  static create(slots: number, slotBytes: number): SlotRing {
    const size = RING_HEADER_BYTES + slots * slotBytes;
    if (!(size > 0) || size > RING_HEADER_BYTES + MAX_RING_SLOTS * MAX_RING_SLOT_BYTES) {
      throw new RangeError(`ring of ${slots} slots of ${slotBytes} bytes is too large`);
    }
    return new SlotRing({ buffer: new SharedArrayBuffer(size), slots, slotBytes });
  }

  static attach(shared: SharedSlotRing): SlotRing {
    return new SlotRing(shared);
  }

  shareable(): SharedSlotRing {
    return { buffer: this.buffer, slots: this.slots, slotBytes: this.slotBytes };
  }

  /** Published slots not yet released (either side may ask). */
  get size(): number {
    return (Atomics.load(this.header, TAIL) - Atomics.load(this.header, HEAD)) | 0;
  }

  get free(): number {
    return this.slots - this.size;
  }

  private offsetOf(counter: number): number {
    return RING_HEADER_BYTES + (counter & this.mask) * this.slotBytes;
  }

  // --- producer side ---

  /** Byte offset of the next slot to fill, or -1 when the ring is full. Call `publish()` after filling it. */
  reserve(): number {
    const tail = Atomics.load(this.header, TAIL);
    if (((tail - Atomics.load(this.header, HEAD)) | 0) >= this.slots) return -1;
    return this.offsetOf(tail);
  }

  /** Make the slot `reserve()` gave visible to the consumer. */
  publish(): void {
    Atomics.store(this.header, TAIL, (Atomics.load(this.header, TAIL) + 1) | 0);
  }

  // --- consumer side ---

  /** Byte offset of the oldest published slot, or -1 when the ring is empty. Call `release()` when done with it. */
  peek(): number {
    const head = Atomics.load(this.header, HEAD);
    if (head === Atomics.load(this.header, TAIL)) return -1;
    return this.offsetOf(head);
  }

  /** Give the slot `peek()` gave back to the producer. */
  release(): void {
    Atomics.store(this.header, HEAD, (Atomics.load(this.header, HEAD) + 1) | 0);
  }
}

/** `Atomics.waitAsync` (ES2024; in Node since 16), missing from this project's ES2022 lib. */
interface AtomicsWaitAsync {
  waitAsync(
    array: Int32Array,
    index: number,
    value: number,
    timeoutMs?: number,
  ): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
}

/**
 * A wake word: a counter the waking side bumps after publishing, and a flag the sleeping side sets
 * while it sleeps (or has an `Atomics.waitAsync` armed), so the waker calls `Atomics.notify` only
 * when someone may be asleep. Both are sequentially consistent atomics: if the sleeper set the flag
 * and then saw no new work, the waker's bump comes after it and sees the flag (no lost wake-up).
 */
export class WakeWord {
  static readonly BYTES = 8;
  readonly words: Int32Array;
  /** Notifies issued (statistics: how often the other side had to be woken). */
  notifies = 0;

  constructor(
    buffer: SharedArrayBuffer = new SharedArrayBuffer(WakeWord.BYTES),
    readonly byteOffset = 0,
  ) {
    this.words = new Int32Array(buffer, byteOffset, 2);
  }

  get buffer(): SharedArrayBuffer {
    return this.words.buffer as SharedArrayBuffer;
  }

  /** The counter now: pass it to `sleep`/`sleepAsync` after checking for work. */
  seen(): number {
    return Atomics.load(this.words, 0);
  }

  /** Mark this side as (about to be) asleep; check for work after this and before sleeping. */
  arm(): void {
    Atomics.store(this.words, 1, 1);
  }

  disarm(): void {
    Atomics.store(this.words, 1, 0);
  }

  /** The waker: count the new work and wake the sleeper if it may be asleep. */
  wake(): void {
    Atomics.add(this.words, 0, 1);
    if (Atomics.load(this.words, 1) !== 0) {
      this.notifies++;
      Atomics.notify(this.words, 0);
    }
  }

  /** Block this thread until the counter moves from `seen` or `timeoutMs` passes (worker threads only). */
  sleep(seen: number, timeoutMs: number): void {
    Atomics.wait(this.words, 0, seen, timeoutMs);
  }

  /**
   * Without blocking the event loop: `onWake` runs (as a task) once the counter moved from `seen`
   * (immediately if it already had). Returns false when it had already moved and nothing was armed.
   */
  sleepAsync(seen: number, onWake: () => void): boolean {
    const r = (Atomics as unknown as AtomicsWaitAsync).waitAsync(this.words, 0, seen);
    if (!r.async) return false;
    r.value.then(onWake);
    return true;
  }
}
