/**
 * The model of `nearbpf top`: a scrape of the target's metrics endpoint (Prometheus text format
 * 0.0.4) becomes a `TopSnapshot` of counters and histogram buckets; two snapshots become a `TopFrame`
 * of rates, latency quantiles from the bucket deltas, and CPU shares; `renderTop` lays a frame out
 * as text. Pure functions: the command does the fetching and timing.
 *
 * The exposition is parsed here (`parseExposition`): the npm parser the tests use
 * (parse-prometheus-text-format) merges the label sets of a histogram into one and drops their
 * labels, and top needs exactly those (per tenant, program and namespace).
 */

/** One sample line: `name{label="value",...} value [timestamp]`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A line of the exposition that is not a comment, blank or a valid sample. */
export class ExpositionError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
  }
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

// Case-insensitive, as Prometheus's own parser (Go's ParseFloat) reads them: prom-client writes
// `Nan` (its default event-loop-lag gauges are NaN until the first sample).
function parseValue(text: string, line: number): number {
  switch (text.toLowerCase()) {
    case '+inf':
    case 'inf':
      return Number.POSITIVE_INFINITY;
    case '-inf':
      return Number.NEGATIVE_INFINITY;
    case 'nan':
      return Number.NaN;
  }
  const v = Number(text);
  if (text.length === 0 || Number.isNaN(v)) throw new ExpositionError(line, `not a number: ${JSON.stringify(text)}`);
  return v;
}

/** Every sample of a Prometheus text exposition (comments and TYPE/HELP lines skipped). */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n].trim();
    if (line.length === 0 || line.startsWith('#')) continue;
    const name = NAME.exec(line)?.[0];
    if (name === undefined) throw new ExpositionError(n + 1, 'no metric name');
    let at = name.length;
    const labels: Record<string, string> = {};
    if (line[at] === '{') {
      at++;
      for (;;) {
        while (line[at] === ' ' || line[at] === ',') at++;
        if (line[at] === '}') {
          at++;
          break;
        }
        const label = LABEL_NAME.exec(line.slice(at))?.[0];
        if (label === undefined || line[at + label.length] !== '=' || line[at + label.length + 1] !== '"')
          throw new ExpositionError(n + 1, `bad label at column ${at + 1}`);
        at += label.length + 2;
        let value = '';
        for (;;) {
          const c = line[at++];
          if (c === undefined) throw new ExpositionError(n + 1, 'unterminated label value');
          if (c === '"') break;
          if (c === '\\') {
            const e = line[at++];
            value += e === 'n' ? '\n' : e;
          } else value += c;
        }
        labels[label] = value;
      }
    }
    const rest = line.slice(at).trim().split(/\s+/);
    if (rest.length < 1 || rest.length > 2 || rest[0] === '') throw new ExpositionError(n + 1, 'expected a value');
    samples.push({ name, labels, value: parseValue(rest[0], n + 1) });
  }
  return samples;
}

/** A histogram of one label set: cumulative counts per upper bound (`+Inf` last), and the count. */
export interface Histogram {
  bounds: number[];
  cumulative: number[];
  count: number;
  sum: number;
}

interface ProgramCounters {
  tenant: string;
  program: string;
  executions: number;
  failures: number;
  reads: number;
  cpuSeconds: number;
  latency: Histogram | null;
}

interface NamespaceCounters {
  subsystem: string;
  nsid: string;
  commands: number;
  readBytes: number;
  writtenBytes: number;
  latency: Histogram | null;
}

interface TenantCounters {
  tenant: string;
  wait: Histogram | null;
}

export interface TopSnapshot {
  atMs: number;
  processCpuSeconds: number | null;
  programs: Map<string, ProgramCounters>;
  namespaces: Map<string, NamespaceCounters>;
  tenants: Map<string, TenantCounters>;
  schedulerWaiting: number | null;
}

export interface ProgramRow {
  tenant: string;
  program: string;
  executionsPerSecond: number;
  failuresPerSecond: number;
  /** Seconds; null when nothing completed in the interval. */
  p50: number | null;
  p99: number | null;
  readsPerSecond: number;
  /** Storage-function CPU time over the interval, as a fraction of one core. */
  cpu: number;
  /** This program's part of the target process's CPU time in the interval (0..1), null when unknown. */
  cpuShare: number | null;
}

export interface TenantRow {
  tenant: string;
  executionsPerSecond: number;
  readsPerSecond: number;
  cpu: number;
  cpuShare: number | null;
  /** Scheduler wait per execution, seconds. */
  waitP50: number | null;
  waitP99: number | null;
}

