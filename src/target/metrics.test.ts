import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import parsePrometheusTextFormat, { type ParsedFamily } from 'parse-prometheus-text-format';
import { NvmeTcpHost } from '../client/host.js';
import { ProgramClient, ProgramCommandError } from '../client/programs.js';
import { assemble, encodeProgram } from '../isa/index.js';
import { LIST_WALK_ASM } from '../testing/storage-programs.js';
import { LabelCap, OTHER_LABEL, PrometheusTargetMetrics, startMetricsServer } from './metrics.js';
import { startTarget, type TargetHandle } from './target.js';

const SUBNQN = 'nqn.2026-11.io.nearbpf:metrics';
const HOST = 'nqn.2014-08.org.nvmexpress:uuid:metrics-host';
const MAX_TENANTS = 3;

/** The parsed families, and the raw text for what the parser drops (labels and counts of histograms). */
type Scrape = ParsedFamily[] & { text: string };
const family = (s: Scrape, name: string) => s.find((f) => f.name === name);
const matches = (labels: Record<string, string> | undefined, want: Record<string, string>) =>
  Object.entries(want).every(([k, v]) => labels?.[k] === v);
/** Sum of a counter or gauge over the samples whose labels include `want` (0 when none yet). */
function value(s: Scrape, name: string, want: Record<string, string> = {}): number {
  let sum = 0;
  for (const m of family(s, name)?.metrics ?? []) if (matches(m.labels, want)) sum += Number(m.value);
  return sum;
}
function histogramCount(s: Scrape, name: string, want: Record<string, string>, part = 'count'): number {
  let sum = 0;
  for (const line of s.text.split('\n')) {
    const m = /^(\w+)\{(.*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== `${name}_${part}`) continue;
    const labels = Object.fromEntries([...m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (matches(labels, want)) sum += Number(m[3]);
  }
  return sum;
}

describe('Prometheus metrics', () => {
  let dir: string;
  let target: TargetHandle;
  let endpoint: { close(): Promise<void>; address: { host: string; port: number } };
  let host: NvmeTcpHost;
  let programs: ProgramClient;
  const hosts: NvmeTcpHost[] = [];
  let url: string;

  const scrape = async (): Promise<Scrape> => {
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    return Object.assign(parsePrometheusTextFormat(text), { text });
  };
  const connect = (hostNqn: string) =>
    NvmeTcpHost.connect({ hostNqn, host: '127.0.0.1', port: target.address.port, subsystemNqn: SUBNQN, ioQueues: 1 });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nearbpf-metrics-'));
    const metrics = new PrometheusTargetMetrics({ maxTenants: MAX_TENANTS, maxProgramsPerTenant: 2 });
    target = await startTarget({
      metrics,
      config: {
        listen: { host: '127.0.0.1', port: 0 },
        dataDir: dir,
        programs: { defaults: { maxSteps: 4 } },
        subsystems: [{ nqn: SUBNQN, namespaces: [{ nsid: 1, path: 'ns1.img', sizeBytes: 4 << 20 }] }],
      },
    });
    endpoint = await startMetricsServer(metrics, { host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${endpoint.address.port}/metrics`;
    host = await connect(HOST);
    programs = new ProgramClient(host);
  });
  after(async () => {
    for (const h of [host, ...hosts]) await h?.close();
    await endpoint?.close();
    await target?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('counts I/O commands, bytes and latency per namespace, host, opcode and status', async () => {
    const labels = { subsystem: SUBNQN, nsid: '1', host: HOST };
    const before = await scrape();
    for (let i = 0; i < 4; i++) await host.write(1, i * 8, Buffer.alloc(4096, i + 1));
    for (let i = 0; i < 3; i++) await host.read(1, i, 1);
    await assert.rejects(host.read(1, 1 << 30, 1)); // LBA out of range: a failed command
    const after = await scrape();
    const delta = (name: string, want: Record<string, string>) => value(after, name, want) - value(before, name, want);
    assert.equal(delta('nearbpf_commands_total', { ...labels, opcode: 'write', status: 'success' }), 4);
    assert.equal(delta('nearbpf_commands_total', { ...labels, opcode: 'read', status: 'success' }), 3);
    assert.equal(delta('nearbpf_commands_total', { ...labels, opcode: 'read', status: '0x080' }), 1);
    assert.equal(delta('nearbpf_written_bytes_total', labels), 4 * 4096);
    assert.equal(delta('nearbpf_read_bytes_total', labels), 3 * 512);
    const count = (s: Scrape, op: string) => histogramCount(s, 'nearbpf_command_duration_seconds', { ...labels, opcode: op });
    assert.equal(count(after, 'write') - count(before, 'write'), 4);
    assert.equal(count(after, 'read') - count(before, 'read'), 4);
    assert.equal(value(after, 'nearbpf_associations', { subsystem: SUBNQN, host: HOST }), 1);
    assert.equal(value(after, 'nearbpf_connections', { subsystem: SUBNQN, host: HOST }), 2);
    assert.ok(value(after, 'nearbpf_connections_opened_total') >= 2);
    assert.ok(value(after, 'nearbpf_page_cache_misses_total', { subsystem: SUBNQN, nsid: '1' }) >= 1);
    assert.ok(family(after, 'process_cpu_seconds_total'), 'the process metrics are there');
    const port = { port: '1', address: `127.0.0.1:${target.address.port}` };
    assert.equal(value(after, 'nearbpf_port_listening', port), 1);
    assert.equal(delta('nearbpf_port_write_commands_total', port), 4);
    assert.equal(delta('nearbpf_port_read_commands_total', port), 3);
    assert.equal(delta('nearbpf_port_written_bytes_total', port), 4 * 4096);
    assert.equal(delta('nearbpf_port_read_bytes_total', port), 3 * 512);
    assert.ok(value(after, 'nearbpf_port_connections', port) >= 2);
    // Counts since start are counters (rate() works on them), levels are gauges.
    for (const name of ['nearbpf_page_cache_hits_total', 'nearbpf_page_cache_misses_total', 'nearbpf_port_read_commands_total']) {
      assert.equal(family(after, name)?.type, 'COUNTER', name);
    }
    assert.equal(family(after, 'nearbpf_page_cache_bytes')?.type, 'GAUGE');
  });

  it('counts loads by result and executions by outcome with their steps, reads, bytes and output', async () => {
    const want = { tenant: HOST, program: 'walk' };
    const before = await scrape();
    // A two-node list at 64 KiB: two reads of 16 bytes, three steps, 8 output bytes.
    const node = Buffer.alloc(1024);
    node.writeBigUInt64LE(5n, 0);
    node.writeBigUInt64LE(65536n + 512n, 8);
    node.writeBigUInt64LE(7n, 512);
    await host.write(1, 128, node);
    const handle = await programs.load(encodeProgram(assemble(LIST_WALK_ASM)), { name: 'walk' });
    await assert.rejects(programs.load(encodeProgram(assemble('exit')), { name: 'bad' }), ProgramCommandError);
    const r = await programs.execute(handle, { nsid: 1, params: [65536n, 0n] });
    assert.equal(r.returnValue, 12n);
    // A list longer than the 4-step budget.
    const long = Buffer.alloc(4096);
    for (let i = 0; i < 8; i++) long.writeBigUInt64LE(BigInt(i < 7 ? 131072 + (i + 1) * 512 : 0), i * 512 + 8);
    await host.write(1, 256, long);
    await assert.rejects(programs.execute(handle, { nsid: 1, params: [131072n, 0n] }), ProgramCommandError);
    const after = await scrape();
    const delta = (name: string, w: Record<string, string>) => value(after, name, w) - value(before, name, w);
    assert.equal(delta('nearbpf_program_loads_total', { ...want, result: 'accepted' }), 1);
    assert.equal(delta('nearbpf_program_loads_total', { tenant: HOST, program: 'bad', result: 'verifier_rejected' }), 1);
    assert.equal(histogramCount(after, 'nearbpf_program_load_duration_seconds', { tenant: HOST }), 1);
    assert.equal(delta('nearbpf_program_executions_total', { ...want, outcome: 'success' }), 1);
    assert.equal(delta('nearbpf_program_executions_total', { ...want, outcome: 'budget_steps' }), 1);
    assert.equal(delta('nearbpf_program_steps_total', want), r.stats.steps + 4);
    assert.equal(r.stats.reads, 2);
    assert.equal(delta('nearbpf_program_reads_total', want), 2 + 4);
    assert.equal(delta('nearbpf_program_read_bytes_total', want), r.stats.bytesRead + 4 * 16);
    assert.equal(delta('nearbpf_program_output_bytes_total', want), r.output.length);
    assert.ok(delta('nearbpf_program_instructions_total', want) >= r.stats.instructions);
    assert.equal(histogramCount(after, 'nearbpf_program_execution_duration_seconds', want), 2);
    // CPU time: the steps' run time, positive and within the executions' wall time.
    const cpu = delta('nearbpf_program_cpu_seconds_total', want);
    const wall =
      histogramCount(after, 'nearbpf_program_execution_duration_seconds', want, 'sum') -
      histogramCount(before, 'nearbpf_program_execution_duration_seconds', want, 'sum');
    assert.ok(cpu > 0 && cpu <= wall, `cpu ${cpu} s, wall ${wall} s`);
    // Scheduler wait: one observation per execution, per tenant.
    const waits = (s: Scrape) => histogramCount(s, 'nearbpf_scheduler_wait_seconds', { tenant: HOST });
    assert.equal(waits(after) - waits(before), 2);
    assert.equal(value(after, 'nearbpf_scheduler_waiting'), 0);
    assert.equal(delta('nearbpf_commands_total', { host: HOST, opcode: 'program_execute' }), 2);
  });

  it('keeps labels under the cap with many tenants: the rest count under "other"', async () => {
    for (let i = 0; i < 3 * MAX_TENANTS; i++) {
      const h = await connect(`nqn.2014-08.org.nvmexpress:uuid:tenant-${i}`);
      hosts.push(h);
      await h.read(1, 0, 1);
    }
    const s = await scrape();
    const hostLabels = new Set((family(s, 'nearbpf_commands_total')?.metrics ?? []).map((m) => m.labels?.host));
    assert.ok(hostLabels.size <= MAX_TENANTS + 1, `${hostLabels.size} host labels`);
    assert.ok(hostLabels.has(OTHER_LABEL));
    const reads = value(s, 'nearbpf_commands_total', { opcode: 'read', status: 'success' });
    assert.ok(reads >= 3 + 3 * MAX_TENANTS, 'nothing is lost by aggregating');
    for (const f of s)
      for (const m of f.metrics) assert.ok(!m.labels?.host || hostLabels.has(m.labels.host) || m.labels.host === OTHER_LABEL);
  });

  it('serves a well-formed exposition: every family typed, histogram buckets cumulative', async () => {
    const res = await fetch(url);
    const text = await res.text();
    const parsed = parsePrometheusTextFormat(text);
    assert.ok(parsed.length > 20);
    for (const f of parsed) {
      assert.ok(['COUNTER', 'GAUGE', 'HISTOGRAM', 'SUMMARY'].includes(f.type), `${f.name} is typed`);
      if (f.type === 'COUNTER') assert.match(f.name, /_total$/, `${f.name}: counters end in _total`);
      if (f.type !== 'HISTOGRAM' || !f.name.startsWith('nearbpf_')) continue;
      for (const m of f.metrics) {
        const bound = (le: string) => (le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le));
        const les = Object.keys(m.buckets ?? {}).sort((a, b) => bound(a) - bound(b));
        const counts = les.map((le) => Number(m.buckets?.[le]));
        assert.equal(les[les.length - 1], '+Inf');
        for (let i = 1; i < counts.length; i++) assert.ok(counts[i] >= counts[i - 1], `${f.name} cumulative`);
      }
    }
    assert.equal((await fetch(url.replace('/metrics', '/other'))).status, 404);
  });

  it('caps labels of names beyond the limit', () => {
    const cap = new LabelCap(2);
    assert.deepEqual(
      ['a', 'b', 'c', 'a', 'd', 'b'].map((n) => cap.label(n)),
      ['a', 'b', OTHER_LABEL, 'a', OTHER_LABEL, 'b'],
    );
  });
});
