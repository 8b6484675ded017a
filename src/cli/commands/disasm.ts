import { disassemble } from '../../isa/index.js';
import { expectPositionals, parseCommandArgs } from '../args.js';
import { readProgramFile } from '../program-file.js';
import type { Command } from './command.js';

export const disasmCommand: Command = {
  name: 'disasm',
  summary: 'print bytecode (or assembly) as canonical assembly text',
  usage: `nearbpf disasm FILE [--pcs] [--labels]

Prints the program in FILE (raw bytecode, or assembly text if FILE ends in .s) one instruction a line.
  --pcs      prefix each line with its slot index
  --labels   name jump and call targets L<pc> instead of printing relative offsets`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, {
      pcs: { type: 'boolean', default: false },
      labels: { type: 'boolean', default: false },
    });
    const [path] = expectPositionals(positionals, ['FILE']);
    const program = await readProgramFile(path);
    io.stdout.write(disassemble(program, { pcs: values.pcs, labels: values.labels }));
    return 0;
  },
};