export interface NamespaceRow {
  subsystem: string;
  nsid: string;
  iops: number;
  readBytesPerSecond: number;
  writtenBytesPerSecond: number;
  p50: number | null;
  p99: number | null;
}

export interface TopFrame {
  intervalSeconds: number;
  /** The target process's CPU over the interval, as a fraction of one core. */
  processCpu: number | null;
  schedulerWaiting: number | null;
  tenants: TenantRow[];
  programs: ProgramRow[];
  namespaces: NamespaceRow[];
}

/** Adds one histogram's samples into `into` (bounds in ascending order, `+Inf` last). */
function addBucket(into: Histogram | null, le: number, cumulative: number): Histogram {
  const h = into ?? { bounds: [], cumulative: [], count: 0, sum: 0 };
  const i = h.bounds.indexOf(le);
  if (i >= 0) h.cumulative[i] += cumulative;
  else {
    let at = h.bounds.findIndex((b) => b > le);
    if (at < 0) at = h.bounds.length;
    h.bounds.splice(at, 0, le);
    h.cumulative.splice(at, 0, cumulative);
  }
  if (le === Number.POSITIVE_INFINITY) h.count += cumulative;
  return h;
}

/** Parse one scrape. Families the target does not have (an older version) are simply absent. */
export function parseSnapshot(text: string, atMs: number): TopSnapshot {
  const snapshot: TopSnapshot = {
    atMs,
    processCpuSeconds: null,
    programs: new Map(),
    namespaces: new Map(),
    tenants: new Map(),
    schedulerWaiting: null,
  };
  const program = (labels: Record<string, string>): ProgramCounters => {
    const tenant = labels.tenant ?? '';
    const name = labels.program ?? '';
    const key = `${tenant}\n${name}`;
    let p = snapshot.programs.get(key);
    if (p === undefined) {
      p = { tenant, program: name, executions: 0, failures: 0, reads: 0, cpuSeconds: 0, latency: null };
      snapshot.programs.set(key, p);
    }
    return p;
  };
  const namespace = (labels: Record<string, string>): NamespaceCounters => {
    const subsystem = labels.subsystem ?? '';
    const nsid = labels.nsid ?? '';
    const key = `${subsystem}\n${nsid}`;
    let n = snapshot.namespaces.get(key);
    if (n === undefined) {
      n = { subsystem, nsid, commands: 0, readBytes: 0, writtenBytes: 0, latency: null };
      snapshot.namespaces.set(key, n);
    }
    return n;
  };
  const tenant = (labels: Record<string, string>): TenantCounters => {
    const name = labels.tenant ?? '';
    let t = snapshot.tenants.get(name);
    if (t === undefined) {
      t = { tenant: name, wait: null };
      snapshot.tenants.set(name, t);
    }
    return t;
  };
  const le = (labels: Record<string, string>) => (labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(labels.le));
  for (const { name, labels, value } of parseExposition(text)) {
    switch (name) {
      case 'process_cpu_seconds_total':
        snapshot.processCpuSeconds = value;
        break;
      case 'nearbpf_scheduler_waiting':
        snapshot.schedulerWaiting = value;
        break;
      case 'nearbpf_program_executions_total': {
        const p = program(labels);
        p.executions += value;
        if (labels.outcome !== 'success') p.failures += value;
        break;
      }
      case 'nearbpf_program_reads_total':
        program(labels).reads += value;
        break;
      case 'nearbpf_program_cpu_seconds_total':
        program(labels).cpuSeconds += value;
        break;
      case 'nearbpf_program_execution_duration_seconds_bucket': {
        const p = program(labels);
        p.latency = addBucket(p.latency, le(labels), value);
        break;
      }
      case 'nearbpf_program_execution_duration_seconds_sum': {
        const p = program(labels);
        p.latency = addBucket(p.latency, Number.POSITIVE_INFINITY, 0);
        p.latency.sum += value;
        break;
      }
      case 'nearbpf_scheduler_wait_seconds_bucket': {
        const t = tenant(labels);
        t.wait = addBucket(t.wait, le(labels), value);
        break;
      }
      case 'nearbpf_commands_total':
        // IOPS of the namespace: NVM I/O commands (storage-function executions are the programs' rows).
        if (!labels.opcode?.startsWith('program_')) namespace(labels).commands += value;
        break;
      case 'nearbpf_read_bytes_total':
        namespace(labels).readBytes += value;
        break;
      case 'nearbpf_written_bytes_total':
        namespace(labels).writtenBytes += value;
        break;
      case 'nearbpf_command_duration_seconds_bucket':
        if (!labels.opcode?.startsWith('program_')) {
          const n = namespace(labels);
          n.latency = addBucket(n.latency, le(labels), value);
        }
        break;
    }
  }
  return snapshot;
}

