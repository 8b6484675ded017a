import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeficitScheduler } from './deficit-scheduler.js';
import type { TurnTaker } from './scheduler.js';

/** A taker whose every turn busy-waits `turnMs`, then queues again (always runnable). */
function spinner(scheduler: DeficitScheduler, tenant: string, turnMs: number): TurnTaker {
  const taker: TurnTaker = {
    runTurn() {
      const end = performance.now() + turnMs;
      while (performance.now() < end) {}
      scheduler.request(tenant, taker);
    },
  };
  return taker;
}

function share(scheduler: DeficitScheduler, a: string, b: string): number {
  const ua = scheduler.usedMs.get(a) ?? 0;
  const ub = scheduler.usedMs.get(b) ?? 0;
  return ua / (ua + ub);
}

describe('DeficitScheduler', () => {
  it('gives tenants equal time, not equal turns, when one takes ten times longer per turn', () => {
    const s = new DeficitScheduler({ maxTurnMicros: 100 });
    s.request('long', spinner(s, 'long', 1));
    s.request('short', spinner(s, 'short', 0.1));
    for (let i = 0; i < 400; i++) assert.ok(s.runNext());
    const longShare = share(s, 'long', 'short');
    assert.ok(longShare > 0.3 && longShare < 0.7, `long tenant's share of time ${longShare.toFixed(2)}`);
  });

  it('shares time by weight', () => {
    const s = new DeficitScheduler({ maxTurnMicros: 100, weightOf: (t) => (t === 'heavy' ? 3 : 1) });
    s.request('heavy', spinner(s, 'heavy', 0.1));
    s.request('light', spinner(s, 'light', 0.1));
    for (let i = 0; i < 800; i++) s.runNext();
    const heavyShare = share(s, 'heavy', 'light');
    assert.ok(heavyShare > 0.6 && heavyShare < 0.9, `weight 3 against 1 got ${heavyShare.toFixed(2)} of the time`);
  });

  it('lets a tenant alone use all the time, and a newcomer runs within one turn of the others', () => {
    const s = new DeficitScheduler({ maxTurnMicros: 100 });
    s.request('alone', spinner(s, 'alone', 0.5));
    for (let i = 0; i < 20; i++) assert.ok(s.runNext());
    let ran = false;
    s.request('new', { runTurn: () => (ran = true) });
    assert.ok(s.runNext());
    if (!ran) assert.ok(s.runNext());
    assert.ok(ran, 'the newcomer waited more than one turn');
    assert.equal(s.waiting, 1);
  });
});
