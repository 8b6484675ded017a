/**
 * `nearbpf demo` (what `npm start` runs): the storage demo of src/showcase/demo.ts — a target and a
 * host in this process over 127.0.0.1, a B+-tree and a table built through NVMe writes, and point
 * lookups, range queries, batch lookups and a filtered scan run both pushed down and fetched, in
 * one table. The small byte helpers below are kept for the CLI tests.
 */
import { UsageError } from '../../errors.js';
import { DEFAULT_DEMO, type DemoOptions, type DemoReport, runStorageDemo } from '../../showcase/demo.js';
import { formatTable, si, times } from '../../showcase/report.js';
import { runSqliteDemo } from '../../showcase/sqlite-demo.js';
import { expectPositionals, parseCommandArgs } from '../args.js';
import type { Command } from './command.js';

const FNV1A_OFFSET_BASIS = 0x811c9dc5;
const FNV1A_PRIME = 0x01000193;

/** 32-bit FNV-1a. */
export function fnv1a(bytes: Uint8Array): bigint {
  let hash = FNV1A_OFFSET_BASIS;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, FNV1A_PRIME) >>> 0;
  return BigInt(hash);
}

export function byteSum(bytes: Uint8Array): bigint {
  let sum = 0;
  for (const byte of bytes) sum += byte;
  return BigInt(sum);
}

/** Deterministic bytes (xorshift32). */
export function pseudoRandomBytes(length: number, seed = 0x9e3779b9): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    bytes[i] = state & 0xff;
  }
  return bytes;
}

/** The demo's one table: a row per operation and mode, the pushdown rows with their gains over fetching. */
export function formatDemoReport(report: DemoReport): string {
  return formatComparison(report.rows, report.loaded.refused);
}

/** Rows of operations run both ways (pushdown rows carry their mismatches), as one table. */
export function formatComparison(
  rows: readonly { operation: string; mode: 'pushdown' | 'fetched'; m: DemoReport['rows'][number]['m']; mismatches?: number }[],
  refused: readonly { name: string; status: string }[],
): string {
  const report = { rows, loaded: { refused } };
  const header = [
    'operation',
    'mode',
    'p50 µs',
    'p99 µs',
    'ops/s',
    'wire B/op',
    'RTs/op',
    'results',
    'latency gain',
    'ops/s gain',
    'fewer bytes',
    'fewer RTs',
  ];
  const cells: string[][] = [];
  for (const row of report.rows) {
    const m = row.m;
    const f = report.rows.find((x) => x.operation === row.operation && x.mode === 'fetched')?.m;
    const pushed = row.mode === 'pushdown' && f;
    cells.push([
      row.mode === 'pushdown' || !report.rows.some((x) => x.operation === row.operation && x.mode === 'pushdown')
        ? row.operation
        : '',
      row.mode,
      si(m.p50Us),
      si(m.p99Us),
      si(m.opsPerSec),
      si(m.bytesPerOp),
      si(m.commandsPerOp),
      row.mode === 'pushdown' ? (row.mismatches === 0 ? 'agree' : `${row.mismatches} DIFFER`) : '',
      pushed ? times(f.p50Us / m.p50Us) : '',
      pushed ? times(m.opsPerSec / f.opsPerSec) : '',
      pushed ? times(f.bytesPerOp / m.bytesPerOp) : '',
      pushed ? times(f.commandsPerOp / m.commandsPerOp) : '',
    ]);
  }
  for (const r of report.loaded.refused) {
    cells.push([r.name, 'pushdown', '-', '-', '-', '-', '-', `REFUSED (${r.status})`, '', '', '', '']);
  }
  return formatTable(header, cells, new Set([2, 3, 4, 5, 6, 8, 9, 10, 11]));
}

const USAGE = `nearbpf demo [--quick] [--keys N] [--rows N] [--json]

Starts an NVMe/TCP target in this process on 127.0.0.1 (ephemeral port) with temporary sparse
namespaces, connects a host, builds a B+-tree (default ${DEFAULT_DEMO.keys.toLocaleString('en-US')} keys, depth ${DEFAULT_DEMO.depth}, fan-out ${DEFAULT_DEMO.fanout})
and a table (default ${DEFAULT_DEMO.rows.toLocaleString('en-US')} rows x 64 B) through NVMe writes, loads the storage functions
of examples/build/btree.o and scan.o (the target verifies them), then runs point lookups, range
queries, batch lookups and a 1%-selective aggregate scan both pushed down to the target and fetched
to the client, checks that the results agree, and prints latency, throughput, bytes on the wire and
round trips (commands) per operation with the pushdown gains.
  --quick    a smaller tree (100k keys, depth 4) and table (128k rows), fewer operations
  --json     print the report as JSON instead of the table
Exit status 1 if a result differs or the target refused a storage function.`;

