/**
 * Verifier timings: a typical program, synthetic straight-line-with-diamonds programs of 4K and 32K
 * instructions, a 4096-iteration loop, the clang-built example objects (examples/build), and the
 * time to hit the 1M processed-instruction limit.
 * Run: npx tsc -p . && node dist/bench/verifier-bench.js
 * Targets: typical program < 10 ms; 1M limit < 2 s.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { STORAGE_FUNCTION } from '../abi/storage.js';
import { assemble, type Instruction } from '../isa/index.js';
import { loadObject } from '../loader/index.js';
import { REPO_ROOT } from '../testing/conformance-data.js';
import { VerifierError, verifyProgram } from '../verifier/index.js';

/**
 * Blocks of ALU work on an unknown value, a stack spill/fill, and a diamond on an unknown bit whose
 * sides rejoin in the same state (the second side is pruned at the join).
 */
function synthetic(instructions: number): Instruction[] {
  const lines = ['mov %r6, %r2', 'mov %r0, 0', 'mov %r3, 1'];
  const block = [
    'add %r3, %r6',
    'and %r3, 0xffff',
    'stxdw [%r10-8], %r3',
    'ldxdw %r0, [%r10-8]',
    'mov %r5, %r6',
    'and %r5, 1',
    'jeq %r5, 0, +1',
    'mov %r5, 0',
  ];
  while (lines.length + block.length + 2 <= instructions) lines.push(...block);
  lines.push('and %r0, 0xff', 'exit');
  return assemble(lines.join('\n'));
}

const TYPICAL = `
mov %r0, 0
mov %r3, %r1
add %r3, %r2
mov %r6, 0
loop:
jge %r6, 64, done
mov %r4, %r1
add %r4, 1
jgt %r4, %r3, done
ldxb %r5, [%r1]
add %r0, %r5
mov %r1, %r4
add %r6, 1
ja loop
done:
exit`;

function time(name: string, program: readonly Instruction[], runs: number): void {
  for (let i = 0; i < 3; i++) verifyProgram(program, { type: 'conformance' }); // warm-up
  const started = performance.now();
  let processed = 0;
  for (let i = 0; i < runs; i++) processed = verifyProgram(program, { type: 'conformance' }).stats.processedInsns;
  const ms = (performance.now() - started) / runs;
  console.log(`${name.padEnd(44)} ${ms.toFixed(2).padStart(9)} ms  (${program.length} insns, ${processed} processed)`);
}

time('typical: bounded byte-sum loop (64 bytes)', assemble(TYPICAL), 200);
time('synthetic 4K instructions', synthetic(4096), 5);
time('synthetic 32K instructions', synthetic(32768), 2);
time('loop of 4096 iterations', assemble('mov %r0, 0\nmov %r1, 0\nL:\nadd %r0, %r1\nadd %r1, 1\njlt %r1, 4096, L\nexit'), 5);

// The example objects, verified as the server would (programs of sum.o exceed the limit: see the
// verifier README, "Loops"; they are timed to the limit).
for (const file of ['btree.o', 'scan.o', 'bsearch.o', 'calls.o', 'hashmap.o', 'globals.o', 'sum.o']) {
  const object = loadObject(readFileSync(join(REPO_ROOT, 'examples', 'build', file)));
  for (const program of object.programs) {
    const type = program.programType === 'storage' ? STORAGE_FUNCTION : 'conformance';
    const runs = 3;
    let outcome = '';
    const started = performance.now();
    for (let i = 0; i < runs; i++) {
      try {
        outcome = `${verifyProgram(program.instructions, { type, maps: object.maps }).stats.processedInsns} processed`;
      } catch (e) {
        if (!(e instanceof VerifierError)) throw e;
        outcome = `rejected: ${e.reason}`;
      }
    }
    const ms = (performance.now() - started) / runs;
    console.log(
      `${`${file} ${program.name}`.padEnd(44)} ${ms.toFixed(2).padStart(9)} ms  (${program.instructions.length} insns, ${outcome})`,
    );
  }
}

// A counter that is compared (so it is precise) and never repeats: only the limit stops it.
const endless = assemble('mov %r0, 0\nL:\nadd %r0, 1\njgt %r0, 0, L\nexit');
const started = performance.now();
try {
  verifyProgram(endless, { type: 'conformance' });
  console.log('1M limit: unexpectedly accepted');
} catch (e) {
  if (!(e instanceof VerifierError)) throw e;
  console.log(
    `${'time to hit the 1M processed-insn limit'.padEnd(44)} ${(performance.now() - started).toFixed(0).padStart(9)} ms  (${e.reason})`,
  );
}
