/**
 * Loading an eBPF ELF object into plain data: programs with every relocation resolved, map
 * definitions, license and C source line info.
 *
 * How references are resolved (the choice the VM and verifier build on):
 * - a map (`&counts`, a symbol in .maps) becomes `lddw rN, map_by_idx K` (source 5), K indexing
 *   `LoadedObject.maps`;
 * - global data (`.rodata*`, `.data*`, `.bss*`) become single-entry array maps, and a reference into
 *   them becomes `lddw rN, map_value_by_idx K, OFF` (source 6): OFF bytes into the map's value.
 * Keeping indexes rather than sandbox addresses makes the object independent of any sandbox, so the
 * verifier can type the references; `environment.ts` turns them into addresses at run time.
 * - a BPF-to-BPF call becomes a `call local` whose target is in the same instruction array: every
 *   subprogram a program uses (transitively) is appended after it, once, as libbpf does.
 */

import { readFile } from 'node:fs/promises';
import type { MapDefinition } from '../abi/maps.js';
import { DecodeError } from '../errors.js';
// Single isa modules, not its index: `nearbpf run FILE.o` starts faster without the assembler and disassembler.
import { decodeProgram } from '../isa/codec.js';
import { type Instruction, type LddwInstruction, slotCount } from '../isa/instruction.js';
import { layoutProgram } from '../isa/layout.js';
import { BTF_KIND, type Btf, type BtfLineRecord, btfSizeOf, btfType, parseBtf, parseBtfExt, skipModifiers } from './btf.js';
import {
  contents,
  type ElfFile,
  type ElfSection,
  type ElfSymbol,
  isElf,
  parseElf,
  parseRelocations,
  R_BPF_64_32,
  R_BPF_64_64,
  R_BPF_NONE,
  RELOCATION_TYPE_NAMES,
  SHF_ALLOC,
  SHF_COMPRESSED,
  SHF_EXECINSTR,
  SHN_ABS,
  SHN_COMMON,
  SHN_UNDEF,
  SHT_NOBITS,
  SHT_PROGBITS,
  SHT_REL,
  SHT_RELA,
  SHT_SYMTAB,
  STB_LOCAL,
  STT_FUNC,
  STT_SECTION,
} from './elf.js';
import {
  BtfError,
  ElfHeaderError,
  ElfInstructionError,
  ElfSectionError,
  LinkError,
  LoaderLimitError,
  MapDefinitionError,
  ProgramNotFoundError,
  RelocationError,
} from './errors.js';
import {
  MAX_LICENSE_BYTES,
  MAX_LINKED_SLOTS_TOTAL,
  MAX_MAPS,
  MAX_OBJECT_INSTRUCTION_SLOTS,
  MAX_OBJECT_SIZE_BYTES,
  MAX_PROGRAM_SLOTS,
  MAX_PROGRAMS,
} from './limits.js';

/** Map types nearbpf implements (Linux numbering). */
export const BPF_MAP_TYPE_HASH = 1;
export const BPF_MAP_TYPE_ARRAY = 2;
export type MapKind = 'hash' | 'array';
/** Key size of array maps: a u32 index, as in Linux. */
export const ARRAY_KEY_SIZE_BYTES = 4;
/** Per-map sanity bounds (total map memory is bounded again when a sandbox is built). */
export const MAX_MAP_KEY_SIZE_BYTES = 512;
export const MAX_MAP_VALUE_SIZE_BYTES = 16 * 1024 * 1024;
export const MAX_MAP_ENTRIES = 1 << 24;

export interface LoadedMap extends MapDefinition {
  readonly name: string;
  readonly type: MapKind;
  /** `map_flags` of the definition (kept, not interpreted). */
  readonly flags: number;
  /** `btf`: declared in .maps; `data`: a global data section turned into a one-entry array. */
  readonly origin: 'btf' | 'data';
  /** ELF section the map comes from. */
  readonly section: string;
  /** Programs may not write it (.rodata*): its sandbox region is read-only and the host may not update it. */
  readonly readonly: boolean;
  /** Initial contents of entry 0 (data maps only). */
  readonly initialValue?: Uint8Array;
}

/** The C source of one instruction, from .BTF.ext line info. */
export interface LineInfo {
  /** Slot of the instruction in the linked program. */
  readonly pc: number;
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** The source line's text as clang recorded it. */
  readonly source: string;
}

