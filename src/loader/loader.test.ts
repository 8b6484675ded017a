import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { btfSizeOf, parseBtf, skipModifiers } from './btf.js';
import { parseElf } from './elf.js';
import {
  BtfError,
  ElfHeaderError,
  ElfInstructionError,
  ElfSectionError,
  ElfStringError,
  ElfSymbolError,
  type LoaderError,
  LoaderLimitError,
  ProgramNotFoundError,
  RelocationError,
} from './errors.js';
import { EXAMPLES_BUILD_DIR, exampleObject, exampleObjectNames, SH, sectionHeaderAt } from './fixtures.js';
import { inspectObject } from './inspect.js';
import { MAX_OBJECT_SIZE_BYTES } from './limits.js';
import { loadObject, loadProgramFile } from './object.js';

function mutate(name: string, edit: (bytes: Uint8Array, view: DataView) => void): Uint8Array {
  const bytes = exampleObject(name).slice();
  edit(bytes, new DataView(bytes.buffer));
  return bytes;
}

function sectionIndex(bytes: Uint8Array, name: string): number {
  const s = parseElf(bytes).sections.find((x) => x.name === name);
  assert.ok(s, `no section ${name}`);
  return s.index;
}

describe('loadObject on the examples', () => {
  it('loads every example object', () => {
    for (const name of exampleObjectNames()) {
      const o = loadObject(exampleObject(name));
      assert.ok(o.programs.length > 0, name);
      assert.notEqual(o.license, '');
      for (const p of o.programs) {
        assert.ok(['conformance', 'storage'].includes(p.programType), `${name}/${p.name}: ${p.programType}`);
        assert.ok(p.lineInfo.length > 0, `${name}/${p.name} has line info`);
        for (const insn of p.instructions) {
          if (insn.kind === 'lddw') assert.ok([0, 5, 6].includes(insn.source), 'only imm64, map_by_idx, map_value_by_idx');
          if (insn.kind === 'call') assert.notEqual(insn.target, 'kfunc');
        }
      }
    }
  });

  it('reads BTF-defined maps with __type and __uint sizes', () => {
    const o = loadObject(exampleObject('hashmap.o'));
    assert.deepEqual(
      o.maps.map((m) => [m.name, m.type, m.keySizeBytes, m.valueSizeBytes, m.maxEntries, m.origin]),
      [
        ['counts', 'hash', 4, 8, 256, 'btf'],
        ['stats', 'array', 4, 8, 2, 'btf'],
      ],
    );
    const p = o.programs[0];
    assert.ok(p.relocations.some((r) => r.kind === 'map' && r.target === 'counts'));
    assert.ok(p.instructions.some((i) => i.kind === 'lddw' && i.source === 5 && i.imm === 1));
  });

  it('turns global data sections into one-entry array maps with map_value references', () => {
    const o = loadObject(exampleObject('globals.o'));
    const byName = new Map(o.maps.map((m) => [m.name, m]));
    assert.equal(byName.get('.data')?.initialValue?.[0], 100);
    assert.equal(byName.get('.bss')?.valueSizeBytes, 16);
    assert.equal(byName.get('.rodata')?.readonly, true);
    assert.equal(byName.get('.data')?.readonly, false);
    assert.equal(o.license, 'GPL');
    // `bits_seen` is a global symbol at .bss+8: offset from the symbol, not from the instruction.
    assert.ok(o.programs[0].relocations.some((r) => r.symbol === 'bits_seen' && r.target === '.bss+8'));
  });

  it('finds several programs per section and appends used subprograms once', () => {
    const o = loadObject(exampleObject('calls.o'));
    assert.deepEqual(
      o.programs.map((p) => [p.name, p.section, p.functions.map((f) => f.name)]),
      [
        ['squares', 'conformance/calls', ['squares', 'sum_of_squares', 'square']],
        ['squares_plus_one', 'conformance', ['squares_plus_one', 'sum_of_squares', 'square']],
        ['five_args', 'conformance', ['five_args', 'square', 'weighted']],
      ],
    );
  });

  it('inspect shows maps, relocations and source lines', () => {
    const text = inspectObject(loadObject(exampleObject('hashmap.o')));
    assert.match(text, /#0 counts {2}hash {2}key 4 {2}value 8 {2}max_entries 256/);
    assert.match(text, /R_BPF_64_64 counts -> map_by_idx 0 \(counts\)/);
    assert.match(text, /; hashmap\.c:\d+: .*bpf_map_lookup_elem\(&counts, &key\)/);
    assert.match(inspectObject(loadObject(exampleObject('calls.o')), { program: 'five_args' }), /call local weighted/);
  });

  it('loadProgramFile picks the only program or the named one', async () => {
    const sum = await loadProgramFile(`${EXAMPLES_BUILD_DIR}sum.o`);
    assert.equal(sum.program.name, 'sum');
    const five = await loadProgramFile(`${EXAMPLES_BUILD_DIR}calls.o`, { program: 'five_args' });
    assert.equal(five.program.name, 'five_args');
    await assert.rejects(loadProgramFile(`${EXAMPLES_BUILD_DIR}calls.o`), ProgramNotFoundError);
    await assert.rejects(loadProgramFile(`${EXAMPLES_BUILD_DIR}calls.o`, { program: 'nope' }), ProgramNotFoundError);
  });
});

describe('loadObject on hostile input', () => {
  const rejects = (bytes: Uint8Array, type: new (...args: never[]) => LoaderError, pattern?: RegExp) => {
    assert.throws(
      () => loadObject(bytes),
      (e: unknown) => {
        assert.ok(e instanceof type, `expected ${type.name}, got ${e}`);
        if (pattern) assert.match((e as Error).message, pattern);
        return true;
      },
    );
  };

  it('rejects truncated files and bad headers', () => {
    const sum = exampleObject('sum.o');
    rejects(new Uint8Array(0), ElfHeaderError, /not an ELF/);
    rejects(sum.slice(0, 20), ElfHeaderError, /shorter/);
    rejects(sum.slice(0, sum.length - 100), ElfHeaderError, /past the end/);
    rejects(
      mutate('sum.o', (b) => (b[4] = 1)),
      ElfHeaderError,
      /ELFCLASS64/,
    );
    rejects(
      mutate('sum.o', (b) => (b[5] = 2)),
      ElfHeaderError,
      /little-endian/,
    );
    rejects(
      mutate('sum.o', (_b, v) => v.setUint16(18, 62, true)),
      ElfHeaderError,
      /machine 62/,
    );
    rejects(
      mutate('sum.o', (_b, v) => v.setUint16(16, 2, true)),
      ElfHeaderError,
      /ET_REL/,
    );
    rejects(
      mutate('sum.o', (_b, v) => v.setUint16(62, 999, true)),
      ElfHeaderError,
      /name table index/,
    );
  });

  it('rejects an object above the size limit before parsing it', () => {
    const huge = new Uint8Array(MAX_OBJECT_SIZE_BYTES + 1);
    huge.set(exampleObject('sum.o'));
    rejects(huge, LoaderLimitError, /object size/);
  });

  it('rejects sections outside the file and bad string offsets', () => {
    rejects(
      mutate('sum.o', (b, v) => {
        const at = sectionHeaderAt(b, sectionIndex(b, 'conformance/sum'));
        v.setBigUint64(at + SH.size, 1n << 40n, true);
      }),
      ElfSectionError,
      /past the end/,
    );
    rejects(
      mutate('sum.o', (b, v) => v.setUint32(sectionHeaderAt(b, 1) + SH.name, 0xffffff, true)),
      ElfStringError,
      /outside the table/,
    );
    rejects(
      mutate('sum.o', (b, v) => {
        const at = sectionHeaderAt(b, sectionIndex(b, 'conformance/sum'));
        v.setBigUint64(at + SH.size, 12n, true);
      }),
      ElfSectionError,
      /multiple of 8/,
    );
  });

  it('rejects symbols with a bad section index', () => {
    rejects(
      mutate('sum.o', (b, v) => {
        const symtab = parseElf(b).sections.find((s) => s.name === '.symtab')!;
        v.setUint16(symtab.offsetBytes + 24 + 6, 0x7777, true); // symbol 1's st_shndx
      }),
      ElfSymbolError,
      /section index 30583/,
    );
  });

  it('rejects relocations outside their section, on the wrong instruction, or with a bad symbol', () => {
    const relEntry = (b: Uint8Array) => parseElf(b).sections.find((s) => s.name === '.relconformance/count_bytes')!.offsetBytes;
    rejects(
      mutate('hashmap.o', (b, v) => v.setBigUint64(relEntry(b), 0x100000n, true)),
      RelocationError,
      /not an instruction/,
    );
    rejects(
      mutate('hashmap.o', (b, v) => v.setBigUint64(relEntry(b), 0n, true)),
      RelocationError,
      /applies to lddw, not to alu/,
    );
    rejects(
      mutate('hashmap.o', (b, v) => v.setBigUint64(relEntry(b), v.getBigUint64(relEntry(b), true) + 8n, true)),
      RelocationError,
      /second slot/,
    );
    rejects(
      mutate('hashmap.o', (b, v) => v.setUint32(relEntry(b) + 12, 0xffff, true)),
      RelocationError,
      /symbol index 65535/,
    );
    rejects(
      mutate('hashmap.o', (b, v) => v.setUint32(relEntry(b) + 8, 3, true)),
      RelocationError,
      /R_BPF_64_ABS32 is not supported/,
    );
  });

  it('rejects undecodable instructions with their section and offset', () => {
    rejects(
      mutate('sum.o', (b) => {
        const s = parseElf(b).sections.find((x) => x.name === 'conformance/sum')!;
        b[s.offsetBytes + 8] = 0xff; // unknown opcode in the second instruction
      }),
      ElfInstructionError,
      /offset 0x8/,
    );
  });

  it('rejects a BTF header that points outside the section', () => {
    rejects(
      mutate('hashmap.o', (b, v) => {
        const s = parseElf(b).sections.find((x) => x.name === '.BTF')!;
        v.setUint32(s.offsetBytes + 12, 0xfffffff0, true); // type_len
      }),
      BtfError,
      /outside the data/,
    );
  });
});

/** A .BTF section from type records (already encoded as u32 words) and a string section. */
function btfBytes(typeWords: number[], strings = '\0int\0'): Uint8Array {
  const types = new Uint8Array(new Uint32Array(typeWords).buffer);
  const str = new TextEncoder().encode(strings);
  const out = new Uint8Array(24 + types.length + str.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, 0xeb9f, true);
  v.setUint8(2, 1);
  v.setUint32(4, 24, true);
  v.setUint32(8, 0, true);
  v.setUint32(12, types.length, true);
  v.setUint32(16, types.length, true);
  v.setUint32(20, str.length, true);
  out.set(types, 24);
  out.set(str, 24 + types.length);
  return out;
}
const info = (kind: number, vlen = 0) => ((kind << 24) | vlen) >>> 0;

describe('BTF', () => {
  it('resolves sizes through typedefs, qualifiers and arrays', () => {
    const btf = parseBtf(
      btfBytes([
        1,
        info(1),
        4,
        32, // [1] int, 4 bytes
        0,
        info(8),
        1, //      [2] typedef -> 1
        0,
        info(10),
        2, //     [3] const -> 2
        0,
        info(3),
        0,
        3,
        1,
        7, // [4] array of 7 x [3]
      ]),
    );
    assert.equal(btfSizeOf(btf, 4), 28);
    assert.equal(skipModifiers(btf, 3).id, 1);
  });

  it('fails on cycles, bad references, unknown kinds and truncation instead of looping or crashing', () => {
    const cyclic = parseBtf(btfBytes([0, info(8), 2, 0, info(8), 1])); // typedef 1 -> 2 -> 1
    assert.throws(() => skipModifiers(cyclic, 1), BtfError);
    assert.throws(() => btfSizeOf(cyclic, 1), BtfError);
    assert.throws(() => parseBtf(btfBytes([0, info(2), 99])), /refers to type 99/);
    assert.throws(() => parseBtf(btfBytes([0, info(25), 0])), /unknown kind 25/);
    assert.throws(() => parseBtf(btfBytes([0, info(4, 1000), 8])), /truncated/);
    assert.throws(() => parseBtf(btfBytes([0, info(1), 4, 32], 'x')), /empty string/);
    const selfArray = parseBtf(btfBytes([0, info(3), 0, 1, 1, 4])); // array whose element is itself
    assert.throws(() => btfSizeOf(selfArray, 1), BtfError);
  });
});
