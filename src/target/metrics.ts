/**
 * Prometheus metrics of the target. The hot paths (every NVMe command, every storage-function
 * execution) add to plain numeric cells resolved once per label set and kept (`CounterCell`,
 * `HistogramCell`: no label objects, hashing or allocation per event); prom-client reads them at
 * scrape time through collectors registered in its `Registry`, which also does the exposition format
 * and the process metrics. With metrics off every hook is `NO_METRICS`, whose methods do nothing.
 *
 * Cardinality is bounded: the first `maxTenants` host NQNs get their own `host`/`tenant` label, the
 * first `maxProgramsPerTenant` program names of each a `program` label; the rest count under `other`.
 */
import { createServer, type Server } from 'node:http';
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { IoOpcode } from '../protocol/constants.js';
import { ProgramOpcode } from '../protocol/programs.js';

/** Seconds: 10 µs to 10 s, the span of a cached read to a long scan. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

export const OTHER_LABEL = 'other';

export interface MetricsConfig {
  /** Where the HTTP endpoint listens; null: metrics off. */
  listen: { host: string; port: number } | null;
  maxTenants: number;
  maxProgramsPerTenant: number;
}

type Labels = Record<string, string>;

/** One counter value of one label set; the hot path adds to `value`. */
export class CounterCell {
  value = 0;
  constructor(readonly labels: Labels) {}
}

/** One histogram of one label set: per-bucket counts (not cumulative), sum and count. */
export class HistogramCell {
  readonly buckets = new Float64Array(LATENCY_BUCKETS_SECONDS.length + 1);
  sum = 0;
  count = 0;
  constructor(readonly labels: Labels) {}

  observe(seconds: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS_SECONDS.length && seconds > LATENCY_BUCKETS_SECONDS[i]) i++;
    this.buckets[i]++;
    this.sum += seconds;
    this.count++;
  }
}

/** A family of cells read by prom-client's registry (the `get()` shape its metrics have). */
class CellFamily<C extends CounterCell | HistogramCell> {
  private readonly cells = new Map<string, C>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'histogram',
    private readonly make: (labels: Labels) => C,
  ) {}

  /** The cell of a label set; call once per label set and keep it (this builds a key). */
  cell(labels: Labels): C {
    const key = JSON.stringify(labels);
    let c = this.cells.get(key);
    if (c === undefined) {
      c = this.make(labels);
      this.cells.set(key, c);
    }
    return c;
  }

  get(): {
    name: string;
    help: string;
    type: string;
    values: { labels: Labels; value: number; metricName?: string }[];
    aggregator: 'sum';
  } {
    const values: { labels: Labels; value: number; metricName?: string }[] = [];
    for (const c of this.cells.values()) {
      if (c instanceof CounterCell) {
        values.push({ labels: c.labels, value: c.value });
        continue;
      }
      let cumulative = 0;
      for (let i = 0; i < LATENCY_BUCKETS_SECONDS.length; i++) {
        cumulative += c.buckets[i];
        values.push({
          metricName: `${this.name}_bucket`,
          labels: { ...c.labels, le: String(LATENCY_BUCKETS_SECONDS[i]) },
          value: cumulative,
        });
      }
      values.push({ metricName: `${this.name}_bucket`, labels: { ...c.labels, le: '+Inf' }, value: c.count });
      values.push({ metricName: `${this.name}_sum`, labels: c.labels, value: c.sum });
      values.push({ metricName: `${this.name}_count`, labels: c.labels, value: c.count });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: 'sum' };
  }

  reset(): void {
    this.cells.clear();
  }
}

/** Gives the first `max` distinct names their own label, the rest `other`. */
export class LabelCap {
  private readonly named = new Set<string>();
  constructor(private readonly max: number) {}
  label(name: string): string {
    if (this.named.has(name)) return name;
    if (this.named.size >= this.max) return OTHER_LABEL;
    this.named.add(name);
    return name;
  }
}

/** The cells of one queue's I/O commands, per namespace, opcode and status (resolved on first use). */
export interface IoMeter {
  command(nsid: number, opcode: number, status: number, bytes: number, seconds: number): void;
}

/** The cells of one loaded program. */
export interface ProgramMeter {
  executed(
    outcome: string,
    steps: number,
    reads: number,
    bytesRead: number,
    instructions: number,
    outputBytes: number,
    seconds: number,
    cpuSeconds: number,
    queuedSeconds: number,
  ): void;
}

