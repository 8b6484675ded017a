/**
 * `sqlite_schema` rows to tables and indexes: names, root pages, column names (from the CREATE
 * statements, with a small tokenizer), the INTEGER PRIMARY KEY alias of the rowid, index columns
 * and whether a query on them can be pushed down (BINARY collation, ASC columns).
 */
import type { SqlValue } from './format.js';

export interface TableInfo {
  readonly name: string;
  readonly rootPage: number;
  readonly columns: readonly string[];
  /** Column that aliases the rowid (stored as NULL in the record), or -1. */
  readonly rowidColumn: number;
  readonly withoutRowid: boolean;
  readonly sql: string;
}

export interface IndexInfo {
  readonly name: string;
  readonly table: string;
  readonly rootPage: number;
  /** Indexed column names (undefined for an expression or an automatic index of unknown shape). */
  readonly columns: readonly (string | undefined)[];
  readonly unique: boolean;
  /** Why the target cannot compare this index's keys, or undefined when it can. */
  readonly unsupported?: string;
  readonly sql: string | null;
}

export interface Schema {
  readonly tables: readonly TableInfo[];
  readonly indexes: readonly IndexInfo[];
}

type Token = { kind: 'word' | 'quoted' | 'punct' | 'string' | 'number'; text: string };

function tokenize(sql: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === '-' && sql[i + 1] === '-') {
      while (i < sql.length && sql[i] !== '\n') i++;
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else if (c === '"' || c === '`' || c === '[' || c === "'") {
      const close = c === '[' ? ']' : c;
      let j = i + 1;
      let text = '';
      while (j < sql.length) {
        if (sql[j] === close) {
          if (close !== ']' && sql[j + 1] === close) {
            text += close;
            j += 2;
            continue;
          }
          break;
        }
        text += sql[j++];
      }
      out.push({ kind: c === "'" ? 'string' : 'quoted', text });
      i = j + 1;
    } else if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
      let j = i;
      while (j < sql.length && /[A-Za-z0-9_$\u0080-\uffff]/.test(sql[j])) j++;
      out.push({ kind: 'word', text: sql.slice(i, j) });
      i = j;
    } else if (/[0-9.]/.test(c)) {
      let j = i;
      while (j < sql.length && /[0-9.eExX+a-fA-F]/.test(sql[j])) j++;
      out.push({ kind: 'number', text: sql.slice(i, j) });
      i = j;
    } else {
      out.push({ kind: 'punct', text: c });
      i++;
    }
  }
  return out;
}

const upper = (t: Token | undefined) => (t && t.kind === 'word' ? t.text.toUpperCase() : '');
const nameOf = (t: Token) => t.text;

/** Split the tokens inside the first top-level parentheses into comma-separated groups. */
function parenGroups(tokens: Token[], from: number): { groups: Token[][]; after: number } {
  let i = from;
  while (i < tokens.length && tokens[i].text !== '(') i++;
  const groups: Token[][] = [[]];
  let depth = 0;
  for (i++; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.kind === 'punct' && t.text === '(') depth++;
    if (t.kind === 'punct' && t.text === ')') {
      if (depth === 0) return { groups, after: i + 1 };
      depth--;
    }
    if (t.kind === 'punct' && t.text === ',' && depth === 0) groups.push([]);
    else groups[groups.length - 1].push(t);
  }
  return { groups, after: i };
}

const CONSTRAINT_WORDS = new Set(['CONSTRAINT', 'PRIMARY', 'UNIQUE', 'CHECK', 'FOREIGN']);
const COLUMN_CONSTRAINTS = new Set([
  'CONSTRAINT',
  'PRIMARY',
  'NOT',
  'NULL',
  'UNIQUE',
  'CHECK',
  'DEFAULT',
  'COLLATE',
  'REFERENCES',
  'GENERATED',
  'AS',
]);

