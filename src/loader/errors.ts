/**
 * Errors of the ELF/BTF loader. Every malformed object produces one of these (never a raw
 * RangeError or TypeError), each naming where the problem is: section index, byte offset, symbol
 * index, BTF type id. `code` is stable; messages may change.
 */
import { NearbpfError } from '../errors.js';

/** Base of every loader error: `instanceof LoaderError` is what the fuzz test accepts. */
export abstract class LoaderError extends NearbpfError {}

/** The ELF header: truncated file, not ELF, wrong class, byte order, type or machine. */
export class ElfHeaderError extends LoaderError {
  readonly code = 'ERR_ELF_HEADER';
  constructor(readonly reason: string) {
    super(`bad ELF header: ${reason}`);
  }
}

/** A section header or a section's contents (`sectionIndex` is the ELF section number). */
export class ElfSectionError extends LoaderError {
  readonly code = 'ERR_ELF_SECTION';
  constructor(
    readonly sectionIndex: number,
    readonly reason: string,
  ) {
    super(`section ${sectionIndex}: ${reason}`);
  }
}

/** A string table lookup: offset outside the table, or no terminating NUL. */
export class ElfStringError extends LoaderError {
  readonly code = 'ERR_ELF_STRING';
  constructor(
    readonly sectionIndex: number,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`string table in section ${sectionIndex}, offset ${offset}: ${reason}`);
  }
}

/** A symbol table entry (`symbolIndex` counts entries of .symtab, 0 being the null symbol). */
export class ElfSymbolError extends LoaderError {
  readonly code = 'ERR_ELF_SYMBOL';
  constructor(
    readonly symbolIndex: number,
    readonly reason: string,
  ) {
    super(`symbol ${symbolIndex}: ${reason}`);
  }
}

/** An instruction of a code section that does not decode, or cannot be loaded as it stands. */
export class ElfInstructionError extends LoaderError {
  readonly code = 'ERR_ELF_INSTRUCTION';
  constructor(
    readonly sectionIndex: number,
    /** Byte offset of the instruction inside its section. */
    readonly offsetBytes: number,
    readonly reason: string,
  ) {
    super(`section ${sectionIndex}, offset 0x${offsetBytes.toString(16)}: ${reason}`);
  }
}

/** A relocation entry: bad symbol, offset outside the section, wrong instruction for its type. */
export class RelocationError extends LoaderError {
  readonly code = 'ERR_ELF_RELOCATION';
  constructor(
    /** Index of the relocation section (.rel*). */
    readonly sectionIndex: number,
    /** Index of the entry inside that section. */
    readonly entryIndex: number,
    readonly reason: string,
  ) {
    super(`relocation ${entryIndex} of section ${sectionIndex}: ${reason}`);
  }
}

/** .BTF or .BTF.ext: bad header, truncated record, bad type id, cycle, absurd size. */
export class BtfError extends LoaderError {
  readonly code = 'ERR_BTF';
  constructor(
    /** '.BTF' or '.BTF.ext'. */
    readonly section: string,
    /** Byte offset inside the section, or -1 when the problem is a type (see `typeId`). */
    readonly offset: number,
    readonly typeId: number,
    readonly reason: string,
  ) {
    super(`${section}${offset >= 0 ? ` offset ${offset}` : ''}${typeId >= 0 ? ` type ${typeId}` : ''}: ${reason}`);
  }
}

/** A map definition in .maps (or a data section) the loader cannot turn into a map. */
export class MapDefinitionError extends LoaderError {
  readonly code = 'ERR_MAP_DEFINITION';
  constructor(
    readonly mapName: string,
    readonly reason: string,
  ) {
    super(`map '${mapName}': ${reason}`);
  }
}

/** Linking a program failed: bad call target, unknown function, program too large. */
export class LinkError extends LoaderError {
  readonly code = 'ERR_LINK';
  constructor(
    readonly program: string,
    readonly reason: string,
  ) {
    super(`program '${program}': ${reason}`);
  }
}

/** A size or count above one of the loader's limits (see limits.ts). */
export class LoaderLimitError extends LoaderError {
  readonly code = 'ERR_LOADER_LIMIT';
  constructor(
    readonly what: string,
    readonly limit: number,
    readonly actual: number,
  ) {
    super(`${what}: ${actual} exceeds the limit of ${limit}`);
  }
}

/** The object has no program of the requested name, or several when none was named. */
export class ProgramNotFoundError extends LoaderError {
  readonly code = 'ERR_PROGRAM_NOT_FOUND';
  constructor(
    readonly requested: string | undefined,
    readonly available: readonly string[],
  ) {
    super(
      requested === undefined
        ? `the object has ${available.length} programs (${available.join(', ')}): name one`
        : `no program '${requested}' (available: ${available.join(', ') || 'none'})`,
    );
  }
}

/** Setting up a program's environment failed (input larger than its memory region, bad option). */
export class EnvironmentError extends LoaderError {
  readonly code = 'ERR_ENVIRONMENT';
}
