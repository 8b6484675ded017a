/**
 * Limits of the loader. Objects come from clients, so every size and count read from a file is
 * checked against one of these before it is used to allocate or loop.
 */

/** Largest object file accepted: far above any real eBPF object (a few hundred KiB at most). */
export const MAX_OBJECT_SIZE_BYTES = 64 * 1024 * 1024;
/** Section headers (extended numbering allows more, but no eBPF object comes close). */
export const MAX_SECTIONS = 65_535;
/** Symbol table entries. */
export const MAX_SYMBOLS = 1 << 20;
/** Instruction slots over all code sections of one object, as the kernel's 1M-instruction limit. */
export const MAX_OBJECT_INSTRUCTION_SLOTS = 1_000_000;
/** Slots of one linked program (entry plus appended subprograms): the ISA codec's limit. */
export const MAX_PROGRAM_SLOTS = 1_000_000;
/** Slots over all linked programs of one object (subprograms are copied into each user). */
export const MAX_LINKED_SLOTS_TOTAL = 4_000_000;
/** Programs in one object. */
export const MAX_PROGRAMS = 1024;
/** Maps in one object (.maps entries plus data sections); the sandbox has 63 regions in all. */
export const MAX_MAPS = 32;
/** One string of a string table (symbol names, BTF names, source lines). */
export const MAX_STRING_BYTES = 64 * 1024;
/** BTF types (the kernel's BTF_MAX_TYPE). */
export const MAX_BTF_TYPES = 0xfffff;
/** Modifier/typedef chain or nesting followed when resolving a BTF type (the kernel uses 32). */
export const MAX_BTF_RESOLVE_DEPTH = 32;
/** Line info records kept over the whole object. */
export const MAX_LINE_INFO_RECORDS = 1_000_000;
/** The license string. */
export const MAX_LICENSE_BYTES = 256;
