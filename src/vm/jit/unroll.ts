/**
 * Unrolling of small innermost loops behind a fuel guard, on the JIT's block graph.
 *
 * A tight loop pays two fixed costs per iteration that native code does not: the fuel test at its
 * header (the checkpoint, see blocks.ts) and V8's own interrupt check, which V8 puts in every Wasm
 * loop. Both can be paid once per UNROLL_FACTOR iterations without changing what a program
 * observes:
 *
 *   guard:  if fuel >= UNROLL_FACTOR * maxIterationCost  -> copy 1 of the body (fast)
 *              (and, in checked code, the hoisted ranges
 *              of bounds.ts lie in the sandbox)
 *           else                                          -> the body as it was (slow)
 *   copy j: the loop's blocks, charging fuel exactly as before but without the header's test;
 *           its back edges go to copy j + 1, the last copy's to the guard
 *   slow:   the original blocks, header test included; back edges go to the guard
 *
 * Every block is still charged its cost, so fuel used stays exact. The header's test is skipped only
 * where it provably passes: no path through one iteration costs more than `maxIterationCost`, so
 * after charging any block of iteration j <= UNROLL_FACTOR the fuel left is at least
 * `fuel at the guard - j * maxIterationCost >= 0`. Exits leave to the original (shared) blocks, which
 * charge and test as always. So both engines still fault at the same instruction with the same fuel.
 *
 * Only the guard is a Wasm loop: the copies are chained by forward edges, so V8's interrupt check and
 * the fuel test run once per UNROLL_FACTOR iterations on the fast path.
 */
import type { Instruction } from '../../isa/index.js';
import { type HoistedBoundsCheck, hoistBoundsChecks, type SandboxBounds } from './bounds.js';
import { analyzeControlFlow } from './cfg.js';

export const UNROLL_FACTOR = 4;
/** Largest loop (in slots) that is unrolled: code grows by UNROLL_FACTOR times its size. */
export const MAX_UNROLLED_LOOP_SLOTS = 64;
/** Blocks of one loop, and slots added per function, beyond which nothing more is unrolled. */
const MAX_UNROLLED_LOOP_BLOCKS = 24;
const MAX_ADDED_SLOTS_PER_FUNCTION = 2048;

export interface BlockNode {
  readonly startPc: number;
  readonly endPc: number;
  readonly successors: number[];
  /** Last instruction and its slot. */
  readonly last: Instruction;
  readonly lastPc: number;
  /**
   * A fuel guard: no instructions; goes to `successors[0]` when at least this much fuel is left,
   * else to `successors[1]`.
   */
  readonly fuelGuard?: number;
  /** A copy of a loop header on the fast path: charged, but its checkpoint test is known to pass. */
  readonly skipCheckpoint?: boolean;
  /** Fuel charged on entry instead of the block's own cost (fast-path copies: see `deferCharges`). */
  fuelCharge?: number;
  /** An edge of the fast path: no instructions; charges `fuelCharge` and goes to `successors[0]`. */
  readonly chargeOnly?: boolean;
  /** On a fuel guard of checked code: ranges it also checks before taking the fast path (bounds.ts). */
  boundsChecks?: readonly HoistedBoundsCheck[];
  /** On a fast-path copy: slots of the accesses its guard's `boundsChecks` cover (compiled unchecked). */
  coveredAccesses?: ReadonlySet<number>;
}

/** For checked code: the sandbox's span and the program's instructions, to hoist bounds checks (bounds.ts). */
export interface HoistingContext {
  readonly bounds: SandboxBounds;
  readonly instructionAt: (pc: number) => Instruction | undefined;
}

/**
 * `nodes` with each small innermost loop unrolled behind a fuel guard (see above). `costs` gives
 * each block's instruction count at its start slot. Node 0 stays the entry. Irreducible graphs,
 * loops headed by the entry, and loops with calls or exits are left as they are.
 */
export function unrollInnerLoops(nodes: readonly BlockNode[], costs: Int32Array, hoisting?: HoistingContext): BlockNode[] {
  const facts = analyzeControlFlow(nodes.map((n) => n.successors));
  if (!facts.reducible) return [...nodes];
  const out: BlockNode[] = nodes.map((n) => ({ ...n, successors: [...n.successors] }));
  let added = 0;
  for (const header of facts.order) {
    if (!facts.loopHeader[header] || header === 0) continue;
    const body = naturalLoop(nodes, facts.rpo, header);
    if (body === undefined) continue;
    // Reverse postorder: the header first, and (back edges cut) every block after its predecessors.
    body.sort((a, b) => facts.rpo[a] - facts.rpo[b]);
    const slots = body.reduce((s, n) => s + (nodes[n].endPc - nodes[n].startPc), 0);
    if (slots > MAX_UNROLLED_LOOP_SLOTS || body.length > MAX_UNROLLED_LOOP_BLOCKS) continue;
    if (added + slots * UNROLL_FACTOR > MAX_ADDED_SLOTS_PER_FUNCTION) continue;
    const inLoop = new Set(body);
    if (body.some((n) => n !== header && facts.loopHeader[n])) continue; // not innermost
    if (body.some((n) => hasCallOrExit(nodes[n]))) continue;
    added += slots * UNROLL_FACTOR;

    const maxIterationCost = longestPath(nodes, costs, body, header, inLoop, facts.rpo);
    const guard = out.length;
    // Every edge into the header now enters through the guard (entry edges and back edges alike).
    for (const n of out) {
      for (let i = 0; i < n.successors.length; i++) if (n.successors[i] === header) n.successors[i] = guard;
    }
    out.push({ ...nodes[header], successors: [], fuelGuard: UNROLL_FACTOR * maxIterationCost });
    const copies: Map<number, number>[] = [];
    for (let j = 0; j < UNROLL_FACTOR; j++) {
      const copy = new Map<number, number>();
      for (const n of body) copy.set(n, out.length + body.indexOf(n));
      for (const n of body) out.push({ ...nodes[n], successors: [], skipCheckpoint: n === header });
      copies.push(copy);
    }
    copies.forEach((copy, j) => {
      const next = j + 1 < UNROLL_FACTOR ? copies[j + 1].get(header) : guard;
      for (const n of body) {
        const target = out[copy.get(n) as number];
        for (const s of nodes[n].successors) {
          target.successors.push(s === header ? (next as number) : inLoop.has(s) ? (copy.get(s) as number) : s);
        }
      }
    });
    out[guard].successors.push(copies[0].get(header) as number, header);
    const region = copies.flatMap((copy) => body.map((n) => copy.get(n) as number));
    if (hoisting !== undefined) hoistInto(out, guard, region, hoisting);
    deferCharges(out, region, costs);
  }
  return out;
}

