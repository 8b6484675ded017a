/**
 * Fair scheduling of storage-function steps between tenants. Steps run synchronously on the event
 * loop, so the scheduler hands out one turn at a time, round-robin over the tenants that are
 * waiting, and yields to the event loop between turns: network and disk callbacks run between any
 * two turns, and a tenant with many executions waits its turn like one with a single execution.
 *
 * Within its turn an execution may run several steps back to back, as long as every read a step
 * asks for is already in memory (a chain served from the page cache needs no trip round the event
 * loop). Those steps count against the tenant's turn: once the turn has used `maxTurnMicros` of
 * time or `maxTurnInstructions` of eBPF instructions, the execution must yield (queue for another
 * turn) even when nobody else is waiting, so plain I/O of every tenant is served in between.
 */

/** Something that runs when granted a turn; the turn ends when `runTurn` returns. */
export interface TurnTaker {
  /** `turnStartMs`: the scheduler's clock reading (performance.now()) when it granted the turn. */
  runTurn(turnStartMs: number): void;
}

/** What an execution needs of a scheduler (`FairScheduler` on an event loop, `DeficitScheduler` on a worker). */
export interface TurnScheduler {
  /** Queue `taker` for a turn of `tenant`; `nowMs` is the caller's clock reading (performance.now()). */
  request(tenant: string, taker: TurnTaker, nowMs: number): void;
  /** Inside a turn: charge the instructions of a step against it. */
  charge(instructions: number): void;
  /** Inside a turn, before another step: whether the turn may go on. */
  mayContinue(nowMs: number): boolean;
}

export interface SchedulerOptions {
  /** Time one turn may take before the execution yields (default 100 µs). */
  readonly maxTurnMicros?: number;
  /** eBPF instructions one turn may run before the execution yields (default 200,000). */
  readonly maxTurnInstructions?: number;
}

export const DEFAULT_MAX_TURN_MICROS = 100;
export const DEFAULT_MAX_TURN_INSTRUCTIONS = 200_000;

/**
 * The bound on one turn both schedulers enforce: a turn may go on while it has run less than
 * `maxTurnMicros` and charged fewer than `maxTurnInstructions`.
 */
export abstract class TurnBoundedScheduler {
  protected readonly maxTurnMs: number;
  readonly maxTurnInstructions: number;
  private turnStartMs = 0;
  private turnInstructions = 0;
  /** Turns that ended because their work bound was reached (statistics and tests). */
  turnsCutShort = 0;

  constructor(options: SchedulerOptions) {
    const micros = options.maxTurnMicros ?? DEFAULT_MAX_TURN_MICROS;
    const instructions = options.maxTurnInstructions ?? DEFAULT_MAX_TURN_INSTRUCTIONS;
    if (!(micros > 0) || !Number.isSafeInteger(instructions) || instructions <= 0) {
      throw new RangeError(`turn bounds must be positive, got ${micros} µs and ${instructions} instructions`);
    }
    this.maxTurnMs = micros / 1000;
    this.maxTurnInstructions = instructions;
  }

  /** A turn granted at `nowMs` (performance.now()) starts with nothing charged. */
  protected startTurn(nowMs: number): void {
    this.turnStartMs = nowMs;
    this.turnInstructions = 0;
  }

  /** Inside a turn: charge the instructions of a step against it. */
  charge(instructions: number): void {
    this.turnInstructions += instructions;
  }

  /**
   * Inside a turn, before another step: whether the turn may go on (`nowMs` is the caller's clock
   * reading for that step, performance.now()). False means: request another turn instead.
   */
  mayContinue(nowMs: number): boolean {
    if (this.turnInstructions < this.maxTurnInstructions && nowMs - this.turnStartMs < this.maxTurnMs) return true;
    this.turnsCutShort++;
    return false;
  }
}

export class FairScheduler extends TurnBoundedScheduler implements TurnScheduler {
  /** Tenants with waiting executions, in round-robin order; each with its FIFO. */
  private readonly queues = new Map<string, TurnTaker[]>();
  private running = false;
  private dispatchScheduled = false;
  /** Turns granted per tenant (statistics and tests). */
  readonly turnsGranted = new Map<string, number>();

  constructor(options: SchedulerOptions = {}) {
    super(options);
  }

  /**
   * Queue `taker` for a turn of `tenant`. When nobody is running or waiting it runs at once (in
   * this call, no promise and no trip round the event loop); otherwise from the event loop, after
   * the tenants ahead of it.
   */
  request(tenant: string, taker: TurnTaker, nowMs: number = performance.now()): void {
    if (!this.running && !this.dispatchScheduled && this.queues.size === 0) {
      this.grant(tenant, taker, nowMs);
      return;
    }
    const queue = this.queues.get(tenant);
    if (queue) queue.push(taker);
    else this.queues.set(tenant, [taker]);
    this.scheduleDispatch();
  }

  /** Number of executions waiting for a turn. */
  get waiting(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  private grant(tenant: string, taker: TurnTaker, nowMs: number): void {
    this.running = true;
    this.startTurn(nowMs);
    this.turnsGranted.set(tenant, (this.turnsGranted.get(tenant) ?? 0) + 1);
    try {
      taker.runTurn(nowMs);
    } finally {
      this.running = false;
      this.scheduleDispatch();
    }
  }

  private scheduleDispatch(): void {
    if (this.dispatchScheduled || this.running || this.queues.size === 0) return;
    this.dispatchScheduled = true;
    setImmediate(this.dispatch);
  }

  private readonly dispatch = (): void => {
    this.dispatchScheduled = false;
    if (this.running) return;
    const next = this.queues.entries().next();
    if (next.done) return;
    const [tenant, queue] = next.value;
    const taker = queue.shift() as TurnTaker;
    // Move the tenant to the back of the rotation (or drop it when it has nobody left waiting).
    this.queues.delete(tenant);
    if (queue.length > 0) this.queues.set(tenant, queue);
    this.grant(tenant, taker, performance.now());
  };
}
