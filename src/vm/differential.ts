/**
 * Differential testing: run one program on the reference interpreter and on the JIT, each in its
 * own sandbox with identical initial contents, and compare everything observable.
 *
 * "Agree" means: on success the same r0, fuel used, data region and stack; on failure the same
 * error class, pc and message (which carries the address and size of a memory fault), and the same
 * memory left behind (a storage server sees partial writes, so they must match too). A raw
 * JavaScript exception or Wasm trap escaping either engine is never agreement.
 */
import { ExecutionError, NearbpfError } from '../errors.js';
import type { Program } from '../isa/index.js';
import { createSandbox, type Engine, type EngineKind, layoutOfSandbox, STACK_REGION_ID } from './engine.js';
import { type Helper, type HelperTable, helperTable, ProgramStop } from './helpers.js';
import { Interpreter } from './interpreter.js';
import { JitEngine, type MemoryMode } from './jit/engine.js';
import type { RegionSpec } from './memory.js';

/** Region ids inside the differential sandbox (the stack is region 1). */
export const DIFFERENTIAL_DATA_REGION_ID = 2;
export const DIFFERENTIAL_READ_ONLY_REGION_ID = 3;

/** The regions after the stack: a writable data region, then a read-only one. */
function differentialRegions(dataBytes: number, readOnlyBytes: number): RegionSpec[] {
  return [
    { name: 'data', sizeBytes: dataBytes, writable: true },
    { name: 'rodata', sizeBytes: readOnlyBytes, writable: false },
  ];
}

/** Addresses of the data and read-only regions in a differential sandbox of these sizes. */
export function differentialAddresses(dataBytes: number, readOnlyBytes: number): { data: number; readOnly: number } {
  const { bases } = layoutOfSandbox(differentialRegions(dataBytes, readOnlyBytes));
  return { data: bases[DIFFERENTIAL_DATA_REGION_ID - 1], readOnly: bases[DIFFERENTIAL_READ_ONLY_REGION_ID - 1] };
}

export interface DifferentialOptions {
  /** Initial contents of the writable data region (region 2). */
  readonly memory: Uint8Array;
  /** Contents of a read-only region (region 3); empty if absent. */
  readonly readOnlyMemory?: Uint8Array;
  readonly fuel: number;
  readonly helpers: readonly Helper[] | HelperTable;
  /** r1-r5; by default r1 = data region, r2 = its length, r3 = read-only region. */
  readonly args?: readonly bigint[];
  readonly maxCallDepth?: number;
  /** How the JIT compiles memory accesses (default `checked`, the interpreter's rule). */
  readonly jitMemoryMode?: MemoryMode;
  /**
   * Also run the JIT in `verified` mode (no bounds checks) when the interpreter's runs made no
   * memory fault: every access was then in bounds, so the unchecked code must agree exactly.
   */
  readonly alsoVerified?: boolean;
  /**
   * Runs of the same engine instance over the same sandbox (default 1). Later runs start from the
   * memory the earlier ones left, and show any state an engine leaks from one run to the next.
   */
  readonly runs?: number;
}

export type Outcome =
  | {
      readonly kind: 'ok';
      readonly r0: bigint;
      readonly fuelUsed: number;
      /** Whether a helper ended the run with `ProgramStop`. */
      readonly stopped: boolean;
      readonly memory: Uint8Array;
      readonly stack: Uint8Array;
    }
  | {
      readonly kind: 'error';
      /** The error's `code`; `UNTYPED` for anything that is not a `NearbpfError` (always a bug). */
      readonly code: string;
      /** Slot of the faulting instruction; -1 when the error has none (e.g. a load error). */
      readonly pc: number;
      readonly detail: string;
      /** Set for memory faults: 'read' or 'write'. */
      readonly access?: string;
      readonly memory: Uint8Array;
      readonly stack: Uint8Array;
    };