/** Bounds checks of the copies (`region`, in topological order) hoisted to their guard, where the analysis allows. */
function hoistInto(out: BlockNode[], guard: number, region: readonly number[], hoisting: HoistingContext): void {
  const indexIn = new Map(region.map((node, i) => [node, i]));
  const blocks = region.map((node) => ({
    startPc: out[node].startPc,
    endPc: out[node].endPc,
    next: out[node].successors.flatMap((s) => indexIn.get(s) ?? []),
  }));
  const { checks, covered } = hoistBoundsChecks(blocks, hoisting.instructionAt, hoisting.bounds);
  if (checks.length === 0) return;
  out[guard].boundsChecks = checks;
  region.forEach((node, i) => {
    if (covered[i].size > 0) out[node].coveredAccesses = covered[i];
  });
}

/**
 * Moves the fuel charges of the fast-path copies (`region`, in topological order) forward along
 * edges into blocks with a single predecessor, and onto the edges that leave the region, so a chain
 * of blocks pays one subtraction. Nothing inside the region observes fuel (no calls, no exits, no
 * tests: see above), and every edge out of it carries the charges of the path that reached it, so
 * fuel is exact again wherever it is tested or returned.
 */
function deferCharges(out: BlockNode[], region: readonly number[], costs: Int32Array): void {
  const inRegion = new Set(region);
  const inDegree = new Map<number, number>();
  for (const n of out) for (const s of n.successors) inDegree.set(s, (inDegree.get(s) ?? 0) + 1);
  const carried = new Map<number, number>();
  for (const n of region) {
    const node = out[n];
    const total = costs[node.startPc] + (carried.get(n) ?? 0);
    const absorbs = (s: number) => inRegion.has(s) && inDegree.get(s) === 1;
    // Deferring pays off unless an edge leads to a merge inside the region (it would need its own charge there).
    const defer = total > 0 && node.successors.every((s) => absorbs(s) || !inRegion.has(s));
    if (!defer) {
      node.fuelCharge = total;
      continue;
    }
    node.fuelCharge = 0;
    node.successors.forEach((s, i) => {
      if (absorbs(s)) {
        carried.set(s, total);
        return;
      }
      node.successors[i] = out.length;
      const { startPc, last } = out[s];
      out.push({ startPc, endPc: startPc, lastPc: startPc, last, successors: [s], fuelCharge: total, chargeOnly: true });
    });
  }
}

/** The header's natural loop (the header first), or undefined if some back edge does not close on it alone. */
function naturalLoop(nodes: readonly BlockNode[], rpo: Int32Array, header: number): number[] | undefined {
  const preds: number[][] = nodes.map(() => []);
  nodes.forEach((n, u) => {
    for (const v of n.successors) preds[v].push(u);
  });
  const body = [header];
  const seen = new Set(body);
  const work: number[] = [];
  for (const p of preds[header]) if (rpo[p] >= rpo[header] && rpo[p] >= 0) work.push(p);
  while (work.length > 0) {
    const u = work.pop() as number;
    if (seen.has(u)) continue;
    seen.add(u);
    body.push(u);
    for (const p of preds[u]) if (!seen.has(p) && rpo[p] >= 0) work.push(p);
  }
  return body.length > 0 ? body : undefined;
}

function hasCallOrExit(node: BlockNode): boolean {
  return node.last.kind === 'exit' || node.last.kind === 'call' || node.last.kind === 'callx';
}

/** The costliest path from the header through the loop's blocks, back edges cut (the body is acyclic then). */
function longestPath(
  nodes: readonly BlockNode[],
  costs: Int32Array,
  body: readonly number[],
  header: number,
  inLoop: ReadonlySet<number>,
  rpo: Int32Array,
): number {
  const order = [...body].sort((a, b) => rpo[a] - rpo[b]);
  const best = new Map<number, number>([[header, costs[nodes[header].startPc]]]);
  let max = 0;
  for (const n of order) {
    const here = best.get(n);
    if (here === undefined) continue;
    max = Math.max(max, here);
    for (const s of nodes[n].successors) {
      if (s === header || !inLoop.has(s)) continue;
      const via = here + costs[nodes[s].startPc];
      if (via > (best.get(s) ?? -1)) best.set(s, via);
    }
  }
  return max;
}