/** What the target can see at scrape time (gauges are read then, never kept up to date). */
export interface TargetGauges {
  queues(): Iterable<{ subsystem: string; host: string; inFlight: number }>;
  associations(): Iterable<{ subsystem: string; host: string }>;
  pageCaches(): Iterable<{ subsystem: string; nsid: number; hits: number; misses: number; evictions: number; bytes: number }>;
  verifierQueue(): number;
  /** Executions waiting for a scheduler turn. */
  schedulerWaiting(): number;
  /** Each listen port: its address, whether it listens, and what its associations moved since start. */
  ports(): Iterable<{
    id: number;
    address: string;
    listening: boolean;
    connections: number;
    readCommands: number;
    writeCommands: number;
    bytesRead: number;
    bytesWritten: number;
  }>;
}

type PortGauge = ReturnType<TargetGauges['ports']> extends Iterable<infer P> ? P : never;

/** The interface hooks call: one call per event. */
export interface TargetMetrics {
  readonly enabled: boolean;
  /** Where gauges read from at scrape time (the target calls this once created). */
  attach(gauges: TargetGauges): void;
  ioMeter(subsystem: string, host: string): IoMeter;
  programMeter(tenant: string, program: string): ProgramMeter;
  connectionOpened(): void;
  keepAliveExpired(subsystem: string, host: string): void;
  authentication(subsystem: string, host: string, ok: boolean): void;
  programLoad(tenant: string, program: string, result: string, verifySeconds: number): void;
  quotaHit(host: string, quota: string): void;
}

const NO_IO_METER: IoMeter = { command: () => {} };
const NO_PROGRAM_METER: ProgramMeter = { executed: () => {} };

/** Metrics off: every hook does nothing. */
export const NO_METRICS: TargetMetrics = {
  enabled: false,
  attach: () => {},
  ioMeter: () => NO_IO_METER,
  programMeter: () => NO_PROGRAM_METER,
  connectionOpened: () => {},
  keepAliveExpired: () => {},
  authentication: () => {},
  programLoad: () => {},
  quotaHit: () => {},
};

/** NVMe I/O opcode names (others are labelled by their hex value). */
const OPCODE_NAMES: Record<number, string> = {
  [IoOpcode.Flush]: 'flush',
  [IoOpcode.Write]: 'write',
  [IoOpcode.Read]: 'read',
  [IoOpcode.WriteZeroes]: 'write_zeroes',
  [IoOpcode.DatasetManagement]: 'dataset_management',
  [ProgramOpcode.Execute]: 'program_execute',
  [ProgramOpcode.ExecuteWithInput]: 'program_execute_with_input',
};
export const opcodeName = (op: number) => OPCODE_NAMES[op] ?? `0x${op.toString(16).padStart(2, '0')}`;
/** Status as SCT and SC (`0x080`: SCT 0, SC 80h), without the more and do-not-retry bits. */
export const statusName = (status: number) =>
  status === 0 ? 'success' : `0x${((status >>> 1) & 0x7ff).toString(16).padStart(3, '0')}`;

class IoCells {
  commands: CounterCell;
  latency: HistogramCell;
  bytes: CounterCell | null;
  constructor(m: PrometheusTargetMetrics, labels: Labels, opcode: number, status: number) {
    this.commands = m.commands.cell({ ...labels, opcode: opcodeName(opcode), status: statusName(status) });
    this.latency = m.commandSeconds.cell({ ...labels, opcode: opcodeName(opcode) });
    this.bytes =
      status !== 0
        ? null
        : opcode === IoOpcode.Read
          ? m.readBytes.cell(labels)
          : opcode === IoOpcode.Write
            ? m.writtenBytes.cell(labels)
            : null;
  }
}

class PrometheusIoMeter implements IoMeter {
  /** nsid, opcode and status packed into one number: no key string per command. */
  private readonly cells = new Map<number, IoCells>();
  constructor(
    private readonly m: PrometheusTargetMetrics,
    private readonly subsystem: string,
    private readonly host: string,
  ) {}

