export * from './btf.js';
export {
  type ElfFile,
  type ElfRelocation,
  type ElfSection,
  type ElfSymbol,
  EM_BPF,
  isElf,
  parseElf,
  parseRelocations,
} from './elf.js';
export * from './environment.js';
export * from './errors.js';
export * from './inspect.js';
export * from './limits.js';
export * from './object.js';
export * from './trace-printk.js';
