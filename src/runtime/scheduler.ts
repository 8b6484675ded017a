/**
 * Fair scheduling of storage-function steps between tenants. A step runs synchronously (it is
 * bounded by its instruction budget), so the scheduler hands out one turn at a time, round-robin
 * over the tenants that are waiting, and yields to the event loop between turns: network and disk
 * callbacks run between any two steps, and a tenant with many executions waits its turn like one
 * with a single execution.
 */

interface Waiter {
  grant: () => void;
}

export class FairScheduler {
  /** Tenants with waiting steps, in round-robin order; each with its FIFO of waiters. */
  private readonly queues = new Map<string, Waiter[]>();
  private running = false;
  private dispatchScheduled = false;
  /** Turns granted per tenant (statistics and tests). */
  readonly turnsGranted = new Map<string, number>();

  /** Resolves when it is `tenant`'s turn; the caller must call the returned `release` when its step is done. */
  turn(tenant: string): Promise<() => void> {
    return new Promise((resolve) => {
      const waiter: Waiter = {
        grant: () => {
          let released = false;
          resolve(() => {
            if (released) return;
            released = true;
            this.running = false;
            this.scheduleDispatch();
          });
        },
      };
      // Nobody running or waiting: take the turn now rather than after a trip round the event loop.
      if (!this.running && !this.dispatchScheduled && this.queues.size === 0) {
        this.running = true;
        this.turnsGranted.set(tenant, (this.turnsGranted.get(tenant) ?? 0) + 1);
        waiter.grant();
        return;
      }
      const queue = this.queues.get(tenant);
      if (queue) queue.push(waiter);
      else this.queues.set(tenant, [waiter]);
      this.scheduleDispatch();
    });
  }

  /** Number of steps waiting for a turn. */
  get waiting(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  private scheduleDispatch(): void {
    if (this.dispatchScheduled || this.running || this.queues.size === 0) return;
    this.dispatchScheduled = true;
    setImmediate(() => {
      this.dispatchScheduled = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    if (this.running) return;
    const next = this.queues.entries().next();
    if (next.done) return;
    const [tenant, queue] = next.value;
    const waiter = queue.shift() as Waiter;
    // Move the tenant to the back of the rotation (or drop it when it has nobody left waiting).
    this.queues.delete(tenant);
    if (queue.length > 0) this.queues.set(tenant, queue);
    this.running = true;
    this.turnsGranted.set(tenant, (this.turnsGranted.get(tenant) ?? 0) + 1);
    waiter.grant();
  }
}
