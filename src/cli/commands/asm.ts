import { writeFile } from 'node:fs/promises';
import { UsageError } from '../../errors.js';
import { assemble, encodeProgram } from '../../isa/index.js';
import { describeFsError, expectPositionals, parseCommandArgs, readInputFile } from '../args.js';
import type { Command } from './command.js';

export const asmCommand: Command = {
  name: 'asm',
  summary: 'assemble eBPF assembly text into bytecode',
  usage: `nearbpf asm FILE.s [-o FILE.bin]

Assembles FILE.s (bpf_conformance syntax) into raw little-endian bytecode.
  -o, --output FILE   write the bytecode to FILE; without it, to stdout unless stdout is a terminal`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, { output: { type: 'string', short: 'o' } });
    const [sourcePath] = expectPositionals(positionals, ['FILE.s']);
    const source = Buffer.from(await readInputFile(sourcePath)).toString('utf8');
    const bytecode = encodeProgram(assemble(source));
    if (values.output === undefined) {
      // Raw bytes would garble a terminal; demand a file or a redirect.
      if (io.stdout.isTTY) throw new UsageError('refusing to write bytecode to a terminal; use -o FILE or redirect stdout');
      io.stdout.write(bytecode);
      return 0;
    }
    try {
      await writeFile(values.output, bytecode);
    } catch (e) {
      throw new UsageError(`cannot write '${values.output}': ${describeFsError(e)}`);
    }
    return 0;
  },
};
