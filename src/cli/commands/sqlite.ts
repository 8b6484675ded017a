/**
 * `nearbpf sqlite put|tables|get|lookup|scan`: a SQLite database file on a namespace, queried by
 * the storage functions of examples/sqlite (or, with --fetched, by client-side traversal).
 */
import { readFile } from 'node:fs/promises';
import { ProgramClient } from '../../client/programs.js';
import { UsageError } from '../../errors.js';
import { blockReader } from '../../showcase/nvme.js';
import {
  loadSqliteFunctions,
  type Row,
  SQLITE_FUNCTION_NAMES,
  SqliteDatabase,
  type SqliteFunctionName,
  type SqliteHandles,
} from '../../sqlite/database.js';
import type { SqlValue } from '../../sqlite/format.js';
import { type Extent, parseFilefrag } from '../../sqlite/pages.js';
import { COMPARE_OPS, type CompareOp, type Term } from '../../sqlite/scan.js';
import { expectPositionals, parseCommandArgs } from '../args.js';
import type { CliIo } from '../io.js';
import {
  activeNamespace,
  CONNECTION_OPTIONS,
  connectionUsage,
  NVME_EXIT_STATUS,
  parseConnectionOptions,
  parseNsid,
  withHost,
} from '../nvme-options.js';
import type { Command } from './command.js';

const USAGE = `nearbpf sqlite put DB_FILE --nsid N --slba L
nearbpf sqlite tables --nsid N --slba L
nearbpf sqlite get TABLE ROWID --nsid N --slba L
nearbpf sqlite lookup INDEX VALUE... --nsid N --slba L [--limit N]
nearbpf sqlite scan TABLE --nsid N --slba L [--where "COL OP VALUE"]... [--columns A,B]
                    [--count] [--sum COL] [--min COL] [--max COL] [--limit N]

A SQLite database lying on namespace N, starting at block L (a raw image, as 'put' writes it), or
a file inside a file system on the namespace (--extents FILE: the output of 'filefrag -e -b4096'
for the file on the host that wrote it; --slba then gives where the file system starts). Queries
run as storage functions next to the data (loaded on first use), or with --fetched by reading the
pages to this host.
  --where "COL OP VALUE"   OP one of < <= = != >= >; VALUE 42, -1.5, 'text', x'00ff' or NULL
                           (repeatable, AND-ed)
  --columns A,B            columns of the matching rows to print (default: all with no aggregate)
  --json                   one JSON object per line (integers beyond 2^53 as strings, blobs as hex)
  --fetched                answer by client-side traversal over plain reads
  --stats                  print round trips and bytes on the wire (I/O queue) on stderr
  --extents FILE           the database is a file with these extents (filefrag -e output)
${connectionUsage()}

${NVME_EXIT_STATUS}`;

/** A literal from the command line: integer, real, 'text', x'hex', NULL, or bare text. */
export function parseSqlValue(text: string): SqlValue {
  if (/^null$/i.test(text)) return null;
  if (/^[+-]?\d+$/.test(text)) {
    const b = BigInt(text);
    if (b < -(2n ** 63n) || b >= 2n ** 63n) throw new UsageError(`integer ${text} does not fit in 64 bits`);
    return b >= -(2n ** 53n) && b <= 2n ** 53n ? Number(b) : b;
  }
  if (/^[+-]?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][+-]?\d+)$/.test(text)) return Number(text);
  const hex = /^x'([0-9a-fA-F]*)'$/.exec(text);
  if (hex) {
    if (hex[1].length % 2) throw new UsageError(`blob literal ${text} has an odd number of digits`);
    return new Uint8Array(Buffer.from(hex[1], 'hex'));
  }
  const quoted = /^'(.*)'$/s.exec(text);
  if (quoted) return quoted[1].replace(/''/g, "'");
  return text;
}

export function parseWhere(text: string): Term {
  const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|!=|<>|=|<|>)\s*(.+?)\s*$/s.exec(text);
  if (!m) throw new UsageError(`--where must be "COLUMN OP VALUE", got '${text}'`);
  const op = (m[2] === '<>' ? '!=' : m[2]) as CompareOp;
  if (!COMPARE_OPS.includes(op)) throw new UsageError(`unknown comparison ${m[2]}`);
  return { column: m[1], op, value: parseSqlValue(m[3]) };
}