/** A function of a linked program: the entry (pc 0) and each appended subprogram. */
export interface ProgramFunction {
  readonly name: string;
  readonly pc: number;
  readonly section: string;
}

/** A relocation as it was applied, for `inspect`. */
export interface AppliedRelocation {
  readonly pc: number;
  readonly type: string;
  readonly symbol: string;
  readonly kind: 'map' | 'map-value' | 'call';
  /** What the reference resolved to: `counts`, `.bss+8`, `sum_of_squares`. */
  readonly target: string;
  /** `map_by_idx 0 (counts)`, `map_value_by_idx 2, 16 (.rodata+16)`, `call sum_of_squares`. */
  readonly description: string;
}

export interface LoadedProgram {
  /** The function's symbol name (or the section name for a section without function symbols). */
  readonly name: string;
  readonly section: string;
  /** The section name up to its first '/': "conformance" for SEC("conformance/sum"). */
  readonly programType: string;
  readonly instructions: readonly Instruction[];
  /** Sorted by pc. */
  readonly lineInfo: readonly LineInfo[];
  readonly functions: readonly ProgramFunction[];
  readonly relocations: readonly AppliedRelocation[];
}

export interface LoadedObject {
  readonly programs: readonly LoadedProgram[];
  readonly maps: readonly LoadedMap[];
  /** Contents of the `license` section up to its NUL; '' without one. */
  readonly license: string;
}

interface CodeSection {
  readonly section: ElfSection;
  /** Instruction at each slot; undefined on the second slot of an lddw. */
  readonly insnAt: readonly (Instruction | undefined)[];
  readonly slots: number;
}

interface FunctionSymbol {
  readonly name: string;
  readonly section: number;
  readonly startSlot: number;
  readonly endSlot: number;
  readonly global: boolean;
}

type RelocTarget =
  | { readonly kind: 'map'; readonly mapIndex: number }
  | { readonly kind: 'map-value'; readonly mapIndex: number; readonly offset: number }
  | { readonly kind: 'call'; readonly section: number; readonly slot: number };

interface ResolvedRelocation {
  readonly target: RelocTarget;
  readonly type: number;
  readonly symbol: string;
}

const DATA_SECTION = /^\.(rodata|data|bss)(\..*)?$/;

function sectionByName(file: ElfFile, name: string): ElfSection | undefined {
  return file.sections.find((s) => s.name === name);
}

/** Contents of a section the loader parses; compressed or NOBITS sections cannot be. */
function dataOf(file: ElfFile, s: ElfSection): Uint8Array {
  if (s.flags & SHF_COMPRESSED) throw new ElfSectionError(s.index, `compressed section '${s.name}' is not supported`);
  if (s.type === SHT_NOBITS) throw new ElfSectionError(s.index, `section '${s.name}' has no contents`);
  return contents(file.bytes, s);
}

/** Parse and link a whole object. Throws a `LoaderError` for anything malformed or unsupported. */
export function loadObject(bytes: Uint8Array): LoadedObject {
  const file = parseElf(bytes);
  if (sectionByName(file, 'maps')) {
    throw new ElfSectionError(
      sectionByName(file, 'maps')!.index,
      'legacy \'maps\' section: declare maps in SEC(".maps") with __uint/__type',
    );
  }
  const btfSection = sectionByName(file, '.BTF');
  const btf = btfSection ? parseBtf(dataOf(file, btfSection)) : undefined;
  const btfExtSection = sectionByName(file, '.BTF.ext');
  const btfExt = btf && btfExtSection ? parseBtfExt(dataOf(file, btfExtSection), btf) : undefined;
  const license = readLicense(file);

  const code = decodeCodeSections(file);
  const functions = functionSymbols(file, code);
  const { maps, mapsBySection } = collectMaps(file, btf);
  const relocations = resolveRelocations(file, code, maps, mapsBySection);

  const entries = programEntries(code, functions);
  const lines = new Map<string, BtfLineRecord[]>();
  for (const [name, records] of btfExt?.lineInfo ?? [])
    lines.set(
      name,
      [...records].sort((a, b) => a.insnOffsetBytes - b.insnOffsetBytes),
    );
  const programs: LoadedProgram[] = [];
  let linkedSlots = 0;
  for (const entry of entries) {
    const program = linkProgram(entry, { file, code, functions, relocations, maps, lines });
    linkedSlots += program.slots;
    if (linkedSlots > MAX_LINKED_SLOTS_TOTAL)
      throw new LoaderLimitError('linked instruction slots of all programs', MAX_LINKED_SLOTS_TOTAL, linkedSlots);
    programs.push(program.program);
  }
  return { programs, maps, license };
}