  command(nsid: number, opcode: number, status: number, bytes: number, seconds: number): void {
    const key = (nsid >>> 0) * 0x1000000 + (opcode & 0xff) * 0x10000 + (status & 0xffff);
    let c = this.cells.get(key);
    if (c === undefined) {
      c = new IoCells(this.m, { subsystem: this.subsystem, nsid: String(nsid >>> 0), host: this.host }, opcode, status);
      this.cells.set(key, c);
    }
    c.commands.value++;
    c.latency.observe(seconds);
    if (c.bytes !== null) c.bytes.value += bytes;
  }
}

class PrometheusProgramMeter implements ProgramMeter {
  private readonly outcomes = new Map<string, CounterCell>();
  private readonly steps: CounterCell;
  private readonly reads: CounterCell;
  private readonly bytesRead: CounterCell;
  private readonly instructions: CounterCell;
  private readonly outputBytes: CounterCell;
  private readonly latency: HistogramCell;
  private readonly cpu: CounterCell;
  private readonly wait: HistogramCell;
  constructor(
    private readonly m: PrometheusTargetMetrics,
    private readonly labels: Labels,
  ) {
    this.cpu = m.programCpuSeconds.cell(labels);
    this.wait = m.schedulerWaitSeconds.cell({ tenant: labels.tenant });
    this.steps = m.programSteps.cell(labels);
    this.reads = m.programReads.cell(labels);
    this.bytesRead = m.programReadBytes.cell(labels);
    this.instructions = m.programInstructions.cell(labels);
    this.outputBytes = m.programOutputBytes.cell(labels);
    this.latency = m.programSeconds.cell(labels);
  }

  executed(
    outcome: string,
    steps: number,
    reads: number,
    bytesRead: number,
    instructions: number,
    outputBytes: number,
    seconds: number,
    cpuSeconds: number,
    queuedSeconds: number,
  ): void {
    let c = this.outcomes.get(outcome);
    if (c === undefined) {
      c = this.m.programExecutions.cell({ ...this.labels, outcome });
      this.outcomes.set(outcome, c);
    }
    c.value++;
    this.steps.value += steps;
    this.reads.value += reads;
    this.bytesRead.value += bytesRead;
    this.instructions.value += instructions;
    this.outputBytes.value += outputBytes;
    this.cpu.value += cpuSeconds;
    this.latency.observe(seconds);
    this.wait.observe(queuedSeconds);
  }
}

const counter = (name: string, help: string) => new CellFamily<CounterCell>(name, help, 'counter', (l) => new CounterCell(l));
const histogram = (name: string, help: string) =>
  new CellFamily<HistogramCell>(name, help, 'histogram', (l) => new HistogramCell(l));

export class PrometheusTargetMetrics implements TargetMetrics {
  readonly enabled = true;
  readonly registry = new Registry();
  readonly commands = counter('nearbpf_commands_total', 'NVMe I/O commands completed, by namespace, host, opcode and status.');
  readonly commandSeconds = histogram(
    'nearbpf_command_duration_seconds',
    'NVMe I/O command latency, from capsule to completion.',
  );
  readonly readBytes = counter('nearbpf_read_bytes_total', 'Bytes read by successful Read commands.');
  readonly writtenBytes = counter('nearbpf_written_bytes_total', 'Bytes written by successful Write commands.');
  readonly connectionsOpened = counter('nearbpf_connections_opened_total', 'TCP connections accepted.');
  readonly keepAliveExpiries = counter('nearbpf_keepalive_expiries_total', 'Associations ended by keep-alive timeout.');
  readonly authentications = counter('nearbpf_authentications_total', 'DH-HMAC-CHAP exchanges finished, by result.');
  readonly quotaHits = counter('nearbpf_quota_hits_total', 'Connects refused by a per-host, per-address or overall quota.');
  readonly programLoads = counter('nearbpf_program_loads_total', 'Program loads, by result (accepted or the rejection reason).');
  readonly verifySeconds = histogram('nearbpf_program_load_duration_seconds', 'Time to verify and compile a program (load).');
  readonly programExecutions = counter('nearbpf_program_executions_total', 'Storage-function executions, by outcome.');
  readonly programSteps = counter('nearbpf_program_steps_total', 'Steps run by storage functions.');
  readonly programReads = counter('nearbpf_program_reads_total', 'Namespace reads asked for by storage functions.');
  readonly programReadBytes = counter('nearbpf_program_read_bytes_total', 'Namespace bytes read by storage functions.');
  readonly programInstructions = counter(
    'nearbpf_program_instructions_total',
    'eBPF instructions executed by storage functions.',
  );
  readonly programOutputBytes = counter(
    'nearbpf_program_output_bytes_total',
    'Output bytes of successful storage-function executions.',
  );
  readonly programSeconds = histogram('nearbpf_program_execution_duration_seconds', 'Storage-function execution latency.');
  readonly programCpuSeconds = counter(
    'nearbpf_program_cpu_seconds_total',
    'Time storage functions spent running steps (on the event loop: CPU time of the target).',
  );
  readonly schedulerWaitSeconds = histogram(
    'nearbpf_scheduler_wait_seconds',
    'Time one execution spent waiting for scheduler turns, per tenant.',
  );
  private readonly hosts: LabelCap;
  private readonly programs = new Map<string, LabelCap>();
  private readonly programMeters = new Map<string, ProgramMeter>();
  private gauges: TargetGauges | null = null;