/** The observations between two scrapes of one histogram (a reset, e.g. a restart, counts from zero). */
export function histogramDelta(prev: Histogram | null | undefined, cur: Histogram | null | undefined): Histogram | null {
  if (!cur) return null;
  if (!prev || prev.bounds.length !== cur.bounds.length || cur.count < prev.count) return cur;
  return {
    bounds: cur.bounds,
    cumulative: cur.cumulative.map((c, i) => c - prev.cumulative[i]),
    count: cur.count - prev.count,
    sum: cur.sum - prev.sum,
  };
}

/**
 * The q-quantile of a histogram, as Prometheus' histogram_quantile computes it: find the bucket the
 * rank falls in and interpolate linearly inside it (from 0 for the first bucket); a rank in the
 * `+Inf` bucket gives the largest finite bound. Null when the histogram is empty.
 */
export function histogramQuantile(q: number, h: Histogram | null): number | null {
  if (h === null || h.count <= 0) return null;
  const rank = q * h.count;
  for (let i = 0; i < h.bounds.length; i++) {
    if (h.cumulative[i] < rank) continue;
    if (h.bounds[i] === Number.POSITIVE_INFINITY) return i > 0 ? h.bounds[i - 1] : null;
    const lower = i === 0 ? 0 : h.bounds[i - 1];
    const below = i === 0 ? 0 : h.cumulative[i - 1];
    const inBucket = h.cumulative[i] - below;
    if (inBucket <= 0) return h.bounds[i];
    return lower + (h.bounds[i] - lower) * ((rank - below) / inBucket);
  }
  return null;
}

/** Rates over the interval between two snapshots of the same target. */
export function topFrame(prev: TopSnapshot, cur: TopSnapshot): TopFrame {
  const seconds = Math.max(1e-3, (cur.atMs - prev.atMs) / 1000);
  const delta = (a: number, b: number | undefined) => Math.max(0, a - (b !== undefined && b <= a ? b : 0));
  const processCpuSeconds =
    cur.processCpuSeconds !== null && prev.processCpuSeconds !== null
      ? delta(cur.processCpuSeconds, prev.processCpuSeconds)
      : null;
  const share = (cpuSeconds: number) =>
    processCpuSeconds === null || processCpuSeconds <= 0 ? null : Math.min(1, cpuSeconds / processCpuSeconds);

  const programs: ProgramRow[] = [];
  const tenants = new Map<string, TenantRow & { cpuSeconds: number }>();
  for (const [key, p] of cur.programs) {
    const before = prev.programs.get(key);
    const executions = delta(p.executions, before?.executions);
    const cpuSeconds = delta(p.cpuSeconds, before?.cpuSeconds);
    const reads = delta(p.reads, before?.reads);
    const latency = histogramDelta(before?.latency, p.latency);
    programs.push({
      tenant: p.tenant,
      program: p.program,
      executionsPerSecond: executions / seconds,
      failuresPerSecond: delta(p.failures, before?.failures) / seconds,
      p50: histogramQuantile(0.5, latency),
      p99: histogramQuantile(0.99, latency),
      readsPerSecond: reads / seconds,
      cpu: cpuSeconds / seconds,
      cpuShare: share(cpuSeconds),
    });
    let t = tenants.get(p.tenant);
    if (t === undefined) {
      const wait = histogramDelta(prev.tenants.get(p.tenant)?.wait, cur.tenants.get(p.tenant)?.wait);
      t = {
        tenant: p.tenant,
        executionsPerSecond: 0,
        readsPerSecond: 0,
        cpu: 0,
        cpuShare: null,
        cpuSeconds: 0,
        waitP50: histogramQuantile(0.5, wait),
        waitP99: histogramQuantile(0.99, wait),
      };
      tenants.set(p.tenant, t);
    }
    t.executionsPerSecond += executions / seconds;
    t.readsPerSecond += reads / seconds;
    t.cpuSeconds += cpuSeconds;
    t.cpu = t.cpuSeconds / seconds;
    t.cpuShare = share(t.cpuSeconds);
  }
  const namespaces: NamespaceRow[] = [];
  for (const [key, n] of cur.namespaces) {
    const before = prev.namespaces.get(key);
    const latency = histogramDelta(before?.latency, n.latency);
    namespaces.push({
      subsystem: n.subsystem,
      nsid: n.nsid,
      iops: delta(n.commands, before?.commands) / seconds,
      readBytesPerSecond: delta(n.readBytes, before?.readBytes) / seconds,
      writtenBytesPerSecond: delta(n.writtenBytes, before?.writtenBytes) / seconds,
      p50: histogramQuantile(0.5, latency),
      p99: histogramQuantile(0.99, latency),
    });
  }
  programs.sort((a, b) => b.executionsPerSecond - a.executionsPerSecond || a.program.localeCompare(b.program));
  namespaces.sort((a, b) => b.iops - a.iops || a.subsystem.localeCompare(b.subsystem) || a.nsid.localeCompare(b.nsid));
  return {
    intervalSeconds: seconds,
    processCpu: processCpuSeconds === null ? null : processCpuSeconds / seconds,
    schedulerWaiting: cur.schedulerWaiting,
    tenants: [...tenants.values()]
      .map(({ cpuSeconds: _, ...row }) => row)
      .sort((a, b) => b.executionsPerSecond - a.executionsPerSecond || a.tenant.localeCompare(b.tenant)),
    programs,
    namespaces,
  };
}