function readLicense(file: ElfFile): string {
  const s = sectionByName(file, 'license');
  if (s === undefined) return '';
  const data = dataOf(file, s);
  const nul = data.indexOf(0);
  const text = data.subarray(0, nul < 0 ? data.length : nul);
  if (text.length > MAX_LICENSE_BYTES) throw new LoaderLimitError('license length in bytes', MAX_LICENSE_BYTES, text.length);
  return new TextDecoder('utf-8', { fatal: false }).decode(text);
}

function decodeCodeSections(file: ElfFile): Map<number, CodeSection> {
  const out = new Map<number, CodeSection>();
  let total = 0;
  for (const s of file.sections) {
    if (s.type !== SHT_PROGBITS || !(s.flags & SHF_EXECINSTR) || s.sizeBytes === 0) continue;
    if (s.sizeBytes % 8 !== 0)
      throw new ElfSectionError(s.index, `code section '${s.name}' size ${s.sizeBytes} is not a multiple of 8`);
    total += s.sizeBytes / 8;
    if (total > MAX_OBJECT_INSTRUCTION_SLOTS)
      throw new LoaderLimitError('instruction slots in the object', MAX_OBJECT_INSTRUCTION_SLOTS, total);
    let program: Instruction[];
    try {
      program = decodeProgram(dataOf(file, s));
    } catch (e) {
      if (e instanceof DecodeError) throw new ElfInstructionError(s.index, e.index * 8, e.reason);
      throw e;
    }
    const insnAt: (Instruction | undefined)[] = new Array(s.sizeBytes / 8).fill(undefined);
    let slot = 0;
    for (const insn of program) {
      insnAt[slot] = insn;
      if (insn.kind === 'lddw' && insn.source !== 0) {
        // A source other than imm64 must come from a relocation below; one already set has no defined meaning.
        throw new ElfInstructionError(s.index, slot * 8, `lddw with source ${insn.source} is not allowed in an object`);
      }
      if (insn.kind === 'call' && insn.target === 'kfunc') {
        throw new ElfInstructionError(s.index, slot * 8, 'kernel function calls (kfuncs) are not supported');
      }
      slot += slotCount(insn);
    }
    out.set(s.index, { section: s, insnAt, slots: slot });
  }
  return out;
}

/** FUNC symbols of code sections, checked to start and end on instruction boundaries. */
function functionSymbols(file: ElfFile, code: Map<number, CodeSection>): Map<string, FunctionSymbol> {
  const out = new Map<string, FunctionSymbol>();
  const bySection = new Map<number, ElfSymbol[]>();
  for (const sym of file.symbols) {
    if (sym.type !== STT_FUNC || !code.has(sym.sectionIndex)) continue;
    const list = bySection.get(sym.sectionIndex) ?? [];
    list.push(sym);
    bySection.set(sym.sectionIndex, list);
  }
  for (const [sectionIndex, syms] of bySection) {
    const c = code.get(sectionIndex)!;
    syms.sort((a, b) => a.value - b.value);
    syms.forEach((sym, i) => {
      const fail = (reason: string) =>
        new ElfInstructionError(sectionIndex, Math.min(sym.value, c.section.sizeBytes), `function ${sym.name}: ${reason}`);
      if (sym.value % 8 !== 0 || sym.sizeBytes % 8 !== 0) throw fail('offset or size is not a multiple of 8');
      // Hand-written assembly may leave sizes at 0: such a function runs to the next one.
      const endBytes = sym.sizeBytes > 0 ? sym.value + sym.sizeBytes : (syms[i + 1]?.value ?? c.section.sizeBytes);
      if (endBytes > c.section.sizeBytes || endBytes <= sym.value) throw fail('extends past its section or is empty');
      const startSlot = sym.value / 8;
      const endSlot = endBytes / 8;
      if (c.insnAt[startSlot] === undefined || (endSlot < c.slots && c.insnAt[endSlot] === undefined)) {
        throw fail('starts or ends inside an lddw');
      }
      const key = `${sectionIndex}:${startSlot}`;
      const prev = out.get(key);
      if (prev !== undefined && prev.endSlot !== endSlot) throw fail(`overlaps function ${prev.name}`);
      if (prev === undefined || (!prev.global && sym.bind !== STB_LOCAL)) {
        out.set(key, { name: sym.name, section: sectionIndex, startSlot, endSlot, global: sym.bind !== STB_LOCAL });
      }
    });
  }
  return out;
}