export interface Comparison {
  readonly agree: boolean;
  readonly interpreter: Outcome;
  readonly jit: Outcome;
  /** First difference, in words; absent when the engines agree. */
  readonly diff?: string;
  /** Per function, whether the JIT structured it (false: dispatch loop). Absent if it failed to load. */
  readonly structured?: readonly boolean[];
  /** Loads and stores the checked JIT compiled under a hoisted bounds check (jit/bounds.ts). Absent if it failed to load. */
  readonly hoistedAccesses?: number;
  /** Whether the verified-mode JIT ran too (see `DifferentialOptions.alsoVerified`). */
  readonly verifiedCompared?: boolean;
}

/** Run `program` on both engines; the outcomes reported are those of the first run that differs, else the last. */
export function compareEngines(program: Program, options: DifferentialOptions): Comparison {
  const interpreter = runOn('interpreter', program, options);
  const jit = runOn('jit', program, options);
  const structured =
    jit.structured === undefined ? {} : { structured: jit.structured, hoistedAccesses: jit.hoistedAccesses ?? 0 };
  const first = firstDifference(interpreter.outcomes, jit.outcomes);
  if (first !== undefined) return { agree: false, ...first, ...structured };
  const last = { interpreter: interpreter.outcomes.at(-1) as Outcome, jit: jit.outcomes.at(-1) as Outcome };
  const faulted = interpreter.outcomes.some((o) => o.kind === 'error' && o.code === 'ERR_MEMORY_ACCESS');
  if (options.alsoVerified !== true || faulted) return { agree: true, ...last, ...structured };
  const verified = runOn('jit', program, { ...options, jitMemoryMode: 'verified' });
  const v = firstDifference(interpreter.outcomes, verified.outcomes);
  if (v !== undefined) return { agree: false, ...v, diff: `verified mode: ${v.diff}`, ...structured, verifiedCompared: true };
  return { agree: true, ...last, ...structured, verifiedCompared: true };
}

/** The first run whose outcomes differ (a load error ends a list early: compare it with whatever the other did). */
function firstDifference(
  a: readonly Outcome[],
  b: readonly Outcome[],
): { interpreter: Outcome; jit: Outcome; diff: string } | undefined {
  const runs = Math.max(a.length, b.length);
  for (let i = 0; i < runs; i++) {
    const x = a[Math.min(i, a.length - 1)];
    const y = b[Math.min(i, b.length - 1)];
    const diff = describeDifference(x, y);
    if (diff !== undefined) return { interpreter: x, jit: y, diff: runs > 1 ? `run ${i + 1}: ${diff}` : diff };
  }
  return undefined;
}

function runOn(
  kind: EngineKind,
  program: Program,
  options: DifferentialOptions,
): { outcomes: Outcome[]; structured?: readonly boolean[]; hoistedAccesses?: number } {
  const readOnly = options.readOnlyMemory ?? new Uint8Array(0);
  const memory = createSandbox(differentialRegions(options.memory.length, readOnly.length));
  memory.bytes(DIFFERENTIAL_DATA_REGION_ID).set(options.memory);
  memory.bytes(DIFFERENTIAL_READ_ONLY_REGION_ID).set(readOnly);
  // Wrap each helper to notice a ProgramStop, which the engines turn into a normal return.
  let stopped = false;
  const helpers = [...(options.helpers instanceof Map ? options.helpers.values() : (options.helpers as readonly Helper[]))].map(
    (h): Helper => ({
      ...h,
      fn: (args) => {
        try {
          return h.fn(args);
        } catch (e) {
          if (e instanceof ProgramStop) stopped = true;
          throw e;
        }
      },
    }),
  );
  const args = options.args ?? [
    BigInt(memory.address(DIFFERENTIAL_DATA_REGION_ID)),
    BigInt(options.memory.length),
    BigInt(memory.address(DIFFERENTIAL_READ_ONLY_REGION_ID)),
  ];
  const snapshot = () => ({
    memory: memory.bytes(DIFFERENTIAL_DATA_REGION_ID).slice(),
    stack: memory.bytes(STACK_REGION_ID).slice(),
  });
  let engine: Engine;
  let structured: readonly boolean[] | undefined;
  let hoistedAccesses: number | undefined;
  const engineOptions = {
    helpers: helperTable(helpers),
    memory,
    ...(options.maxCallDepth === undefined ? {} : { maxCallDepth: options.maxCallDepth }),
  };
  try {
    if (kind === 'jit') {
      const jit = new JitEngine(program, { ...engineOptions, memoryMode: options.jitMemoryMode ?? 'checked' });
      structured = jit.compiled.structured;
      hoistedAccesses = jit.compiled.hoistedAccesses;
      engine = jit;
    } else engine = new Interpreter(program, engineOptions);
  } catch (e) {
    return { outcomes: [errorOutcome(e, snapshot())] };
  }
  const outcomes: Outcome[] = [];
  for (let i = 0; i < (options.runs ?? 1); i++) {
    stopped = false;
    try {
      const { r0, fuelUsed } = engine.run(args, { fuel: options.fuel });
      outcomes.push({ kind: 'ok', r0, fuelUsed, stopped, ...snapshot() });
    } catch (e) {
      outcomes.push(errorOutcome(e, snapshot()));
    }
  }
  return { outcomes, structured, hoistedAccesses };
}

