/**
 * CPU fairness between tenants on a thread that runs storage-function turns (an execution worker):
 * deficit round-robin over the measured time of each turn. Every tenant with waiting executions is
 * in the rotation; when its turn in the rotation comes it is credited `quantum x weight` of time,
 * and it runs turns while its credit lasts, each turn's measured time taken off. A tenant whose
 * executions run long steps therefore gets fewer turns, not more time: over any busy stretch each
 * waiting tenant gets a share of the thread's time proportional to its weight. A tenant alone uses
 * all of it (nothing is reserved for absent tenants), and a tenant that stops waiting loses its
 * credit (it cannot save up time while idle).
 *
 * The thread drives it (`runNext`) between its other work, so there is no timer and no event-loop
 * trip per turn; turns are bounded as in `FairScheduler` (`maxTurnMicros`, `maxTurnInstructions`),
 * and one step's own time is bounded by the per-step fuel of the tenant's budget.
 */
import { type SchedulerOptions, TurnBoundedScheduler, type TurnScheduler, type TurnTaker } from './scheduler.js';

interface TenantQueue {
  readonly tenant: string;
  readonly takers: TurnTaker[];
  /** Credit of time left in this round, in milliseconds. */
  deficitMs: number;
}

export interface DeficitSchedulerOptions extends SchedulerOptions {
  /** Weight of a tenant (default 1): its share of time against others that are waiting. */
  readonly weightOf?: (tenant: string) => number;
}

export class DeficitScheduler extends TurnBoundedScheduler implements TurnScheduler {
  /** Tenants with waiting executions, in rotation order (a Map keeps insertion order). */
  private readonly rotation = new Map<string, TenantQueue>();
  private readonly quantumMs: number;
  private readonly weightOf: (tenant: string) => number;
  private waitingCount = 0;
  /** Measured turn time per tenant, in milliseconds (statistics, tests). */
  readonly usedMs = new Map<string, number>();

  constructor(options: DeficitSchedulerOptions = {}) {
    super(options);
    this.quantumMs = this.maxTurnMs;
    this.weightOf = (tenant) => {
      const w = options.weightOf?.(tenant) ?? 1;
      return w > 0 && Number.isFinite(w) ? w : 1;
    };
  }

  request(tenant: string, taker: TurnTaker, _nowMs?: number): void {
    let q = this.rotation.get(tenant);
    if (q === undefined) {
      q = { tenant, takers: [], deficitMs: 0 };
      this.rotation.set(tenant, q);
    }
    q.takers.push(taker);
    this.waitingCount++;
  }

  /** Executions waiting for a turn. */
  get waiting(): number {
    return this.waitingCount;
  }

  /** Grant one turn to the tenant whose credit says it is next; false when nobody waits. */
  runNext(): boolean {
    for (;;) {
      const head = this.rotation.values().next();
      if (head.done) return false;
      const q = head.value;
      if (q.deficitMs <= 0) {
        // Its visit in the rotation: credit it; still in debt (long turns earlier), it waits another round.
        q.deficitMs += this.quantumMs * this.weightOf(q.tenant);
        if (q.deficitMs <= 0) {
          this.rotation.delete(q.tenant);
          this.rotation.set(q.tenant, q);
          continue;
        }
      }
      this.runOne(q);
      return true;
    }
  }

  private runOne(q: TenantQueue): void {
    const taker = q.takers.shift() as TurnTaker;
    this.waitingCount--;
    const start = performance.now();
    this.startTurn(start);
    try {
      taker.runTurn(start);
    } finally {
      const used = performance.now() - start;
      q.deficitMs -= used;
      this.usedMs.set(q.tenant, (this.usedMs.get(q.tenant) ?? 0) + used);
      if (q.takers.length === 0) {
        // Nothing waiting (the turn's execution ended or waits for reads): it leaves the rotation and its credit lapses.
        this.rotation.delete(q.tenant);
      } else if (q.deficitMs <= 0) {
        this.rotation.delete(q.tenant);
        this.rotation.set(q.tenant, q);
      }
    }
  }
}