/** Programs: global functions of every code section but .text; a section without functions is one program. */
function programEntries(code: Map<number, CodeSection>, functions: Map<string, FunctionSymbol>): FunctionSymbol[] {
  const entries: FunctionSymbol[] = [];
  const bySection = new Map<number, FunctionSymbol[]>();
  for (const f of functions.values()) {
    const list = bySection.get(f.section) ?? [];
    list.push(f);
    bySection.set(f.section, list);
  }
  for (const [index, c] of code) {
    if (c.section.name === '.text') continue;
    const own = bySection.get(index) ?? [];
    if (own.length === 0) entries.push({ name: c.section.name, section: index, startSlot: 0, endSlot: c.slots, global: true });
    // Static functions in a program section are subprograms only (libbpf refuses them as programs).
    else entries.push(...own.filter((f) => f.global).sort((a, b) => a.startSlot - b.startSlot));
  }
  if (entries.length > MAX_PROGRAMS) throw new LoaderLimitError('program count', MAX_PROGRAMS, entries.length);
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.name)) throw new LinkError(e.name, 'two programs have this name');
    seen.add(e.name);
  }
  return entries;
}

// ---- maps ----

function collectMaps(file: ElfFile, btf: Btf | undefined) {
  const maps: LoadedMap[] = [];
  /** Section index -> (offset in section -> map index); data sections map offset 0 to the whole section. */
  const mapsBySection = new Map<number, Map<number, number>>();
  const add = (m: LoadedMap, sectionIndex: number, offset: number) => {
    if (maps.length >= MAX_MAPS) throw new LoaderLimitError('map count', MAX_MAPS, maps.length + 1);
    const bySection = mapsBySection.get(sectionIndex) ?? new Map<number, number>();
    bySection.set(offset, maps.length);
    mapsBySection.set(sectionIndex, bySection);
    maps.push(m);
  };
  const mapsSection = sectionByName(file, '.maps');
  if (mapsSection !== undefined) {
    if (btf === undefined) throw new ElfSectionError(mapsSection.index, '.maps needs .BTF to be read: compile with -g');
    for (const def of btfMaps(file, btf, mapsSection)) add(def.map, mapsSection.index, def.offset);
  }
  for (const s of file.sections) {
    if (!DATA_SECTION.test(s.name) || !(s.flags & SHF_ALLOC) || s.sizeBytes === 0) continue;
    if (s.type !== SHT_PROGBITS && s.type !== SHT_NOBITS) continue;
    if (s.sizeBytes > MAX_MAP_VALUE_SIZE_BYTES)
      throw new LoaderLimitError(`size of data section ${s.name}`, MAX_MAP_VALUE_SIZE_BYTES, s.sizeBytes);
    // .bss (NOBITS) has no initial value: maps start zeroed, and nothing is allocated before a sandbox is.
    const initialValue = s.type === SHT_NOBITS ? undefined : dataOf(file, s).slice();
    add(
      {
        name: s.name,
        type: 'array',
        keySizeBytes: ARRAY_KEY_SIZE_BYTES,
        valueSizeBytes: s.sizeBytes,
        maxEntries: 1,
        flags: 0,
        origin: 'data',
        section: s.name,
        readonly: s.name.startsWith('.rodata'),
        initialValue,
      },
      s.index,
      0,
    );
  }
  return { maps, mapsBySection };
}