const rate = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const micros = (s: number | null) => (s === null ? '-' : (s * 1e6).toFixed(s * 1e6 >= 100 ? 0 : 1));
const percent = (f: number | null) => (f === null ? '-' : (f * 100).toFixed(1));
const mib = (bytesPerSecond: number) => (bytesPerSecond / (1024 * 1024)).toFixed(2);
/** Long NQNs keep their tail (the part that tells hosts apart). */
const fit = (s: string, width: number) => (s.length <= width ? s.padEnd(width) : `…${s.slice(s.length - width + 1)}`);

/** Columns before `left` are names (left-aligned, cut from the front), the rest numbers. */
function table(header: string[], widths: number[], left: number, rows: string[][]): string[] {
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i < left ? fit(c, widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/** The frame as text: a header line, then tenants, programs and namespaces. */
export function renderTop(frame: TopFrame, source: string, options: { maxRows?: number } = {}): string {
  const max = options.maxRows ?? 20;
  const out: string[] = [];
  const cpu = frame.processCpu === null ? '' : `   target CPU ${percent(frame.processCpu)}% of a core`;
  const waiting = frame.schedulerWaiting === null ? '' : `   waiting for a turn ${frame.schedulerWaiting}`;
  out.push(`nearbpf top  ${source}  every ${frame.intervalSeconds.toFixed(1)} s${cpu}${waiting}`, '');
  out.push(
    ...table(
      ['TENANT', 'EXEC/S', 'READS/S', 'CPU%', 'SHARE%', 'WAIT P50 µs', 'WAIT P99 µs'],
      [46, 9, 10, 6, 6, 11, 11],
      1,
      frame.tenants
        .slice(0, max)
        .map((t) => [
          t.tenant,
          rate(t.executionsPerSecond),
          rate(t.readsPerSecond),
          percent(t.cpu),
          percent(t.cpuShare),
          micros(t.waitP50),
          micros(t.waitP99),
        ]),
    ),
    '',
  );
  out.push(
    ...table(
      ['TENANT', 'PROGRAM', 'EXEC/S', 'FAIL/S', 'P50 µs', 'P99 µs', 'READS/S', 'CPU%', 'SHARE%'],
      [28, 16, 9, 8, 9, 9, 10, 6, 6],
      2,
      frame.programs
        .slice(0, max)
        .map((p) => [
          p.tenant,
          p.program,
          rate(p.executionsPerSecond),
          rate(p.failuresPerSecond),
          micros(p.p50),
          micros(p.p99),
          rate(p.readsPerSecond),
          percent(p.cpu),
          percent(p.cpuShare),
        ]),
    ),
    '',
  );
  out.push(
    ...table(
      ['SUBSYSTEM', 'NSID', 'IOPS', 'READ MiB/S', 'WRITE MiB/S', 'P50 µs', 'P99 µs'],
      [36, 4, 9, 10, 11, 9, 9],
      2,
      frame.namespaces
        .slice(0, max)
        .map((n) => [
          n.subsystem,
          n.nsid,
          rate(n.iops),
          mib(n.readBytesPerSecond),
          mib(n.writtenBytesPerSecond),
          micros(n.p50),
          micros(n.p99),
        ]),
    ),
  );
  return `${out.join('\n')}\n`;
}