export function parseCreateTable(name: string, rootPage: number, sql: string): TableInfo {
  const tokens = tokenize(sql);
  const { groups, after } = parenGroups(tokens, 0);
  const columns: string[] = [];
  const types: string[] = [];
  let rowidColumn = -1;
  let tablePk: string[] | undefined;
  for (const g of groups) {
    if (g.length === 0) continue;
    if (g[0].kind === 'word' && CONSTRAINT_WORDS.has(upper(g[0]))) {
      const pk = g.findIndex((t) => upper(t) === 'PRIMARY');
      if (pk >= 0) {
        const inner = parenGroups(g, pk);
        tablePk = inner.groups.map((x) => (x[0] ? nameOf(x[0]) : ''));
      }
      continue;
    }
    const col = nameOf(g[0]);
    const typeWords: string[] = [];
    let k = 1;
    while (k < g.length && g[k].kind === 'word' && !COLUMN_CONSTRAINTS.has(upper(g[k]))) typeWords.push(upper(g[k++]));
    const type = typeWords.join(' ');
    const rest = g.slice(k).map(upper);
    const pkAt = rest.indexOf('PRIMARY');
    if (pkAt >= 0 && type === 'INTEGER' && rest[pkAt + 2] !== 'DESC') rowidColumn = columns.length;
    columns.push(col);
    types.push(type);
  }
  if (rowidColumn < 0 && tablePk?.length === 1) {
    const at = columns.findIndex((c) => c.toLowerCase() === tablePk?.[0].toLowerCase());
    if (at >= 0 && types[at] === 'INTEGER') rowidColumn = at;
  }
  const tail = tokens.slice(after).map(upper);
  const withoutRowid = tail.includes('WITHOUT') && tail.includes('ROWID');
  return { name, rootPage, columns, rowidColumn, withoutRowid, sql };
}

export function parseCreateIndex(name: string, table: string, rootPage: number, sql: string | null): IndexInfo {
  if (sql === null) return { name, table, rootPage, columns: [], unique: true, sql, unsupported: undefined };
  const tokens = tokenize(sql);
  const unique = upper(tokens[1]) === 'UNIQUE';
  const { groups, after } = parenGroups(
    tokens,
    tokens.findIndex((t) => upper(t) === 'ON'),
  );
  const columns: (string | undefined)[] = [];
  let unsupported: string | undefined;
  for (const g of groups) {
    const words = g.map(upper);
    const plain = g.length >= 1 && (g[0].kind === 'word' || g[0].kind === 'quoted') && (g.length === 1 || g[1].kind === 'word');
    columns.push(plain ? nameOf(g[0]) : undefined);
    if (!plain) unsupported ??= 'an expression column';
    const coll = words.indexOf('COLLATE');
    if (coll >= 0 && (g[coll + 1]?.text ?? '').toUpperCase() !== 'BINARY') unsupported ??= `collation ${g[coll + 1]?.text}`;
    if (words.includes('DESC')) unsupported ??= 'a DESC column';
  }
  if (tokens.slice(after).some((t) => upper(t) === 'WHERE')) unsupported ??= 'a partial index';
  return { name, table, rootPage, columns, unique, sql, unsupported };
}

/** Build the schema from `sqlite_schema` rows (type, name, tbl_name, rootpage, sql). */
export function buildSchema(rows: readonly SqlValue[][]): Schema {
  const tables: TableInfo[] = [];
  const indexes: IndexInfo[] = [];
  for (const r of rows) {
    const [type, name, tbl, root, sql] = r;
    const rootPage = Number(root ?? 0);
    if (type === 'table' && typeof name === 'string' && typeof sql === 'string' && rootPage > 0)
      tables.push(parseCreateTable(name, rootPage, sql));
    if (type === 'index' && typeof name === 'string' && rootPage > 0)
      indexes.push(parseCreateIndex(name, String(tbl), rootPage, typeof sql === 'string' ? sql : null));
  }
  return { tables, indexes };
}