/** Read each variable of the `.maps` DATASEC: `struct { __uint(type, ..); ... } name SEC(".maps")`. */
function btfMaps(file: ElfFile, btf: Btf, mapsSection: ElfSection): { map: LoadedMap; offset: number }[] {
  const datasec = btf.types.find((t) => t.kind === BTF_KIND.DATASEC && t.name === '.maps');
  if (datasec === undefined) {
    if (mapsSection.sizeBytes === 0) return [];
    throw new BtfError('.BTF', -1, -1, 'no DATASEC describes the .maps section');
  }
  const vars = datasec.secinfo ?? [];
  // Checked before the per-map symbol lookups below, which are linear in the symbol count.
  if (vars.length > MAX_MAPS) throw new LoaderLimitError('maps in .maps', MAX_MAPS, vars.length);
  const out: { map: LoadedMap; offset: number }[] = [];
  const usedOffsets = new Set<number>();
  for (const info of vars) {
    const v = btfType(btf, info.type);
    if (v.kind !== BTF_KIND.VAR) throw new BtfError('.BTF', -1, v.id, '.maps DATASEC entry is not a VAR');
    const name = v.name;
    const fail = (reason: string) => new MapDefinitionError(name, reason);
    const def = skipModifiers(btf, v.type);
    if (def.kind !== BTF_KIND.STRUCT) throw fail('definition is not a struct');
    // Clang leaves DATASEC offsets for the static linker; the symbol gives the real offset, as in libbpf.
    const sym = file.symbols.find((s) => s.sectionIndex === mapsSection.index && s.name === name && s.type !== STT_SECTION);
    if (sym === undefined) throw fail('no symbol in .maps');
    if (usedOffsets.has(sym.value)) throw fail(`shares offset ${sym.value} with another map`);
    usedOffsets.add(sym.value);
    const fields = new Map<string, number>();
    for (const m of def.members ?? []) {
      const p = skipModifiers(btf, m.type);
      if (m.name === 'values') throw fail('map-in-map and program arrays (__array(values, ...)) are not supported');
      if (p.kind !== BTF_KIND.PTR) throw fail(`member ${m.name} is not declared with __uint or __type`);
      if (m.name === 'key' || m.name === 'value') {
        fields.set(m.name, btfSizeOf(btf, p.type));
        continue;
      }
      const a = skipModifiers(btf, p.type);
      if (a.kind !== BTF_KIND.ARRAY) throw fail(`member ${m.name} is not declared with __uint`);
      fields.set(m.name, a.array!.nelems);
    }
    for (const key of fields.keys()) {
      if (!['type', 'key', 'value', 'key_size', 'value_size', 'max_entries', 'map_flags', 'pinning', 'numa_node'].includes(key)) {
        throw fail(`unknown member '${key}'`);
      }
    }
    const type = fields.get('type');
    if (type !== BPF_MAP_TYPE_HASH && type !== BPF_MAP_TYPE_ARRAY) {
      throw fail(
        `map type ${type ?? '(missing)'} is not supported (BPF_MAP_TYPE_HASH ${BPF_MAP_TYPE_HASH}, BPF_MAP_TYPE_ARRAY ${BPF_MAP_TYPE_ARRAY})`,
      );
    }
    if ((fields.get('pinning') ?? 0) !== 0) throw fail('pinning is not supported');
    const size = (typed: string, sized: string) => {
      const a = fields.get(typed);
      const b = fields.get(sized);
      if (a !== undefined && b !== undefined && a !== b) throw fail(`${typed} has size ${a} but ${sized} is ${b}`);
      const v = a ?? b;
      if (v === undefined) throw fail(`${typed} size is missing`);
      return v;
    };
    const keySizeBytes = size('key', 'key_size');
    const valueSizeBytes = size('value', 'value_size');
    const maxEntries = fields.get('max_entries') ?? 0;
    const kind: MapKind = type === BPF_MAP_TYPE_HASH ? 'hash' : 'array';
    if (keySizeBytes < 1 || keySizeBytes > MAX_MAP_KEY_SIZE_BYTES)
      throw fail(`key size ${keySizeBytes} is not in [1, ${MAX_MAP_KEY_SIZE_BYTES}]`);
    if (kind === 'array' && keySizeBytes !== ARRAY_KEY_SIZE_BYTES)
      throw fail(`array maps have ${ARRAY_KEY_SIZE_BYTES}-byte keys, not ${keySizeBytes}`);
    if (valueSizeBytes < 1 || valueSizeBytes > MAX_MAP_VALUE_SIZE_BYTES) {
      throw fail(`value size ${valueSizeBytes} is not in [1, ${MAX_MAP_VALUE_SIZE_BYTES}]`);
    }
    if (maxEntries < 1 || maxEntries > MAX_MAP_ENTRIES) throw fail(`max_entries ${maxEntries} is not in [1, ${MAX_MAP_ENTRIES}]`);
    out.push({
      map: {
        name,
        type: kind,
        keySizeBytes,
        valueSizeBytes,
        maxEntries,
        flags: fields.get('map_flags') ?? 0,
        origin: 'btf',
        section: '.maps',
        readonly: false,
      },
      offset: sym.value,
    });
  }
  return out;
}

