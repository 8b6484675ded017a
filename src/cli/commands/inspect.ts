import { inspectFile } from '../../loader/index.js';
import { expectPositionals, parseCommandArgs } from '../args.js';
import type { Command } from './command.js';

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'show the programs, maps, relocations and disassembly of an ELF object',
  usage: `nearbpf inspect FILE.o [--program NAME] [--no-source]

Prints what the loader sees in an object built by clang -target bpf: its programs (section, size,
functions), maps, resolved relocations, and each program's disassembly interleaved with the C
source lines recorded in its BTF line information.
  --program NAME   only this program
  --no-source      disassembly without source lines

Exit status: 0 on success, 1 if the object is invalid, 2 on bad usage.`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, {
      program: { type: 'string' },
      'no-source': { type: 'boolean', default: false },
    });
    const [path] = expectPositionals(positionals, ['FILE']);
    io.stdout.write(await inspectFile(path, { program: values.program, source: !values['no-source'] }));
    return 0;
  },
};
