/**
 * A minimal reader of 64-bit little-endian relocatable ELF objects for EM_BPF: section headers,
 * string tables, the symbol table and REL relocation entries. Nothing else of ELF is needed to
 * load what clang emits for `-target bpf`. Every offset and count is checked before use.
 */
import { ElfHeaderError, ElfSectionError, ElfStringError, ElfSymbolError, LoaderLimitError } from './errors.js';
import { MAX_OBJECT_SIZE_BYTES, MAX_SECTIONS, MAX_STRING_BYTES, MAX_SYMBOLS } from './limits.js';

export const EM_BPF = 247;
export const ET_REL = 1;
const ELF_HEADER_BYTES = 64;
const SECTION_HEADER_BYTES = 64;
const SYMBOL_BYTES = 24;
const REL_BYTES = 16;

export const SHT_NULL = 0;
export const SHT_PROGBITS = 1;
export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_RELA = 4;
export const SHT_NOBITS = 8;
export const SHT_REL = 9;
export const SHF_WRITE = 0x1;
export const SHF_ALLOC = 0x2;
export const SHF_EXECINSTR = 0x4;
export const SHF_COMPRESSED = 0x800;

export const SHN_UNDEF = 0;
const SHN_LORESERVE = 0xff00;
export const SHN_ABS = 0xfff1;
export const SHN_COMMON = 0xfff2;
const SHN_XINDEX = 0xffff;

export const STT_NOTYPE = 0;
export const STT_OBJECT = 1;
export const STT_FUNC = 2;
export const STT_SECTION = 3;
export const STB_LOCAL = 0;
export const STB_GLOBAL = 1;
export const STB_WEAK = 2;

export const R_BPF_NONE = 0;
export const R_BPF_64_64 = 1;
export const R_BPF_64_ABS64 = 2;
export const R_BPF_64_ABS32 = 3;
export const R_BPF_64_NODYLD32 = 4;
export const R_BPF_64_32 = 10;

export const RELOCATION_TYPE_NAMES: Readonly<Record<number, string>> = {
  [R_BPF_NONE]: 'R_BPF_NONE',
  [R_BPF_64_64]: 'R_BPF_64_64',
  [R_BPF_64_ABS64]: 'R_BPF_64_ABS64',
  [R_BPF_64_ABS32]: 'R_BPF_64_ABS32',
  [R_BPF_64_NODYLD32]: 'R_BPF_64_NODYLD32',
  [R_BPF_64_32]: 'R_BPF_64_32',
};

export interface ElfSection {
  readonly index: number;
  readonly name: string;
  readonly type: number;
  readonly flags: number;
  /** File offset of the contents (meaningless for SHT_NOBITS). */
  readonly offsetBytes: number;
  readonly sizeBytes: number;
  readonly link: number;
  readonly info: number;
  readonly entrySizeBytes: number;
}

export interface ElfSymbol {
  readonly index: number;
  readonly name: string;
  readonly type: number;
  readonly bind: number;
  /** Section index, or SHN_UNDEF / SHN_ABS / SHN_COMMON. */
  readonly sectionIndex: number;
  /** Offset in its section (relocatable objects), at most 2^53. */
  readonly value: number;
  readonly sizeBytes: number;
}

export interface ElfRelocation {
  /** Index of the entry in its .rel section, for error messages. */
  readonly entryIndex: number;
  readonly offsetBytes: number;
  readonly type: number;
  readonly symbolIndex: number;
}

export interface ElfFile {
  readonly bytes: Uint8Array;
  readonly sections: readonly ElfSection[];
  /** Empty when the object has no symbol table. */
  readonly symbols: readonly ElfSymbol[];
}

/** Whether `bytes` starts with the ELF magic (used to tell objects from raw bytecode). */
export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46;
}

/** A u64 field as a number, or `fail()` when it exceeds what any in-file offset can be. */
function u64(view: DataView, at: number, fail: () => never): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail();
  return Number(v);
}

/** Reads NUL-terminated strings of one string table section; caches by offset. */
export class StringTable {
  private readonly cache = new Map<number, string>();
  private static readonly decoder = new TextDecoder('utf-8', { fatal: false });
  constructor(
    private readonly bytes: Uint8Array,
    /** For error messages: the ELF section index, or -1 for the BTF string section. */
    readonly sectionIndex: number,
    private readonly makeError: (offset: number, reason: string) => Error = (offset, reason) =>
      new ElfStringError(sectionIndex, offset, reason),
  ) {}

  get sizeBytes(): number {
    return this.bytes.length;
  }