const jsonValue = (v: SqlValue): unknown =>
  v instanceof Uint8Array ? Buffer.from(v).toString('hex') : typeof v === 'bigint' ? v.toString() : v;
const textValue = (v: SqlValue): string =>
  v === null ? 'NULL' : v instanceof Uint8Array ? `x'${Buffer.from(v).toString('hex')}'` : String(v);

function printRows(io: CliIo, names: readonly string[], rows: readonly SqlValue[][], json: boolean): void {
  if (json) {
    for (const r of rows) io.stdout.write(`${JSON.stringify(Object.fromEntries(names.map((n, i) => [n, jsonValue(r[i])])))}\n`);
    return;
  }
  const cells = [names, ...rows.map((r) => r.map(textValue))];
  const widths = names.map((_, i) => Math.min(40, Math.max(...cells.map((r) => (r[i] ?? '').length))));
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => (c.length > 40 ? `${c.slice(0, 39)}…` : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  io.stdout.write(`${line(names)}\n${line(widths.map((w) => '-'.repeat(w)))}\n`);
  for (const r of cells.slice(1)) io.stdout.write(`${line(r)}\n`);
}

export const sqliteCommand: Command = {
  name: 'sqlite',
  summary: 'query a SQLite database on a namespace with storage functions (put, tables, get, lookup, scan)',
  usage: USAGE,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, {
      ...CONNECTION_OPTIONS,
      nsid: { type: 'string' },
      slba: { type: 'string' },
      extents: { type: 'string' },
      where: { type: 'string', multiple: true },
      columns: { type: 'string' },
      count: { type: 'boolean', default: false },
      sum: { type: 'string' },
      min: { type: 'string' },
      max: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean', default: false },
      fetched: { type: 'boolean', default: false },
      stats: { type: 'boolean', default: false },
    });
    const [sub, ...rest] = positionals;
    if (!sub) throw new UsageError('missing subcommand: put, tables, get, lookup or scan');
    const nsid = parseNsid(values.nsid);
    if (values.slba === undefined || !/^\d+$/.test(values.slba))
      throw new UsageError('--slba L (the first block of the database) is required');
    const slba = Number(values.slba);
    const limit = values.limit === undefined ? undefined : Number(values.limit);
    if (limit !== undefined && !(Number.isInteger(limit) && limit > 0))
      throw new UsageError(`--limit must be a positive integer`);
    let extents: Extent[] | undefined;
    if (values.extents !== undefined) extents = parseFilefrag(await readFile(values.extents, 'utf8'));
    const connection = parseConnectionOptions(values);
    // Loading the storage functions waits for the target to verify them: allow longer than its
    // 60-s verification deadline, so a slow verification ends with the target's typed refusal.
    return withHost({ ...connection, ioQueues: 1, commandTimeoutMs: 90_000 }, async (host) => {
      const ns = await activeNamespace(host, nsid);
      const offsetBytes = slba * ns.blockSize;
      if (sub === 'put') {
        const [file] = expectPositionals(rest, ['DB_FILE']);
        const bytes = await readFile(file);
        const padded = Buffer.alloc(Math.ceil(bytes.length / ns.blockSize) * ns.blockSize);
        bytes.copy(padded);
        if (slba + padded.length / ns.blockSize > ns.blockCount)
          throw new UsageError(`the database does not fit namespace ${nsid} at block ${slba}`);
        const chunk = 256 * 1024;
        for (let at = 0; at < padded.length; at += chunk)
          await host.write(nsid, slba + at / ns.blockSize, padded.subarray(at, Math.min(at + chunk, padded.length)));
        io.stdout.write(
          `wrote ${bytes.length} bytes (${padded.length / ns.blockSize} blocks) to namespace ${nsid} at block ${slba}\n`,
        );
        return 0;
      }
      const programs = new ProgramClient(host);
      let handles: SqliteHandles = {};
      if (!values.fetched) handles = await ensureLoaded(programs);
      const db = await SqliteDatabase.open({
        read: blockReader(host, nsid, ns.blockSize),
        location: {
          nsid,
          offsetBytes: extents ? 0 : offsetBytes,
          extents: extents?.map((e) => ({ ...e, nsOffset: e.nsOffset + offsetBytes })),
        },
        programs,
        handles,
      });
      const before = host.traffic('io');
      const fetched = values.fetched;
      switch (sub) {
        case 'tables': {
          expectPositionals(rest, []);
          const rows: SqlValue[][] = [
            ...db.schema.tables.map((t) => ['table', t.name, t.rootPage, t.columns.join(', ')]),
            ...db.schema.indexes.map((i) => [
              'index',
              `${i.name} ON ${i.table}`,
              i.rootPage,
              i.columns.map((c) => c ?? '(expr)').join(', '),
            ]),
          ];
          printRows(io, ['type', 'name', 'root', 'columns'], rows, values.json);
          break;
        }
        case 'get': {
          const [table, rowidText] = expectPositionals(rest, ['TABLE', 'ROWID']);
          if (!/^[+-]?\d+$/.test(rowidText)) throw new UsageError(`ROWID must be an integer, got '${rowidText}'`);
          const row = await db.get(table, BigInt(rowidText), { fetched });
          printRows(io, db.table(table).columns, row ? [row.values] : [], values.json);
          break;
        }
        case 'lookup': {
          if (rest.length < 2) throw new UsageError('lookup takes INDEX and at least one VALUE');
          const [index, ...keyText] = rest;
          const rows: Row[] = await db.lookup(index, keyText.map(parseSqlValue), { fetched, limit });
          printRows(
            io,
            db.table(db.index(index).table).columns,
            rows.map((r) => r.values),
            values.json,
          );
          break;
        }
        case 'scan': {
          const [tableName] = expectPositionals(rest, ['TABLE']);
          const table = db.table(tableName);
          const where = (values.where ?? []).map(parseWhere);
          const aggregates = values.count || values.sum !== undefined || values.min !== undefined || values.max !== undefined;
          const columns =
            values.columns
              ?.split(',')
              .map((c) => c.trim())
              .filter(Boolean) ?? (aggregates ? [] : [...table.columns]);
          const r = await db.scan(
            tableName,
            { where, columns, sum: values.sum, min: values.min, max: values.max, limit },
            { fetched },
          );
          if (columns.length > 0)
            printRows(
              io,
              columns,
              r.rows.map((x) => x.values),
              values.json,
            );
          if (aggregates) {
            const pairs: [string, SqlValue][] = [];
            if (values.count) pairs.push(['count', r.count]);
            if (values.sum !== undefined) pairs.push([`sum(${values.sum})`, r.sum]);
            if (values.min !== undefined) pairs.push([`min(${values.min})`, r.min]);
            if (values.max !== undefined) pairs.push([`max(${values.max})`, r.max]);
            const names = pairs.map((p) => p[0]);
            const vals = pairs.map((p) => p[1]);
            printRows(io, names, [vals], values.json);
          }
          break;
        }
        default:
          throw new UsageError(`unknown subcommand '${sub}': put, tables, get, lookup or scan`);
      }
      if (values.stats) {
        const t = host.trafficSince(before, 'io');
        io.stderr.write(
          `${fetched ? 'fetched' : 'pushed down'}: ${t.commands} round trips, ${t.bytesSent + t.bytesReceived} bytes on the wire (${t.bytesSent} sent, ${t.bytesReceived} received)\n`,
        );
      }
      return 0;
    });
  },
};

/** The SQLite storage functions, loaded once per host (under their own names). */
async function ensureLoaded(programs: ProgramClient): Promise<SqliteHandles> {
  const handles: SqliteHandles = {};
  const missing: SqliteFunctionName[] = [];
  for (const name of SQLITE_FUNCTION_NAMES) {
    const h = await programs.find(name);
    if (h === undefined) missing.push(name);
    else handles[name] = h;
  }
  if (missing.length > 0) {
    const loaded = await loadSqliteFunctions(programs, { names: missing });
    Object.assign(handles, loaded.handles);
  }
  return handles;
}
