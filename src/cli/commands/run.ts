import { UsageError } from '../../errors.js';
import { parseHexBytes, runConformance } from '../../vm/conformance.js';
import { JitEngine } from '../../vm/jit/engine.js';
import { expectPositionals, parseCommandArgs, parseEngineKind, parseFuel, readInputFile } from '../args.js';
import { parseProgram } from '../program-file.js';
import type { Command } from './command.js';

export const runCommand: Command = {
  name: 'run',
  summary: 'run a program once over a memory buffer and print r0',
  usage: `nearbpf run FILE [--program NAME] [--mem HEX | --mem-file PATH] [--engine interpreter|jit] [--fuel N] [--stats]

Runs FILE (an ELF object from clang -target bpf, assembly text if it ends in .s, raw bytecode
otherwise) with r1 = address of the memory and r2 = its length (the bpf_conformance convention),
and prints r0 in hex. Debug output of an object's bpf_printk goes to stderr.
  --program NAME     which program of an ELF object (default: its only or first one)
  --mem HEX          the memory as hex bytes ("aa bb 11" or "aabb11"); default: empty
  --mem-file PATH    the memory as the raw bytes of PATH
  --engine KIND      interpreter or jit (default: jit)
  --fuel N           instruction budget (default: 100000000)
  --stats            print fuel used and, for the JIT, compile times and Wasm size on stderr

Exit status: 0 on success, 1 if the program fails to load or faults, 2 on bad usage.`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, {
      mem: { type: 'string' },
      'mem-file': { type: 'string' },
      engine: { type: 'string', default: 'jit' },
      fuel: { type: 'string' },
      stats: { type: 'boolean', default: false },
      program: { type: 'string' },
    });
    const [path] = expectPositionals(positionals, ['FILE']);
    const engine = parseEngineKind(values.engine);
    const fuel = values.fuel === undefined ? undefined : parseFuel(values.fuel);
    if (values.mem !== undefined && values['mem-file'] !== undefined) {
      throw new UsageError('give at most one of --mem and --mem-file');
    }
    // Parse every argument before loading the program, so usage errors win over program errors.
    const memory = values['mem-file'] !== undefined ? await readInputFile(values['mem-file']) : parseHexBytes(values.mem ?? '');
    const file = await readInputFile(path);
    // ELF magic (\x7fELF), checked here so plain bytecode never loads the loader's modules.
    if (file.length >= 4 && file[0] === 0x7f && file[1] === 0x45 && file[2] === 0x4c && file[3] === 0x46) {
      // An object from clang: its maps and global data live in the sandbox beside the memory. The
      // loader is imported only here, so running plain bytecode starts fast.
      const [{ loadProgramBytes }, { createProgramEnvironment }] = await Promise.all([
        import('../../loader/object.js'),
        import('../../loader/environment.js'),
      ]);
      const { object, program } = loadProgramBytes(file, { program: values.program });
      const env = createProgramEnvironment(object, program.name, { memorySizeBytes: Math.max(memory.length, 1) });
      const run = env.run(memory, { engine, fuel });
      for (const line of run.log) io.stderr.write(`${line}\n`);
      io.stdout.write(`0x${run.r0.toString(16)}\n`);
      if (values.stats) io.stderr.write(`fuel used: ${run.fuelUsed}\n`);
      return 0;
    }
    if (values.program !== undefined) throw new UsageError('--program applies to ELF objects only');
    const program = await parseProgram(path, file);

    const result = runConformance(program, memory, { engine, fuel });
    io.stdout.write(`0x${result.r0.toString(16)}\n`);
    if (values.stats) {
      io.stderr.write(`fuel used: ${result.fuelUsed}\n`);
      if (result.engine instanceof JitEngine) {
        const { stats, instantiateMs } = result.engine;
        io.stderr.write(
          `jit translate: ${stats.translateMs.toFixed(3)} ms\n` +
            `jit compile: ${stats.compileMs.toFixed(3)} ms\n` +
            `jit instantiate: ${instantiateMs.toFixed(3)} ms\n` +
            `wasm size: ${stats.wasmSizeBytes} bytes\n`,
        );
      }
    }
    return 0;
  },
};
