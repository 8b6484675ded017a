/**
 * What both engines share: loading rules, the run contract and the stack layout.
 */
import { MAX_CALL_DEPTH, MAX_STACK_SIZE_BYTES, STACK_FRAME_SIZE_BYTES } from '../abi/limits.js';
import { ProgramLoadError } from '../errors.js';
import type { Program } from '../isa/instruction.js';
import { layoutProgram, type ProgramLayout } from '../isa/layout.js';
import type { HelperTable } from './helpers.js';
import {
  layoutSandbox,
  type RegionSpec,
  type SandboxLayout,
  SandboxMemory,
  type SandboxMemoryOptions,
  STACK_REGION_ID,
} from './memory.js';

export interface EngineOptions {
  readonly helpers: HelperTable;
  /** Sandbox whose region 1 is the stack (see `createSandbox`). */
  readonly memory: SandboxMemory;
  /** Frames allowed at once, the entry frame included. */
  readonly maxCallDepth?: number;
}

export interface RunOptions {
  /** Instruction budget of this run. */
  readonly fuel: number;
  /**
   * Zero the stack before the run (default true). Skipping it is for programs the verifier proved
   * never read stack bytes they did not write in the same run.
   */
  readonly clearStack?: boolean;
}

export interface RunResult {
  readonly r0: bigint;
  /** Instructions charged (whole basic blocks, see blocks.ts). */
  readonly fuelUsed: number;
}

export interface Engine {
  readonly kind: EngineKind;
  /** Run with r1-r5 set to `args` (missing ones are 0). Throws an `ExecutionError` on a fault. */
  run(args: readonly bigint[], options: RunOptions): RunResult;
}

export type EngineKind = 'interpreter' | 'jit';

/** The regions of a sandbox with the stack as region 1 followed by `regions` (ids 2, 3, ...). */
export function sandboxRegions(regions: readonly RegionSpec[]): RegionSpec[] {
  return [{ name: 'stack', sizeBytes: MAX_STACK_SIZE_BYTES, writable: true }, ...regions];
}

/** A sandbox with the stack as region 1 followed by `regions` (ids 2, 3, ...). */
export function createSandbox(regions: readonly RegionSpec[], options?: SandboxMemoryOptions): SandboxMemory {
  return new SandboxMemory(sandboxRegions(regions), options);
}

/** The layout `createSandbox(regions)` gets, without allocating it. */
export function layoutOfSandbox(regions: readonly RegionSpec[]): SandboxLayout {
  return layoutSandbox(sandboxRegions(regions));
}

export const STACK_TOP_OFFSET = MAX_STACK_SIZE_BYTES;
export { STACK_FRAME_SIZE_BYTES, STACK_REGION_ID };

/** Structural checks both engines need before they can run a program. */
export function prepareProgram(program: Program, options: EngineOptions): ProgramLayout {
  const layout = layoutProgram(program);
  const depth = options.maxCallDepth ?? MAX_CALL_DEPTH;
  if (
    !Number.isInteger(depth) ||
    depth < 1 ||
    depth * STACK_FRAME_SIZE_BYTES > options.memory.region(STACK_REGION_ID).sizeBytes
  ) {
    throw new ProgramLoadError(`maxCallDepth ${depth} does not fit the stack region`);
  }
  program.forEach((insn, i) => {
    const pc = layout.pcOf[i];
    if (insn.kind === 'call' && insn.target === 'helper' && !options.helpers.has(insn.imm)) {
      throw new ProgramLoadError(`instruction ${pc}: call to unknown helper ${insn.imm}`);
    }
    if (insn.kind === 'call' && insn.target === 'kfunc') {
      throw new ProgramLoadError(`instruction ${pc}: kernel function calls are not supported`);
    }
    if (insn.kind === 'lddw' && insn.source !== 0) {
      throw new ProgramLoadError(`instruction ${pc}: lddw with source ${insn.source} must be resolved by the loader first`);
    }
  });
  return layout;
}

export function checkFuel(fuel: number): void {
  if (!Number.isSafeInteger(fuel) || fuel < 0) throw new ProgramLoadError(`fuel must be a non-negative integer, got ${fuel}`);
}