// ---- relocations ----

/** Resolve every relocation of every code section up front, so unused functions are checked too. */
function resolveRelocations(
  file: ElfFile,
  code: Map<number, CodeSection>,
  maps: readonly LoadedMap[],
  mapsBySection: Map<number, Map<number, number>>,
): Map<number, Map<number, ResolvedRelocation>> {
  const out = new Map<number, Map<number, ResolvedRelocation>>();
  for (const rel of file.sections) {
    if (rel.type !== SHT_REL && rel.type !== SHT_RELA) continue;
    const c = code.get(rel.info);
    // Relocations of debug info, .BTF and .BTF.ext only matter to a static linker.
    if (c === undefined) continue;
    if (rel.type === SHT_RELA)
      throw new ElfSectionError(rel.index, 'RELA relocations of code are not supported (clang emits REL)');
    if (rel.link >= file.sections.length || file.sections[rel.link].type !== SHT_SYMTAB) {
      throw new ElfSectionError(rel.index, `linked symbol table ${rel.link} is not the symbol table`);
    }
    const bySlot = out.get(c.section.index) ?? new Map<number, ResolvedRelocation>();
    out.set(c.section.index, bySlot);
    for (const r of parseRelocations(file, rel)) {
      const fail = (reason: string) => new RelocationError(rel.index, r.entryIndex, reason);
      if (r.type === R_BPF_NONE) continue;
      if (r.offsetBytes % 8 !== 0 || r.offsetBytes >= c.section.sizeBytes) {
        throw fail(
          `offset 0x${r.offsetBytes.toString(16)} is not an instruction of section ${c.section.index} (${c.section.name})`,
        );
      }
      const slot = r.offsetBytes / 8;
      const insn = c.insnAt[slot];
      if (insn === undefined) throw fail(`offset 0x${r.offsetBytes.toString(16)} is the second slot of an lddw`);
      if (bySlot.has(slot)) throw fail(`a second relocation for offset 0x${r.offsetBytes.toString(16)}`);
      if (r.symbolIndex === 0 || r.symbolIndex >= file.symbols.length) throw fail(`symbol index ${r.symbolIndex} is invalid`);
      const sym = file.symbols[r.symbolIndex];
      const symName = sym.name || file.sections[sym.sectionIndex]?.name || `#${sym.index}`;
      if (sym.sectionIndex === SHN_UNDEF) throw fail(`'${symName}' is an extern (kfuncs, ksyms and kconfig are not supported)`);
      if (sym.sectionIndex === SHN_ABS || sym.sectionIndex === SHN_COMMON || sym.sectionIndex >= file.sections.length) {
        throw fail(`'${symName}' is not defined in a section`);
      }
      const typeName = RELOCATION_TYPE_NAMES[r.type] ?? `type ${r.type}`;
      if (r.type === R_BPF_64_32) {
        if (insn.kind !== 'call' || insn.target !== 'local')
          throw fail(`${typeName} applies to a BPF-to-BPF call, not to ${insn.kind}`);
        if (!code.has(sym.sectionIndex)) throw fail(`call target '${symName}' is not in a code section`);
        if (sym.value % 8 !== 0) throw fail(`call target '${symName}' is not 8-byte aligned`);
        const target = sym.value / 8 + insn.imm + 1;
        bySlot.set(slot, { type: r.type, symbol: symName, target: { kind: 'call', section: sym.sectionIndex, slot: target } });
        continue;
      }
      if (r.type !== R_BPF_64_64) throw fail(`${typeName} is not supported in code`);
      if (insn.kind !== 'lddw') throw fail(`${typeName} applies to lddw, not to ${insn.kind}`);
      if (code.has(sym.sectionIndex)) throw fail(`'${symName}' is code: function pointers (lddw code_addr) are not supported`);
      if (insn.nextImm !== 0) throw fail('lddw addend has high bits set');
      const offset = sym.value + insn.imm;
      const bySection = mapsBySection.get(sym.sectionIndex);
      if (bySection === undefined)
        throw fail(`'${symName}' is in section ${file.sections[sym.sectionIndex].name}, which is neither .maps nor global data`);
      const mapsIndex = bySection.get(0);
      const targetSection = file.sections[sym.sectionIndex];
      if (targetSection.name === '.maps') {
        const mapIndex = bySection.get(offset);
        if (mapIndex === undefined || (insn.imm !== 0 && sym.type !== STT_SECTION))
          throw fail(`no map at offset ${offset} of .maps`);
        bySlot.set(slot, { type: r.type, symbol: symName, target: { kind: 'map', mapIndex } });
      } else {
        const map = maps[mapsIndex!];
        if (offset < 0 || offset > map.valueSizeBytes)
          throw fail(`offset ${offset} is outside ${map.name} (${map.valueSizeBytes} bytes)`);
        bySlot.set(slot, { type: r.type, symbol: symName, target: { kind: 'map-value', mapIndex: mapsIndex!, offset } });
      }
    }
  }
  return out;
}

