/** Test fixture of shared-memory.test.ts: what each worker thread runs (kept out of the test file, which a worker must not load). */
import { assemble } from '../isa/index.js';
import { createSandbox } from './engine.js';
import { helperTable } from './helpers.js';
import { JitEngine, JitProgram, type JitProgramShared } from './jit/engine.js';

export const COUNTING_ROUNDS = 200_000;
// r1 = counters: a u64 at +0 and a u32 at +8 bumped atomically; r2 = this thread's slot of plain stores.
const COUNTING = `
  mov %r3, 0
  mov %r4, 1
loop:
  lock add [%r1+0], %r4
  lock add32 [%r1+8], %r4
  stxdw [%r10-8], %r3
  ldxdw %r5, [%r10-8]
  stxdw [%r2+0], %r5
  add %r3, 1
  jlt %r3, ${COUNTING_ROUNDS}, loop
  mov %r0, %r3
  exit
`;
export const REGIONS = [
  { name: 'stack1', sizeBytes: 4096, writable: true },
  { name: 'counters', sizeBytes: 64, writable: true },
];

export const COUNTING_PROGRAM = assemble(COUNTING);

/**
 * Worker side of the counting tests: run the counting program on this thread's own stack, compiled
 * here or, given `jit`, as the thread that sent it compiled it.
 */
export function runCounting(data: {
  memory: WebAssembly.Memory;
  stackRegionId: number;
  counters: number;
  jit?: JitProgramShared;
}): string {
  const sandbox = createSandbox(REGIONS, { memory: data.memory });
  const engine = new JitEngine(data.jit === undefined ? COUNTING_PROGRAM : JitProgram.attach(data.jit), {
    helpers: helperTable([]),
    memory: sandbox,
    memoryMode: 'verified',
    stackRegionId: data.stackRegionId,
  });
  const slot = data.counters + 8 + 8 * data.stackRegionId;
  return String(engine.run([BigInt(data.counters), BigInt(slot)], { fuel: 10 * COUNTING_ROUNDS * 8 }).r0);
}