function errorOutcome(e: unknown, state: { memory: Uint8Array; stack: Uint8Array }): Outcome {
  const typed = e instanceof NearbpfError;
  const access = typed && 'access' in e ? String(e.access) : undefined;
  return {
    kind: 'error',
    code: typed ? e.code : 'UNTYPED',
    pc: e instanceof ExecutionError ? e.pc : -1,
    detail: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
    ...(access === undefined ? {} : { access }),
    ...state,
  };
}

/** Histogram key of an outcome: `ok`, `stop`, or the error code (with the access for memory faults). */
export function outcomeKey(outcome: Outcome): string {
  if (outcome.kind === 'ok') return outcome.stopped ? 'stop' : 'ok';
  return outcome.access === undefined ? outcome.code : `${outcome.code}(${outcome.access})`;
}

function firstDifferentByte(a: Uint8Array, b: Uint8Array): string | undefined {
  if (a.length !== b.length) return `lengths ${a.length} and ${b.length}`;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return `offset ${i}: 0x${a[i].toString(16)} vs 0x${b[i].toString(16)}`;
  }
  return undefined;
}

/** The first observable difference between the interpreter's outcome `a` and the JIT's `b`. */
export function describeDifference(a: Outcome, b: Outcome): string | undefined {
  if (a.kind === 'error' && a.code === 'UNTYPED') return `interpreter raised an untyped error: ${a.detail}`;
  if (b.kind === 'error' && b.code === 'UNTYPED') return `jit raised an untyped error: ${b.detail}`;
  if (a.kind !== b.kind) return `interpreter ${describeOutcome(a)}, jit ${describeOutcome(b)}`;
  if (a.kind === 'ok' && b.kind === 'ok') {
    if (a.stopped !== b.stopped) return `stopped: interpreter ${a.stopped}, jit ${b.stopped}`;
    if (a.r0 !== b.r0) return `r0: interpreter 0x${a.r0.toString(16)}, jit 0x${b.r0.toString(16)}`;
    if (a.fuelUsed !== b.fuelUsed) return `fuelUsed: interpreter ${a.fuelUsed}, jit ${b.fuelUsed}`;
  } else if (a.kind === 'error' && b.kind === 'error') {
    if (a.code !== b.code || a.pc !== b.pc || a.detail !== b.detail) {
      return `interpreter ${describeOutcome(a)}, jit ${describeOutcome(b)}`;
    }
  }
  const memory = firstDifferentByte(a.memory, b.memory);
  if (memory !== undefined) return `data region differs at ${memory}`;
  const stack = firstDifferentByte(a.stack, b.stack);
  if (stack !== undefined) return `stack differs at ${stack}`;
  return undefined;
}

export function describeOutcome(o: Outcome): string {
  if (o.kind === 'ok')
    return `returned r0 = 0x${o.r0.toString(16)} using ${o.fuelUsed} fuel${o.stopped ? ' (stopped by a helper)' : ''}`;
  return `failed at pc ${o.pc} with ${o.detail}`;
}
