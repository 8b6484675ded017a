/**
 * BTF (BPF Type Format) as clang emits it in .BTF and .BTF.ext, read by hand: the type section
 * (every kind up to ENUM64) and the string section of .BTF; func and line info of .BTF.ext.
 * The loader needs the types to read BTF-defined maps (the numbers of `__uint(max_entries, 16)` are
 * array lengths in member types) and the line info to show C source next to instructions.
 */
import { StringTable } from './elf.js';
import { BtfError, LoaderLimitError } from './errors.js';
import { MAX_BTF_RESOLVE_DEPTH, MAX_BTF_TYPES, MAX_LINE_INFO_RECORDS } from './limits.js';

const BTF_MAGIC = 0xeb9f;
const BTF_HEADER_MIN_BYTES = 24;
const BTF_TYPE_BYTES = 12;

export const BTF_KIND = {
  UNKN: 0,
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

export const BTF_KIND_NAMES: readonly string[] = Object.keys(BTF_KIND);

export interface BtfMember {
  readonly name: string;
  readonly type: number;
  /** Bit offset (with kind_flag: low 24 bits offset, high 8 bits bitfield size). */
  readonly offset: number;
}
export interface BtfEnumValue {
  readonly name: string;
  readonly value: bigint;
}
export interface BtfParam {
  readonly name: string;
  readonly type: number;
}
export interface BtfVarSecinfo {
  readonly type: number;
  readonly offset: number;
  readonly sizeBytes: number;
}

/** One type. `type` is the referenced type for PTR, TYPEDEF, modifiers, FUNC, VAR, DECL_TAG. */
export interface BtfType {
  readonly id: number;
  readonly kind: number;
  readonly name: string;
  readonly vlen: number;
  readonly kindFlag: boolean;
  /** Size in bytes (INT, STRUCT, UNION, ENUM, ENUM64, DATASEC, FLOAT); 0 otherwise. */
  readonly sizeBytes: number;
  readonly type: number;
  /** ARRAY only. */
  readonly array?: { readonly elemType: number; readonly indexType: number; readonly nelems: number };
  /** INT only: encoding, bit offset, bits. */
  readonly int?: { readonly encoding: number; readonly offset: number; readonly bits: number };
  readonly members?: readonly BtfMember[];
  readonly enumValues?: readonly BtfEnumValue[];
  readonly params?: readonly BtfParam[];
  /** VAR linkage; FUNC linkage is `vlen`. */
  readonly linkage?: number;
  readonly secinfo?: readonly BtfVarSecinfo[];
  /** DECL_TAG component index (-1: the declaration itself). */
  readonly componentIndex?: number;
}

export interface Btf {
  /** types[0] is void; ids index this array. */
  readonly types: readonly BtfType[];
  readonly strings: StringTable;
}

function btfError(offset: number, reason: string, typeId = -1): BtfError {
  return new BtfError('.BTF', offset, typeId, reason);
}

interface BtfHeader {
  readonly headerBytes: number;
  readonly sections: { readonly offset: number; readonly length: number }[];
}

/** Check magic, version and that each [off, off+len) of the header lies inside the data. */
function readHeader(section: string, bytes: Uint8Array, minHeaderBytes: number, fields: number): BtfHeader {
  const fail = (offset: number, reason: string) => new BtfError(section, offset, -1, reason);
  if (bytes.length < minHeaderBytes) throw fail(0, `shorter (${bytes.length} bytes) than the header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint16(0, true);
  if (magic === 0x9feb) throw fail(0, 'big-endian BTF is not supported');
  if (magic !== BTF_MAGIC) throw fail(0, `bad magic 0x${magic.toString(16)}`);
  if (view.getUint8(2) !== 1) throw fail(2, `unsupported version ${view.getUint8(2)}`);
  const headerBytes = view.getUint32(4, true);
  if (headerBytes < minHeaderBytes || headerBytes > bytes.length) throw fail(4, `header length ${headerBytes} is invalid`);
  const dataBytes = bytes.length - headerBytes;
  const sections = [];
  for (let i = 0; i < fields; i++) {
    const at = 8 + i * 8;
    // Optional trailing pairs (e.g. CO-RE relocations of .BTF.ext) exist only if the header is long enough.
    if (at + 8 > headerBytes) {
      sections.push({ offset: 0, length: 0 });
      continue;
    }
    const offset = view.getUint32(at, true);
    const length = view.getUint32(at + 4, true);
    if (offset > dataBytes || length > dataBytes - offset) throw fail(at, `part [${offset}, +${length}) is outside the data`);
    sections.push({ offset: headerBytes + offset, length });
  }
  return { headerBytes, sections };
}

/** Parse .BTF. Names are resolved eagerly so a bad string offset fails here, not later. */
export function parseBtf(bytes: Uint8Array): Btf {
  const header = readHeader('.BTF', bytes, BTF_HEADER_MIN_BYTES, 2);
  const [typeSec, strSec] = header.sections;
  const strings = new StringTable(bytes.subarray(strSec.offset, strSec.offset + strSec.length), -1, (offset, reason) =>
    btfError(strSec.offset + offset, `string offset ${offset}: ${reason}`),
  );
  if (strSec.length === 0 || bytes[strSec.offset] !== 0)
    throw btfError(strSec.offset, 'string section must start with an empty string');
  const view = new DataView(bytes.buffer, bytes.byteOffset + typeSec.offset, typeSec.length);
  const types: BtfType[] = [{ id: 0, kind: BTF_KIND.UNKN, name: 'void', vlen: 0, kindFlag: false, sizeBytes: 0, type: 0 }];
  let at = 0;
  const end = typeSec.length;
  while (at < end) {
    const id = types.length;
    if (id > MAX_BTF_TYPES) throw new LoaderLimitError('BTF type count', MAX_BTF_TYPES, id);
    const start = at;
    const need = (n: number) => {
      if (at + n > end) throw btfError(typeSec.offset + start, `type ${id} is truncated`, id);
    };
    need(BTF_TYPE_BYTES);
    const nameOff = view.getUint32(at, true);
    const info = view.getUint32(at + 4, true);
    const sizeOrType = view.getUint32(at + 8, true);
    at += BTF_TYPE_BYTES;
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    const kindFlag = info >>> 31 === 1;
    const name = strings.get(nameOff);
    const base = { id, kind, name, vlen, kindFlag, sizeBytes: 0, type: 0 };
    const u32 = (off: number) => view.getUint32(off, true);
    switch (kind) {
      case BTF_KIND.INT: {
        need(4);
        const v = u32(at);
        at += 4;
        types.push({
          ...base,
          sizeBytes: sizeOrType,
          int: { encoding: (v >>> 24) & 0xf, offset: (v >>> 16) & 0xff, bits: v & 0xff },
        });
        break;
      }
      case BTF_KIND.PTR:
      case BTF_KIND.FWD:
      case BTF_KIND.TYPEDEF:
      case BTF_KIND.VOLATILE:
      case BTF_KIND.CONST:
      case BTF_KIND.RESTRICT:
      case BTF_KIND.FUNC:
      case BTF_KIND.TYPE_TAG:
        types.push({ ...base, type: kind === BTF_KIND.FWD ? 0 : sizeOrType });
        break;
      case BTF_KIND.FLOAT:
        types.push({ ...base, sizeBytes: sizeOrType });
        break;
      case BTF_KIND.ARRAY:
        need(12);
        types.push({ ...base, array: { elemType: u32(at), indexType: u32(at + 4), nelems: u32(at + 8) } });
        at += 12;
        break;
      case BTF_KIND.STRUCT:
      case BTF_KIND.UNION: {
        need(vlen * 12);
        const members: BtfMember[] = [];
        for (let i = 0; i < vlen; i++, at += 12)
          members.push({ name: strings.get(u32(at)), type: u32(at + 4), offset: u32(at + 8) });
        types.push({ ...base, sizeBytes: sizeOrType, members });
        break;
      }
      case BTF_KIND.ENUM: {
        need(vlen * 8);
        const enumValues: BtfEnumValue[] = [];
        for (let i = 0; i < vlen; i++, at += 8)
          enumValues.push({ name: strings.get(u32(at)), value: BigInt(view.getInt32(at + 4, true)) });
        types.push({ ...base, sizeBytes: sizeOrType, enumValues });
        break;
      }
      case BTF_KIND.ENUM64: {
        need(vlen * 12);
        const enumValues: BtfEnumValue[] = [];
        for (let i = 0; i < vlen; i++, at += 12) {
          enumValues.push({ name: strings.get(u32(at)), value: (BigInt(u32(at + 8)) << 32n) | BigInt(u32(at + 4)) });
        }
        types.push({ ...base, sizeBytes: sizeOrType, enumValues });
        break;
      }
      case BTF_KIND.FUNC_PROTO: {
        need(vlen * 8);
        const params: BtfParam[] = [];
        for (let i = 0; i < vlen; i++, at += 8) params.push({ name: strings.get(u32(at)), type: u32(at + 4) });
        types.push({ ...base, type: sizeOrType, params });
        break;
      }
      case BTF_KIND.VAR:
        need(4);
        types.push({ ...base, type: sizeOrType, linkage: u32(at) });
        at += 4;
        break;
      case BTF_KIND.DATASEC: {
        need(vlen * 12);
        const secinfo: BtfVarSecinfo[] = [];
        for (let i = 0; i < vlen; i++, at += 12) secinfo.push({ type: u32(at), offset: u32(at + 4), sizeBytes: u32(at + 8) });
        types.push({ ...base, sizeBytes: sizeOrType, secinfo });
        break;
      }
      case BTF_KIND.DECL_TAG:
        need(4);
        types.push({ ...base, type: sizeOrType, componentIndex: view.getInt32(at, true) });
        at += 4;
        break;
      default:
        throw btfError(typeSec.offset + start, `unknown kind ${kind}`, id);
    }
  }
  const btf = { types, strings };
  checkReferences(btf);
  return btf;
}

/** Every type id a type refers to must exist: later lookups can then index without checks. */
function checkReferences(btf: Btf): void {
  const n = btf.types.length;
  const check = (t: BtfType, ref: number, what: string) => {
    if (ref >= n) throw btfError(-1, `${what} refers to type ${ref}, but there are only ${n - 1} types`, t.id);
  };
  for (const t of btf.types) {
    check(t, t.type, 'type');
    if (t.array) {
      check(t, t.array.elemType, 'array element');
      check(t, t.array.indexType, 'array index');
    }
    for (const m of t.members ?? []) check(t, m.type, `member ${m.name}`);
    for (const p of t.params ?? []) check(t, p.type, `parameter ${p.name}`);
    for (const s of t.secinfo ?? []) check(t, s.type, 'datasec variable');
  }
}

export function btfType(btf: Btf, id: number): BtfType {
  const t = btf.types[id];
  if (t === undefined) throw btfError(-1, 'no such type', id);
  return t;
}

const MODIFIERS: ReadonlySet<number> = new Set([
  BTF_KIND.TYPEDEF,
  BTF_KIND.VOLATILE,
  BTF_KIND.CONST,
  BTF_KIND.RESTRICT,
  BTF_KIND.TYPE_TAG,
]);

/** Follow typedefs and qualifiers to the underlying type, at most MAX_BTF_RESOLVE_DEPTH steps (cycles fail). */
export function skipModifiers(btf: Btf, id: number): BtfType {
  let t = btfType(btf, id);
  for (let depth = 0; MODIFIERS.has(t.kind); depth++) {
    if (depth >= MAX_BTF_RESOLVE_DEPTH)
      throw btfError(-1, `typedef/qualifier chain deeper than ${MAX_BTF_RESOLVE_DEPTH} (a cycle?)`, id);
    t = btfType(btf, t.type);
  }
  return t;
}

/** Size in bytes of a type; nested arrays and chains are bounded by MAX_BTF_RESOLVE_DEPTH. */
export function btfSizeOf(btf: Btf, id: number, depth = 0): number {
  if (depth > MAX_BTF_RESOLVE_DEPTH) throw btfError(-1, `type nesting deeper than ${MAX_BTF_RESOLVE_DEPTH} (a cycle?)`, id);
  const t = btfType(btf, id);
  switch (t.kind) {
    case BTF_KIND.INT:
    case BTF_KIND.STRUCT:
    case BTF_KIND.UNION:
    case BTF_KIND.ENUM:
    case BTF_KIND.ENUM64:
    case BTF_KIND.FLOAT:
    case BTF_KIND.DATASEC:
      return t.sizeBytes;
    case BTF_KIND.PTR:
      return 8;
    case BTF_KIND.ARRAY: {
      const size = btfSizeOf(btf, t.array!.elemType, depth + 1) * t.array!.nelems;
      // Sizes of real types fit in 32 bits; anything larger is absurd input.
      if (size > 0xffffffff) throw btfError(-1, `array size ${size} does not fit 32 bits`, id);
      return size;
    }
    case BTF_KIND.TYPEDEF:
    case BTF_KIND.VOLATILE:
    case BTF_KIND.CONST:
    case BTF_KIND.RESTRICT:
    case BTF_KIND.TYPE_TAG:
      return btfSizeOf(btf, t.type, depth + 1);
    default:
      throw btfError(-1, `${BTF_KIND_NAMES[t.kind] ?? t.kind} has no size`, id);
  }
}

/** A C-like name of a type, for messages and `inspect` (bounded depth). */
export function btfTypeName(btf: Btf, id: number, depth = 0): string {
  if (depth > MAX_BTF_RESOLVE_DEPTH) return '...';
  const t = btf.types[id];
  if (t === undefined) return `<type ${id}>`;
  switch (t.kind) {
    case BTF_KIND.UNKN:
      return 'void';
    case BTF_KIND.PTR:
      return `${btfTypeName(btf, t.type, depth + 1)} *`;
    case BTF_KIND.ARRAY:
      return `${btfTypeName(btf, t.array!.elemType, depth + 1)}[${t.array!.nelems}]`;
    case BTF_KIND.STRUCT:
      return `struct ${t.name || '<anon>'}`;
    case BTF_KIND.UNION:
      return `union ${t.name || '<anon>'}`;
    case BTF_KIND.ENUM:
    case BTF_KIND.ENUM64:
      return `enum ${t.name || '<anon>'}`;
    case BTF_KIND.CONST:
      return `const ${btfTypeName(btf, t.type, depth + 1)}`;
    case BTF_KIND.VOLATILE:
      return `volatile ${btfTypeName(btf, t.type, depth + 1)}`;
    default:
      return t.name || BTF_KIND_NAMES[t.kind] || `kind ${t.kind}`;
  }
}

/** One line info record of .BTF.ext: the C source line of the instruction at `insnOffsetBytes`. */
export interface BtfLineRecord {
  readonly insnOffsetBytes: number;
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly source: string;
}

export interface BtfFuncRecord {
  readonly insnOffsetBytes: number;
  readonly typeId: number;
}

/** .BTF.ext, by the name of the code section each record set belongs to. */
export interface BtfExt {
  readonly lineInfo: ReadonlyMap<string, readonly BtfLineRecord[]>;
  readonly funcInfo: ReadonlyMap<string, readonly BtfFuncRecord[]>;
}

const LINE_RECORD_MIN_BYTES = 16;
const FUNC_RECORD_MIN_BYTES = 8;

/** Parse .BTF.ext func and line info (CO-RE relocations are skipped: nearbpf has no kernel types). */
export function parseBtfExt(bytes: Uint8Array, btf: Btf): BtfExt {
  const header = readHeader('.BTF.ext', bytes, 24, 2);
  const fail = (offset: number, reason: string) => new BtfError('.BTF.ext', offset, -1, reason);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let budget = MAX_LINE_INFO_RECORDS;
  const readSets = <T>(part: { offset: number; length: number }, minRecordBytes: number, read: (at: number) => T) => {
    const out = new Map<string, T[]>();
    if (part.length === 0) return out;
    const end = part.offset + part.length;
    if (part.length < 4) throw fail(part.offset, 'record size is missing');
    const recordBytes = view.getUint32(part.offset, true);
    if (recordBytes < minRecordBytes || recordBytes % 4 !== 0 || recordBytes > 1024) {
      throw fail(part.offset, `record size ${recordBytes} is invalid`);
    }
    let at = part.offset + 4;
    while (at < end) {
      if (at + 8 > end) throw fail(at, 'record set header is truncated');
      const section = btf.strings.get(view.getUint32(at, true));
      const count = view.getUint32(at + 4, true);
      at += 8;
      if (count > (end - at) / recordBytes) throw fail(at, `${count} records of ${recordBytes} bytes overrun the part`);
      budget -= count;
      if (budget < 0) throw new LoaderLimitError('BTF.ext record count', MAX_LINE_INFO_RECORDS, MAX_LINE_INFO_RECORDS - budget);
      const list = out.get(section) ?? [];
      for (let i = 0; i < count; i++, at += recordBytes) list.push(read(at));
      out.set(section, list);
    }
    return out;
  };
  const funcInfo = readSets(header.sections[0], FUNC_RECORD_MIN_BYTES, (at) => ({
    insnOffsetBytes: view.getUint32(at, true),
    typeId: view.getUint32(at + 4, true),
  }));
  const lineInfo = readSets(header.sections[1], LINE_RECORD_MIN_BYTES, (at) => {
    const lineCol = view.getUint32(at + 12, true);
    return {
      insnOffsetBytes: view.getUint32(at, true),
      file: btf.strings.get(view.getUint32(at + 4, true)),
      source: btf.strings.get(view.getUint32(at + 8, true)),
      line: lineCol >>> 10,
      column: lineCol & 0x3ff,
    };
  });
  return { lineInfo, funcInfo };
}