// ---- linking ----

interface LinkContext {
  readonly file: ElfFile;
  readonly code: Map<number, CodeSection>;
  readonly functions: Map<string, FunctionSymbol>;
  readonly relocations: Map<number, Map<number, ResolvedRelocation>>;
  readonly maps: readonly LoadedMap[];
  /** Line records per code section name, sorted by instruction offset. */
  readonly lines: ReadonlyMap<string, readonly BtfLineRecord[]>;
}

interface Piece {
  readonly fn: FunctionSymbol;
  /** Slot of the function's first instruction in the linked program. */
  readonly basePc: number;
}

function linkProgram(entry: FunctionSymbol, ctx: LinkContext): { program: LoadedProgram; slots: number } {
  const fail = (reason: string) => new LinkError(entry.name, reason);
  const pieces: Piece[] = [{ fn: entry, basePc: 0 }];
  const placed = new Map<string, Piece>([[`${entry.section}:${entry.startSlot}`, pieces[0]]]);
  let totalSlots = entry.endSlot - entry.startSlot;
  const instructions: Instruction[] = [];
  const applied: AppliedRelocation[] = [];

  for (let p = 0; p < pieces.length; p++) {
    const { fn, basePc } = pieces[p];
    const c = ctx.code.get(fn.section)!;
    const relocs = ctx.relocations.get(fn.section);
    for (let slot = fn.startSlot; slot < fn.endSlot; slot++) {
      const insn = c.insnAt[slot];
      if (insn === undefined) continue;
      const pc = basePc + slot - fn.startSlot;
      const reloc = relocs?.get(slot);
      if (insn.kind === 'call' && insn.target === 'local') {
        const target = reloc?.target ?? { kind: 'call' as const, section: fn.section, slot: slot + insn.imm + 1 };
        if (target.kind !== 'call') throw fail('call with a data relocation');
        const key = `${target.section}:${target.slot}`;
        const callee = ctx.functions.get(key);
        let piece = placed.get(key);
        if (piece === undefined) {
          if (callee === undefined) {
            const sectionName = ctx.code.get(target.section)?.section.name ?? `section ${target.section}`;
            throw fail(
              `call at ${c.section.name}+0x${(slot * 8).toString(16)} targets ${sectionName} slot ${target.slot}, which is not a function start`,
            );
          }
          piece = { fn: callee, basePc: totalSlots };
          totalSlots += callee.endSlot - callee.startSlot;
          if (totalSlots > MAX_PROGRAM_SLOTS)
            throw new LoaderLimitError(`slots of linked program ${entry.name}`, MAX_PROGRAM_SLOTS, totalSlots);
          placed.set(key, piece);
          pieces.push(piece);
        }
        instructions.push({ kind: 'call', target: 'local', imm: piece.basePc - pc - 1 });
        if (reloc !== undefined || piece.fn !== fn) {
          // A call inside one section needs no relocation (it is pc-relative); it is listed all the same.
          const type = reloc === undefined ? 'pc-relative' : RELOCATION_TYPE_NAMES[reloc.type];
          applied.push({
            pc,
            type,
            symbol: reloc?.symbol ?? piece.fn.name,
            kind: 'call',
            target: piece.fn.name,
            description: `call ${piece.fn.name}`,
          });
        }
        continue;
      }
      if (reloc !== undefined && insn.kind === 'lddw') {
        const t = reloc.target;
        const map = t.kind === 'call' ? undefined : ctx.maps[t.mapIndex];
        if (t.kind === 'call' || map === undefined) throw fail('lddw with a call relocation');
        const resolved: LddwInstruction =
          t.kind === 'map'
            ? { kind: 'lddw', dst: insn.dst, source: 5, imm: t.mapIndex, nextImm: 0 }
            : { kind: 'lddw', dst: insn.dst, source: 6, imm: t.mapIndex, nextImm: t.offset };
        instructions.push(resolved);
        applied.push({
          pc,
          type: RELOCATION_TYPE_NAMES[reloc.type],
          symbol: reloc.symbol,
          kind: t.kind,
          target: t.kind === 'map' ? map.name : `${map.name}+${t.offset}`,
          description:
            t.kind === 'map'
              ? `map_by_idx ${t.mapIndex} (${map.name})`
              : `map_value_by_idx ${t.mapIndex}, ${t.offset} (${map.name}+${t.offset})`,
        });
        continue;
      }
      instructions.push(insn);
    }
  }
  try {
    layoutProgram(instructions);
  } catch (e) {
    if (e instanceof DecodeError) throw fail(`linked program is malformed at slot ${e.index}: ${e.reason}`);
    throw e;
  }
  const section = ctx.code.get(entry.section)!.section.name;
  return {
    program: {
      name: entry.name,
      section,
      programType: section.split('/')[0],
      instructions,
      lineInfo: lineInfoOf(pieces, ctx),
      functions: pieces.map((p) => ({ name: p.fn.name, pc: p.basePc, section: ctx.code.get(p.fn.section)!.section.name })),
      relocations: applied,
    },
    slots: totalSlots,
  };
}