export const demoCommand: Command = {
  name: 'demo',
  summary: 'storage demo: B+-tree lookups and a scan pushed down to an NVMe/TCP target vs fetched',
  usage: USAGE,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, {
      quick: { type: 'boolean' },
      keys: { type: 'string' },
      rows: { type: 'string' },
      json: { type: 'boolean' },
    });
    expectPositionals(positionals, []);
    const options: DemoOptions = values.quick
      ? { ...DEFAULT_DEMO, keys: 100_000, depth: 4, fanout: 31, rows: 1 << 17, lookups: 500, ranges: 100, batches: 30, scans: 3 }
      : { ...DEFAULT_DEMO };
    const count = (v: string | undefined, name: string) => {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`--${name} must be a positive integer`);
      return n;
    };
    if (values.keys !== undefined) {
      options.keys = count(values.keys, 'keys');
      options.fanout = undefined;
    }
    if (values.rows !== undefined) options.rows = count(values.rows, 'rows');
    const err = io.stderr as { write(s: string): unknown; isTTY?: boolean };
    const report = await runStorageDemo(options, err);
    if (values.json) {
      io.stdout.write(`${JSON.stringify(report, (_, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`);
    } else {
      const l = report.layout;
      io.stdout.write(
        `B+-tree: ${l.keyCount.toLocaleString('en-US')} keys, depth ${l.depth}, ${l.nodeCount.toLocaleString('en-US')} nodes of 512 B; ` +
          `table: ${(report.table.lengthBytes / 64).toLocaleString('en-US')} rows x 64 B; 127.0.0.1 NVMe/TCP, 512 B blocks, QD1\n` +
          `built in ${report.buildSeconds.toFixed(1)} s, demo ran ${report.totalSeconds.toFixed(1)} s\n\n`,
      );
      io.stdout.write(formatDemoReport(report));
      io.stdout.write(
        '\nwire B/op: NVMe/TCP bytes both ways on the I/O queue; RTs/op: commands per operation (fetched batch:\n' +
          `the ${options.batchSize} lookups run concurrently, ${l.depth + 1} dependent round trips). Gains are fetched / pushdown.\n`,
      );
    }
    const sqlite = await runSqliteDemo(values.quick ? { rows: 20_000, lookups: 100 } : { rows: 50_000, lookups: 200 }, err);
    if (!values.json) {
      io.stdout.write(
        `\nSQLite: a ${sqlite.tableRows.toLocaleString('en-US')}-row table built with SQLite (${sqlite.pages.toLocaleString('en-US')} pages of ${sqlite.pageSize} B), ` +
          'queried by examples/sqlite storage functions vs client-side traversal, QD1\n\n',
      );
      io.stdout.write(formatComparison(sqlite.rows, sqlite.refused));
      io.stdout.write(
        '\nPushed down, sqlite_index walks the index and fetches the rows in one execution; fetched, the client\n' +
          'walks both trees page by page (see examples/sqlite).\n',
      );
    }
    const mismatches = [...report.rows, ...sqlite.rows].reduce((a, r) => a + (r.mismatches ?? 0), 0);
    if (sqlite.refused.length > 0) io.stderr.write(`demo: the target refused ${sqlite.refused.map((r) => r.name).join(', ')}\n`);
    if (report.loaded.refused.length > 0) {
      io.stderr.write(
        `demo: the target refused ${report.loaded.refused.map((r) => r.name).join(', ')}: those operations ran only fetched\n`,
      );
    }
    if (mismatches > 0) io.stderr.write(`demo: ${mismatches} pushdown result(s) differ from the fetched ones\n`);
    return mismatches > 0 || report.loaded.refused.length > 0 || sqlite.refused.length > 0 ? 1 : 0;
  },
};