  get(offset: number): string {
    const hit = this.cache.get(offset);
    if (hit !== undefined) return hit;
    if (!Number.isInteger(offset) || offset < 0 || offset >= this.bytes.length) {
      throw this.makeError(offset, `offset outside the table of ${this.bytes.length} bytes`);
    }
    const limit = Math.min(this.bytes.length, offset + MAX_STRING_BYTES + 1);
    const end = this.bytes.subarray(offset, limit).indexOf(0);
    if (end < 0) {
      throw this.makeError(
        offset,
        limit === this.bytes.length ? 'string has no terminating NUL' : `string longer than ${MAX_STRING_BYTES} bytes`,
      );
    }
    const s = StringTable.decoder.decode(this.bytes.subarray(offset, offset + end));
    this.cache.set(offset, s);
    return s;
  }
}

/** Parse the ELF header, section headers, section names and the symbol table. */
export function parseElf(bytes: Uint8Array): ElfFile {
  if (bytes.length > MAX_OBJECT_SIZE_BYTES)
    throw new LoaderLimitError('object size in bytes', MAX_OBJECT_SIZE_BYTES, bytes.length);
  if (!isElf(bytes)) throw new ElfHeaderError('not an ELF file (no \\x7fELF magic)');
  if (bytes.length < ELF_HEADER_BYTES) throw new ElfHeaderError(`file of ${bytes.length} bytes is shorter than the ELF header`);
  if (bytes[4] !== 2) throw new ElfHeaderError(`class ${bytes[4]} is not ELFCLASS64 (2)`);
  if (bytes[5] !== 1)
    throw new ElfHeaderError(`data encoding ${bytes[5]} is not little-endian (1); compile with -target bpf or bpfel`);
  if (bytes[6] !== 1) throw new ElfHeaderError(`ident version ${bytes[6]} is not 1`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = view.getUint16(16, true);
  const machine = view.getUint16(18, true);
  if (machine !== EM_BPF) throw new ElfHeaderError(`machine ${machine} is not EM_BPF (${EM_BPF})`);
  if (type !== ET_REL) throw new ElfHeaderError(`type ${type} is not ET_REL (1): expected an object from clang -c`);
  const badShoff = (): never => {
    throw new ElfHeaderError('section header offset out of range');
  };
  const shoff = u64(view, 40, badShoff);
  const shentsize = view.getUint16(58, true);
  let shnum = view.getUint16(60, true);
  let shstrndx = view.getUint16(62, true);
  if (shoff === 0) throw new ElfHeaderError('no section header table');
  if (shentsize !== SECTION_HEADER_BYTES)
    throw new ElfHeaderError(`section header size ${shentsize} is not ${SECTION_HEADER_BYTES}`);
  if (shoff + SECTION_HEADER_BYTES > bytes.length)
    throw new ElfHeaderError(`section header table at ${shoff} is past the end of the file`);
  // Extended numbering: counts that do not fit 16 bits live in section 0's header.
  if (shnum === 0) shnum = u64(view, shoff + 32, badShoff);
  if (shstrndx === SHN_XINDEX) shstrndx = view.getUint32(shoff + 40, true);
  if (shnum > MAX_SECTIONS) throw new LoaderLimitError('section count', MAX_SECTIONS, shnum);
  if (shoff + shnum * SECTION_HEADER_BYTES > bytes.length) {
    throw new ElfHeaderError(`section header table of ${shnum} entries at ${shoff} is past the end of the file`);
  }
  if (shstrndx === SHN_UNDEF || shstrndx >= shnum) throw new ElfHeaderError(`section name table index ${shstrndx} is invalid`);

  const raw: Omit<ElfSection, 'name'>[] = [];
  const nameOffsets: number[] = [];
  for (let i = 0; i < shnum; i++) {
    const at = shoff + i * SECTION_HEADER_BYTES;
    const bad = (): never => {
      throw new ElfSectionError(i, 'offset or size out of range');
    };
    const section = {
      index: i,
      type: view.getUint32(at + 4, true),
      // Flags above bit 31 are OS/processor specific and irrelevant here.
      flags: Number(view.getBigUint64(at + 8, true) & 0xffffffffn),
      offsetBytes: u64(view, at + 24, bad),
      sizeBytes: u64(view, at + 32, bad),
      link: view.getUint32(at + 40, true),
      info: view.getUint32(at + 44, true),
      entrySizeBytes: u64(view, at + 56, bad),
    };
    if (i === 0) {
      // Section 0 is the null section; it only carries extended counts.
      raw.push({ ...section, type: SHT_NULL, offsetBytes: 0, sizeBytes: 0 });
      nameOffsets.push(0);
      continue;
    }
    if (section.type !== SHT_NOBITS && section.type !== SHT_NULL && section.offsetBytes + section.sizeBytes > bytes.length) {
      throw new ElfSectionError(i, `contents [${section.offsetBytes}, +${section.sizeBytes}) extend past the end of the file`);
    }
    raw.push(section);
    nameOffsets.push(view.getUint32(at, true));
  }
  const shstr = raw[shstrndx];
  if (shstr.type !== SHT_STRTAB) throw new ElfSectionError(shstrndx, 'section name table is not SHT_STRTAB');
  const names = new StringTable(contents(bytes, shstr), shstrndx);
  const sections: ElfSection[] = raw.map((s, i) => ({ ...s, name: i === 0 ? '' : names.get(nameOffsets[i]) }));

  const symtabs = sections.filter((s) => s.type === SHT_SYMTAB);
  if (symtabs.length > 1) throw new ElfSectionError(symtabs[1].index, 'more than one symbol table');
  const symbols = symtabs.length === 1 ? parseSymbols(bytes, sections, symtabs[0]) : [];
  return { bytes, sections, symbols };
}

/** The bytes of a section (empty for SHT_NOBITS: .bss has no contents in the file). */
export function contents(bytes: Uint8Array, section: Omit<ElfSection, 'name'>): Uint8Array {
  if (section.type === SHT_NOBITS || section.type === SHT_NULL) return new Uint8Array(0);
  return bytes.subarray(section.offsetBytes, section.offsetBytes + section.sizeBytes);
}

function parseSymbols(bytes: Uint8Array, sections: readonly ElfSection[], symtab: ElfSection): ElfSymbol[] {
  if (symtab.entrySizeBytes !== SYMBOL_BYTES) {
    throw new ElfSectionError(symtab.index, `symbol entry size ${symtab.entrySizeBytes} is not ${SYMBOL_BYTES}`);
  }
  if (symtab.sizeBytes % SYMBOL_BYTES !== 0) throw new ElfSectionError(symtab.index, 'size is not a whole number of symbols');
  const count = symtab.sizeBytes / SYMBOL_BYTES;
  if (count > MAX_SYMBOLS) throw new LoaderLimitError('symbol count', MAX_SYMBOLS, count);
  const strtab = sections[symtab.link];
  if (strtab === undefined || strtab.index === 0 || strtab.type !== SHT_STRTAB) {
    throw new ElfSectionError(symtab.index, `linked string table ${symtab.link} is not a string table`);
  }
  const names = new StringTable(contents(bytes, strtab), strtab.index);
  const view = new DataView(bytes.buffer, bytes.byteOffset + symtab.offsetBytes, symtab.sizeBytes);
  const symbols: ElfSymbol[] = [];
  for (let i = 0; i < count; i++) {
    const at = i * SYMBOL_BYTES;
    const info = view.getUint8(at + 4);
    const sectionIndex = view.getUint16(at + 6, true);
    if (sectionIndex === SHN_XINDEX) throw new ElfSymbolError(i, 'extended section indexes (SHN_XINDEX) are not supported');
    if (sectionIndex !== SHN_UNDEF && sectionIndex < SHN_LORESERVE && sectionIndex >= sections.length) {
      throw new ElfSymbolError(i, `section index ${sectionIndex} does not exist`);
    }
    const bad = (): never => {
      throw new ElfSymbolError(i, 'value or size out of range');
    };
    symbols.push({
      index: i,
      name: names.get(view.getUint32(at, true)),
      type: info & 0xf,
      bind: info >> 4,
      sectionIndex,
      value: u64(view, at + 8, bad),
      sizeBytes: u64(view, at + 16, bad),
    });
  }
  return symbols;
}

/** The entries of one SHT_REL section; SHT_RELA is refused (clang never emits it for BPF). */
export function parseRelocations(file: ElfFile, rel: ElfSection): ElfRelocation[] {
  if (rel.type !== SHT_REL) throw new ElfSectionError(rel.index, 'relocation section is not SHT_REL');
  if (rel.entrySizeBytes !== REL_BYTES)
    throw new ElfSectionError(rel.index, `relocation entry size ${rel.entrySizeBytes} is not ${REL_BYTES}`);
  if (rel.sizeBytes % REL_BYTES !== 0) throw new ElfSectionError(rel.index, 'size is not a whole number of relocation entries');
  const view = new DataView(file.bytes.buffer, file.bytes.byteOffset + rel.offsetBytes, rel.sizeBytes);
  const out: ElfRelocation[] = [];
  for (let i = 0; i < rel.sizeBytes / REL_BYTES; i++) {
    const offset = view.getBigUint64(i * REL_BYTES, true);
    out.push({
      entryIndex: i,
      // Offsets beyond 2^53 are certainly outside the section; clamp so the caller's range check fails.
      offsetBytes: offset > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(offset),
      type: view.getUint32(i * REL_BYTES + 8, true),
      symbolIndex: view.getUint32(i * REL_BYTES + 12, true),
    });
  }
  return out;
}