  constructor(private readonly config: Pick<MetricsConfig, 'maxTenants' | 'maxProgramsPerTenant'>) {
    this.hosts = new LabelCap(config.maxTenants);
    for (const f of [
      this.commands,
      this.commandSeconds,
      this.readBytes,
      this.writtenBytes,
      this.connectionsOpened,
      this.keepAliveExpiries,
      this.authentications,
      this.quotaHits,
      this.programLoads,
      this.verifySeconds,
      this.programExecutions,
      this.programSteps,
      this.programReads,
      this.programReadBytes,
      this.programInstructions,
      this.programOutputBytes,
      this.programSeconds,
      this.programCpuSeconds,
      this.schedulerWaitSeconds,
    ]) {
      this.registry.registerMetric(f as never);
    }
    collectDefaultMetrics({ register: this.registry });
    const self = this;
    // Metrics read from the target at scrape time (levels as gauges; counts since start as counters,
    // which only grow, so `rate()` works on them as on any `_total`).
    const sampled =
      <M extends Gauge | Counter>(
        Kind: new (config: { name: string; help: string; labelNames: string[]; registers: Registry[]; collect: () => void }) => M,
      ) =>
      (name: string, help: string, labelNames: string[], read: (m: M, t: TargetGauges) => void) =>
        new Kind({
          name,
          help,
          labelNames,
          registers: [this.registry],
          collect(this: M) {
            this.reset();
            if (self.gauges) read(this, self.gauges);
          },
        });
    const gauge = sampled(Gauge);
    const counter = sampled(Counter);
    gauge(
      'nearbpf_queue_depth',
      'Commands in flight, summed over the queues of a subsystem and host.',
      ['subsystem', 'host'],
      (g, t) => {
        for (const q of t.queues()) g.inc({ subsystem: q.subsystem, host: this.host(q.host) }, q.inFlight);
      },
    );
    gauge('nearbpf_connections', 'Connected queues (TCP connections past Connect).', ['subsystem', 'host'], (g, t) => {
      for (const q of t.queues()) g.inc({ subsystem: q.subsystem, host: this.host(q.host) }, 1);
    });
    gauge('nearbpf_associations', 'Associations (controllers).', ['subsystem', 'host'], (g, t) => {
      for (const a of t.associations()) g.inc({ subsystem: a.subsystem, host: this.host(a.host) }, 1);
    });
    type CacheGauge = ReturnType<TargetGauges['pageCaches']> extends Iterable<infer C> ? C : never;
    const cacheLabels = (c: CacheGauge) => ({ subsystem: c.subsystem, nsid: String(c.nsid) });
    const cacheCount = (name: string, help: string, pick: (c: CacheGauge) => number) =>
      counter(name, help, ['subsystem', 'nsid'], (m, t) => {
        for (const c of t.pageCaches()) m.inc(cacheLabels(c), pick(c));
      });
    cacheCount('nearbpf_page_cache_hits_total', 'Page-cache reads served from memory.', (c) => c.hits);
    cacheCount('nearbpf_page_cache_misses_total', 'Page-cache reads that went to the file.', (c) => c.misses);
    cacheCount('nearbpf_page_cache_evictions_total', 'Pages evicted from the page cache.', (c) => c.evictions);
    gauge('nearbpf_page_cache_bytes', 'Bytes held by the page cache.', ['subsystem', 'nsid'], (g, t) => {
      for (const c of t.pageCaches()) g.set(cacheLabels(c), c.bytes);
    });
    const port = (name: string, help: string, pick: (p: PortGauge) => number) =>
      gauge(name, help, ['port', 'address'], (g, t) => {
        for (const p of t.ports()) g.set({ port: String(p.id), address: p.address }, pick(p));
      });
    const portCount = (name: string, help: string, pick: (p: PortGauge) => number) =>
      counter(name, help, ['port', 'address'], (m, t) => {
        for (const p of t.ports()) m.inc({ port: String(p.id), address: p.address }, pick(p));
      });
    port('nearbpf_port_listening', 'Whether the port accepts connections (1) or is stopped (0).', (p) => (p.listening ? 1 : 0));
    port('nearbpf_port_connections', 'TCP connections on the port (queues and pending handshakes).', (p) => p.connections);
    portCount('nearbpf_port_read_commands_total', 'Read commands served by the port’s associations.', (p) => p.readCommands);
    portCount('nearbpf_port_write_commands_total', 'Write commands served by the port’s associations.', (p) => p.writeCommands);
    portCount('nearbpf_port_read_bytes_total', 'Bytes read by the port’s associations.', (p) => p.bytesRead);
    portCount('nearbpf_port_written_bytes_total', 'Bytes written by the port’s associations.', (p) => p.bytesWritten);
    gauge('nearbpf_verifier_queue', 'Program loads verifying or waiting for a verifier worker.', [], (g, t) =>
      g.set(t.verifierQueue()),
    );
    gauge('nearbpf_scheduler_waiting', 'Storage-function executions waiting for a scheduler turn.', [], (g, t) =>
      g.set(t.schedulerWaiting()),
    );
  }

