/**
 * `nearbpf top`: the quantile and delta arithmetic (table-driven and property-based), and `--once`
 * against a real target under load, whose figures must agree with the load's known shape.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { NvmeTcpHost } from '../client/host.js';
import { ProgramClient } from '../client/programs.js';
import { assemble, encodeProgram } from '../isa/index.js';
import { PrometheusTargetMetrics, startMetricsServer } from '../target/metrics.js';
import { startTarget, type TargetHandle } from '../target/target.js';
import { LIST_WALK_ASM } from '../testing/storage-programs.js';
import type { CliIo } from './io.js';
import { main } from './main.js';
import {
  ExpositionError,
  type Histogram,
  histogramDelta,
  histogramQuantile,
  parseExposition,
  parseSnapshot,
  type TopFrame,
} from './top-model.js';

const INF = Number.POSITIVE_INFINITY;
const h = (bounds: number[], cumulative: number[]): Histogram => ({
  bounds,
  cumulative,
  count: cumulative[cumulative.length - 1],
  sum: 0,
});

describe('top: histogram arithmetic', () => {
  it('quantiles interpolate inside the bucket the rank falls in, as histogram_quantile does', () => {
    const cases: { q: number; hist: Histogram; want: number | null }[] = [
      { q: 0.5, hist: h([1, 2, 4, INF], [0, 10, 10, 10]), want: 1.5 },
      { q: 0.99, hist: h([1, 2, 4, INF], [0, 10, 10, 10]), want: 1.99 },
      { q: 0.5, hist: h([1, 2, INF], [4, 4, 4]), want: 0.5 }, // the first bucket starts at 0
      { q: 0.75, hist: h([1, 2, 4, INF], [2, 2, 4, 4]), want: 3 },
      { q: 0.5, hist: h([1, 2, INF], [0, 0, 5]), want: 2 }, // in +Inf: the largest finite bound
      { q: 0.5, hist: h([1, 2, INF], [0, 0, 0]), want: null }, // nothing observed
    ];
    for (const c of cases) {
      const got = histogramQuantile(c.q, c.hist);
      if (c.want === null) assert.equal(got, null);
      else assert.ok(got !== null && Math.abs(got - c.want) < 1e-12, `${JSON.stringify(c)} gave ${got}`);
    }
  });

  it('quantiles grow with q and stay within the finite bounds (property)', () => {
    const bounds = [0.00001, 0.0001, 0.001, 0.01, 0.1, 1, INF];
    fc.assert(
      fc.property(
        fc.array(fc.nat(50), { minLength: bounds.length, maxLength: bounds.length }),
        fc.double({ min: 0.01, max: 1, noNaN: true }),
        fc.double({ min: 0.01, max: 1, noNaN: true }),
        (perBucket, q1, q2) => {
          let running = 0;
          const hist = h(
            bounds,
            perBucket.map((n) => (running += n)),
          );
          const [lo, hi] = q1 <= q2 ? [q1, q2] : [q2, q1];
          const a = histogramQuantile(lo, hist);
          const b = histogramQuantile(hi, hist);
          if (hist.count === 0) return a === null && b === null;
          return a !== null && b !== null && a <= b + 1e-15 && a >= 0 && b <= 1;
        },
      ),
    );
  });

  it('deltas are the observations between two scrapes; a counter reset starts over', () => {
    const prev = h([1, INF], [3, 5]);
    const cur = h([1, INF], [4, 9]);
    assert.deepEqual(histogramDelta(prev, cur)?.cumulative, [1, 4]);
    assert.equal(histogramDelta(prev, cur)?.count, 4);
    assert.deepEqual(histogramDelta(cur, prev)?.cumulative, [3, 5], 'a restart: the new counts');
    assert.deepEqual(histogramDelta(null, cur)?.cumulative, [4, 9]);
  });
});

describe('top: the exposition parser', () => {
  it('reads names, escaped label values, special values and timestamps; refuses malformed lines', () => {
    const samples = parseExposition(
      [
        '# HELP a_total help with "quotes"',
        '# TYPE a_total counter',
        'a_total{host="nqn.x:uuid:1",msg="say \\"hi\\"\\nback\\\\slash"} 3',
        'b 1.5e3 1700000000000',
        'c{le="+Inf"} +Inf',
        'd NaN',
        'e{} -Inf',
        // prom-client writes NaN as `Nan` (its event-loop-lag gauges before the first sample).
        'nodejs_eventloop_lag_mean_seconds Nan',
        'f inf',
        '',
      ].join('\n'),
    );
    assert.deepEqual(samples.slice(0, 3), [
      { name: 'a_total', labels: { host: 'nqn.x:uuid:1', msg: 'say "hi"\nback\\slash' }, value: 3 },
      { name: 'b', labels: {}, value: 1500 },
      { name: 'c', labels: { le: '+Inf' }, value: Number.POSITIVE_INFINITY },
    ]);
    assert.ok(Number.isNaN(samples[3].value));
    assert.equal(samples[4].value, Number.NEGATIVE_INFINITY);
    assert.ok(Number.isNaN(samples[5].value));
    assert.equal(samples[6].value, Number.POSITIVE_INFINITY);
    for (const bad of ['{x="1"} 1', 'a{x=1} 1', 'a{x="1} 1', 'a', 'a one', 'a 1 2 3']) {
      assert.throws(() => parseExposition(bad), ExpositionError, bad);
    }
  });

  it('agrees with parse-prometheus-text-format on every counter and gauge of a real scrape (differential)', async () => {
    const metrics = new PrometheusTargetMetrics({ maxTenants: 4, maxProgramsPerTenant: 4 });
    const dir = await mkdtemp(join(tmpdir(), 'nearbpf-top-parse-'));
    const target = await startTarget({
      metrics,
      config: {
        listen: { host: '127.0.0.1', port: 0 },
        dataDir: dir,
        subsystems: [{ nqn: 'nqn.2026-11.io.nearbpf:p', namespaces: [{ nsid: 1, path: 'a.img', sizeBytes: 1 << 20 }] }],
      },
    });
    try {
      const host = await NvmeTcpHost.connect({
        hostNqn: 'nqn.2014-08.org.nvmexpress:uuid:p"q\\r',
        host: '127.0.0.1',
        port: target.address.port,
        subsystemNqn: 'nqn.2026-11.io.nearbpf:p',
        ioQueues: 1,
      });
      await host.write(1, 0, Buffer.alloc(4096));
      await host.read(1, 0, 8);
      const text = await metrics.scrape();
      await host.close();
      const mine = parseExposition(text);
      let compared = 0;
      for (const f of parsePrometheusTextFormat(text)) {
        if (f.type !== 'COUNTER' && f.type !== 'GAUGE') continue;
        for (const m of f.metrics) {
          const same = mine.filter(
            (s) =>
              s.name === f.name &&
              JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(m.labels ?? {}).sort()),
          );
          assert.equal(same.length, 1, `${f.name} ${JSON.stringify(m.labels)}`);
          assert.equal(same[0].value, Number(m.value));
          compared++;
        }
      }
      assert.ok(compared > 30, `${compared} samples compared`);
      // Histograms: per label set, buckets cumulative and the +Inf bucket equal to the count.
      const snap = parseSnapshot(text, 0);
      const ns = snap.namespaces.get('nqn.2026-11.io.nearbpf:p\n1');
      assert.ok(ns?.latency && ns.latency.count === 2 && ns.commands === 2, JSON.stringify(ns));
      assert.equal(ns.readBytes, 4096);
      assert.equal(ns.writtenBytes, 4096);
    } finally {
      await target.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('nearbpf top against a target under load', () => {
  const SUBNQN = 'nqn.2026-11.io.nearbpf:top';
  const HOST = 'nqn.2014-08.org.nvmexpress:uuid:top-host';
  const NODES = 5;
  let dir: string;
  let target: TargetHandle;
  let endpoint: Awaited<ReturnType<typeof startMetricsServer>>;
  let host: NvmeTcpHost;
  let programs: ProgramClient;
  let walk: number;
  let metricsAddress: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nearbpf-top-'));
    const metrics = new PrometheusTargetMetrics({ maxTenants: 8, maxProgramsPerTenant: 8 });
    target = await startTarget({
      metrics,
      config: {
        listen: { host: '127.0.0.1', port: 0 },
        dataDir: dir,
        subsystems: [{ nqn: SUBNQN, namespaces: [{ nsid: 1, path: 'ns1.img', sizeBytes: 8 << 20 }] }],
      },
    });
    endpoint = await startMetricsServer(metrics, { host: '127.0.0.1', port: 0 });
    metricsAddress = `127.0.0.1:${endpoint.address.port}`;
    host = await NvmeTcpHost.connect({
      hostNqn: HOST,
      host: '127.0.0.1',
      port: target.address.port,
      subsystemNqn: SUBNQN,
      ioQueues: 1,
    });
    programs = new ProgramClient(host);
    // A list of NODES nodes at 1 MiB: every execution reads exactly NODES times.
    const list = Buffer.alloc(NODES * 512);
    for (let i = 0; i < NODES; i++) {
      list.writeBigUInt64LE(BigInt(i + 1), i * 512);
      list.writeBigUInt64LE(i + 1 < NODES ? BigInt((1 << 20) + (i + 1) * 512) : 0n, i * 512 + 8);
    }
    await host.write(1, (1 << 20) / 512, list);
    walk = await programs.load(encodeProgram(assemble(LIST_WALK_ASM)), { name: 'walk' });
  });
  after(async () => {
    await host?.close();
    await endpoint?.close();
    await target?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const top = async (args: string[]) => {
    let stdout = '';
    let stderr = '';
    const io: CliIo = {
      stdout: { write: (c) => void (stdout += String(c)) },
      stderr: { write: (c) => void (stderr += String(c)) },
    };
    const code = await main(['top', ...args], io);
    return { code, stdout, stderr };
  };

  /** Runs `fn` while a load of 4 KiB writes and reads (one at a time) and list walks runs. */
  async function underLoad<T>(fn: () => Promise<T>): Promise<T> {
    let running = true;
    const block = Buffer.alloc(4096, 7);
    const io = (async () => {
      for (let i = 0; running; i++) {
        await host.write(1, (i % 64) * 8, block);
        await host.read(1, (i % 64) * 8, 8);
      }
    })();
    const exec = (async () => {
      while (running) await programs.execute(walk, { nsid: 1, params: [BigInt(1 << 20), 0n] });
    })();
    try {
      return await fn();
    } finally {
      running = false;
      await Promise.all([io, exec]);
    }
  }

  it('--once --json: rates whose ratios match the load (reads per execution, bytes per I/O)', async () => {
    const { code, stdout, stderr } = await underLoad(() =>
      top(['--metrics', metricsAddress, '--once', '--json', '--interval', '0.5']),
    );
    assert.equal(code, 0, stderr);
    const frame = JSON.parse(stdout) as TopFrame;
    const p = frame.programs.find((r) => r.tenant === HOST && r.program === 'walk');
    assert.ok(p && p.executionsPerSecond > 0, stdout);
    assert.ok(Math.abs(p.readsPerSecond / p.executionsPerSecond - NODES) < 1e-9, 'every execution read NODES times');
    assert.equal(p.failuresPerSecond, 0);
    assert.ok(p.p50 !== null && p.p99 !== null && p.p50 > 0 && p.p50 <= p.p99);
    assert.ok(
      p.cpu > 0 && (p.cpuShare ?? 0) > 0 && (p.cpuShare ?? 2) <= 1,
      `${JSON.stringify(p)}, process CPU ${frame.processCpu}`,
    );
    const t = frame.tenants.find((r) => r.tenant === HOST);
    assert.ok(t && Math.abs(t.executionsPerSecond - p.executionsPerSecond) < 1e-9, 'one program: tenant = program');
    assert.ok(t.waitP50 !== null && t.waitP99 !== null && t.waitP50 <= t.waitP99);
    const n = frame.namespaces.find((r) => r.subsystem === SUBNQN && r.nsid === '1');
    assert.ok(n && n.iops > 0);
    const bytesPerOp = (n.readBytesPerSecond + n.writtenBytesPerSecond) / n.iops;
    assert.ok(Math.abs(bytesPerOp - 4096) < 1e-6, `every I/O moved 4 KiB, got ${bytesPerOp}`);
    assert.ok(Math.abs(n.readBytesPerSecond - n.writtenBytesPerSecond) <= 4096 / frame.intervalSeconds + 1e-6);
    assert.ok(n.p50 !== null && n.p99 !== null && n.p50 <= n.p99);
    assert.ok(frame.processCpu !== null && frame.processCpu > 0);
  });

  it('--once: the text view names the tenant, program and namespace', async () => {
    const { code, stdout, stderr } = await underLoad(() => top(['--metrics', metricsAddress, '--once', '--interval', '0.3']));
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^nearbpf top {2}http:\/\/127\.0\.0\.1:\d+\/metrics {2}every 0\.\d s {3}target CPU [\d.]+% of a core/);
    const lines = stdout.split('\n');
    const programRow = lines.find((l) => l.includes(' walk '));
    assert.ok(programRow, stdout);
    assert.match(programRow, /top-host\s+walk\s+[\d.]+\s+0\.00\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+$/);
    assert.ok(lines.some((l) => l.startsWith('TENANT') && l.includes('WAIT P99')));
    assert.ok(lines.some((l) => l.startsWith(SUBNQN.slice(0, 20)) || l.includes(':top')));
  });

  it('bad usage and an unreachable endpoint are typed errors', async () => {
    assert.equal((await top(['--interval', '0'])).code, 2);
    assert.equal((await top(['--metrics', 'nowhere'])).code, 2);
    assert.equal((await top(['--rows', '-1'])).code, 2);
    const closed = await top(['--metrics', '127.0.0.1:1', '--once']);
    assert.equal(closed.code, 1);
    assert.match(closed.stderr, /error\[ERR_METRICS_UNREACHABLE\]/);
  });
});