function lineInfoOf(pieces: readonly Piece[], ctx: LinkContext): LineInfo[] {
  const out: LineInfo[] = [];
  for (const { fn, basePc } of pieces) {
    const c = ctx.code.get(fn.section)!;
    const records = ctx.lines.get(c.section.name) ?? [];
    // Binary search for the function's first record: work stays proportional to what is copied.
    let lo = 0;
    let hi = records.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (records[mid].insnOffsetBytes < fn.startSlot * 8) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < records.length && records[i].insnOffsetBytes < fn.endSlot * 8; i++) {
      const r = records[i];
      if (r.insnOffsetBytes % 8 !== 0) continue;
      const slot = r.insnOffsetBytes / 8;
      if (c.insnAt[slot] === undefined) continue;
      out.push({ pc: basePc + slot - fn.startSlot, file: r.file, line: r.line, column: r.column, source: r.source });
    }
  }
  return out.sort((a, b) => a.pc - b.pc);
}

/** The program called `name`; with no name, the only program of the object. */
export function findProgram(object: LoadedObject, name?: string): LoadedProgram | undefined {
  if (name === undefined) return object.programs.length === 1 ? object.programs[0] : undefined;
  return object.programs.find((p) => p.name === name);
}

export interface LoadedProgramFile {
  readonly object: LoadedObject;
  readonly program: LoadedProgram;
}

/** Read and load an ELF object and pick one program (`program`, or the only one). */
export async function loadProgramFile(path: string, options: { program?: string } = {}): Promise<LoadedProgramFile> {
  return loadProgramBytes(await readFile(path), options, path);
}

/** Load an object already in memory and pick one of its programs. */
export function loadProgramBytes(bytes: Uint8Array, options: { program?: string } = {}, path = 'the input'): LoadedProgramFile {
  if (bytes.length > MAX_OBJECT_SIZE_BYTES)
    throw new LoaderLimitError('object size in bytes', MAX_OBJECT_SIZE_BYTES, bytes.length);
  if (!isElf(bytes)) throw new ElfHeaderError(`${path} is not an ELF object`);
  const object = loadObject(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length));
  const program = findProgram(object, options.program);
  if (program === undefined)
    throw new ProgramNotFoundError(
      options.program,
      object.programs.map((p) => p.name),
    );
  return { object, program };
}