  /** Where gauges read from (the target, once created). */
  attach(gauges: TargetGauges): void {
    this.gauges = gauges;
  }

  /** The label for a host NQN: itself for the first `maxTenants`, else `other`. */
  host(nqn: string): string {
    return this.hosts.label(nqn);
  }

  private programLabel(tenantLabel: string, program: string): string {
    if (tenantLabel === OTHER_LABEL) return OTHER_LABEL;
    let cap = this.programs.get(tenantLabel);
    if (cap === undefined) {
      cap = new LabelCap(this.config.maxProgramsPerTenant);
      this.programs.set(tenantLabel, cap);
    }
    return cap.label(program);
  }

  ioMeter(subsystem: string, host: string): IoMeter {
    return new PrometheusIoMeter(this, subsystem, this.host(host));
  }

  programMeter(tenant: string, program: string): ProgramMeter {
    const t = this.host(tenant);
    const p = this.programLabel(t, program);
    const key = `${t}\n${p}`;
    let meter = this.programMeters.get(key);
    if (meter === undefined) {
      meter = new PrometheusProgramMeter(this, { tenant: t, program: p });
      this.programMeters.set(key, meter);
    }
    return meter;
  }

  connectionOpened(): void {
    this.connectionsOpened.cell({}).value++;
  }

  keepAliveExpired(subsystem: string, host: string): void {
    this.keepAliveExpiries.cell({ subsystem, host: this.host(host) }).value++;
  }

  authentication(subsystem: string, host: string, ok: boolean): void {
    this.authentications.cell({ subsystem, host: this.host(host), result: ok ? 'success' : 'failure' }).value++;
  }

  quotaHit(host: string, quota: string): void {
    this.quotaHits.cell({ host: this.host(host), quota }).value++;
  }

  programLoad(tenant: string, program: string, result: string, verifySeconds: number): void {
    const t = this.host(tenant);
    const labels = { tenant: t, program: this.programLabel(t, program) };
    this.programLoads.cell({ ...labels, result }).value++;
    if (result === 'accepted') this.verifySeconds.cell({ tenant: t }).observe(verifySeconds);
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }
}

/** The HTTP endpoint: GET /metrics; anything else 404. */
export async function startMetricsServer(
  metrics: PrometheusTargetMetrics,
  listen: { host: string; port: number },
): Promise<{ server: Server; address: { host: string; port: number }; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && !req.url?.startsWith('/metrics?'))) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
      return;
    }
    metrics.scrape().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      (e) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${(e as Error).message}\n`),
    );
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  server.maxConnections = 64;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address();
  const address = a !== null && typeof a === 'object' ? { host: a.address, port: a.port } : listen;
  return {
    server,
    address,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())).then(() => server.closeAllConnections()),
  };
}
