/**
 * Helper calls (checked against their prototypes), local calls (a new frame per call) and exits.
 */
import type { HelperArgKind } from '../abi/helpers.js';
import { MAX_CALL_DEPTH } from '../abi/limits.js';
import type { Register } from '../isa/index.js';
import { type Analysis, clobberCallerSaved, currentFrame, readReg, reject } from './analysis.js';
import { SCALAR_UNKNOWN, scalarConstValue, scalarToString } from './domains/scalar.js';
import { checkHelperMemory } from './memory.js';
import { isPointer, newFrame, type RegValue, scalarValue, typeName, UNINIT, type VerifierState, ZERO_OFFSET } from './state.js';

/** Largest size a helper memory argument may have (keeps offsets far from overflow). */
const MAX_HELPER_MEMORY_BYTES = 1 << 29;

export function checkHelperCall(a: Analysis, s: VerifierState, helperId: number): void {
  const proto = a.type.helpers.get(helperId);
  if (!proto) reject(`invalid func unknown#${helperId}`);
  let map: number | undefined;
  let formatArgs: number | undefined; // conversions of a known format string
  for (let i = 0; i < proto.args.length; i++) {
    const kind = proto.args[i];
    const regno = (i + 1) as Register;
    if (kind === 'format-arg') {
      const index = proto.args.slice(0, i).filter((k) => k === 'format-arg').length;
      if (formatArgs !== undefined && index >= formatArgs) continue; // never read
    }
    const v = readReg(s, regno);
    const expect = (ok: boolean, expected: string) => {
      if (!ok) reject(`R${regno} type=${typeName(v)} expected=${expected}`);
    };
    switch (kind) {
      case 'format-arg':
      case 'scalar':
        if (isPointer(v)) reject(`R${regno} leaks addr into helper function ${proto.name}`);
        continue;
      case 'ctx':
        expect(v.kind === 'ctx' && v.off === 0, 'ctx');
        continue;
      case 'map':
        expect(v.kind === 'map', 'map_ptr');
        if (v.kind === 'map') map = v.map;
        continue;
      case 'map-key':
      case 'map-value': {
        if (map === undefined) throw new Error(`helper ${proto.name}: ${kind} argument without a preceding map argument`);
        const def = a.maps[map];
        const size = kind === 'map-key' ? def.keySizeBytes : def.valueSizeBytes;
        checkHelperMemory(a, s, regno, v, size, size, 'read');
        continue;
      }
      case 'readable-mem':
      case 'writable-mem': {
        const sizeKind: HelperArgKind | undefined = proto.args[i + 1];
        if (sizeKind !== 'mem-size' && sizeKind !== 'mem-size-or-zero') {
          throw new Error(`helper ${proto.name}: memory argument ${i + 1} is not followed by its size`);
        }
        const sizeReg = (i + 2) as Register;
        const size = readReg(s, sizeReg);
        if (size.kind !== 'scalar') reject(`R${sizeReg} type=${typeName(size)} expected=scalar`);
        a.markPrecise(s, [sizeReg]); // the size decides which bytes the helper may touch
        if (size.value.smin < 0n) reject(`R${sizeReg} min value is negative, either use unsigned or 'var &= const'`);
        if (size.value.umax >= BigInt(MAX_HELPER_MEMORY_BYTES))
          reject(`R${sizeReg} unbounded memory access, use 'var &= const' or 'if (var < const)'`);
        if (size.value.umin === 0n && sizeKind === 'mem-size')
          reject(`R${sizeReg} invalid zero-sized read: ${scalarToString(size.value)}`);
        const access = kind === 'readable-mem' ? 'read' : 'write';
        checkHelperMemory(a, s, regno, v, Number(size.value.umin), Number(size.value.umax), access);
        if (i === 0 && proto.args.includes('format-arg')) formatArgs = knownConversions(v, Number(size.value.umax));
        continue;
      }
      case 'mem-size':
      case 'mem-size-or-zero':
        continue; // checked with the memory argument before it
    }
  }
  clobberCallerSaved(s);
  const regs = currentFrame(s).regs;
  switch (proto.returns) {
    case 'scalar':
      regs[0] = scalarValue(SCALAR_UNKNOWN);
      break;
    case 'void':
      regs[0] = UNINIT;
      break;
    case 'map-value-or-null':
      if (map === undefined) throw new Error(`helper ${proto.name} returns a map value but takes no map`);
      regs[0] = { kind: 'mem', region: a.mapValueRegions[map], off: 0, varOff: ZERO_OFFSET, nullable: true, id: a.newId() };
      break;
  }
}

/**
 * Conversions (`%d`, `%llu`, `%s`, ...; not `%%`) of a format string at `ptr`, `size` bytes at most,
 * when its bytes are known (read-only global data at a constant offset); undefined otherwise.
 */
function knownConversions(ptr: RegValue, size: number): number | undefined {
  if (ptr.kind !== 'mem' || !ptr.region.contents || scalarConstValue(ptr.varOff) !== 0n) return undefined;
  const bytes = ptr.region.contents.subarray(ptr.off, ptr.off + size);
  let text = '';
  for (const b of bytes) {
    if (b === 0) break;
    text += String.fromCharCode(b);
  }
  return (text.replace(/%%/g, '').match(/%/g) ?? []).length;
}

/** `call %rN`: the register must hold a known helper id. */
export function checkCallx(a: Analysis, s: VerifierState, reg: Register): void {
  const v = readReg(s, reg);
  if (v.kind === 'scalar') a.markPrecise(s, [reg]); // the value picks the helper
  const id = v.kind === 'scalar' ? scalarConstValue(v.value) : undefined;
  if (id === undefined || id > 0x7fffffffn) {
    const got = v.kind === 'scalar' ? scalarToString(v.value) : typeName(v);
    reject(`R${reg} call target must be a known helper id, got ${got}`);
  }
  checkHelperCall(a, s, Number(id));
}

/**
 * The root frame of a function summary's exploration (verifier.ts, `summarize`) has this call site
 * minus the number of frames above it in the call chain it stands for: frames of different depths
 * (and every summary frame from every ordinary one) never compare equal or cover each other.
 */
export const SUMMARY_ROOT_CALLSITE = -2;

/** Frames in the call chain `s` stands for (a summary's exploration omits the callers above its root). */
export function callDepth(s: VerifierState): number {
  const root = s.frames[0].callsite;
  return s.frames.length + (root <= SUMMARY_ROOT_CALLSITE ? SUMMARY_ROOT_CALLSITE - root : 0);
}

/** A local call from `pc` to the function at `target`: arguments r1-r5 pass to a new frame. */
export function enterFunction(a: Analysis, s: VerifierState, pc: number, target: number): void {
  if (s.frames.some((f) => f.entryPc === target)) reject(`recursive call from insn ${pc} to ${target}`);
  const depth = callDepth(s);
  if (depth >= MAX_CALL_DEPTH) reject(`the call stack of ${depth + 1} frames is too deep`);
  const caller = currentFrame(s);
  const callee = newFrame(s.frames.length, pc, target);
  for (let r = 1; r <= 5; r++) callee.regs[r] = caller.regs[r];
  a.recordCall(caller.entryPc, target);
  s.frames.push(callee);
}

/**
 * `exit`. From a local function: r0 goes back to the caller, never pointing into the frame that is
 * going away; returns the pc to continue at. From the entry function: r0 must be a number allowed
 * by the program type; returns undefined (the path is complete).
 */
export function checkExit(a: Analysis, s: VerifierState): number | undefined {
  const r0 = readReg(s, 0);
  if (s.frames.length > 1) {
    const callee = s.frames.pop() as NonNullable<(typeof s.frames)[number]>;
    if (r0.kind === 'stack' && r0.frame === s.frames.length) reject('cannot return stack pointer to the caller');
    clobberCallerSaved(s);
    currentFrame(s).regs[0] = r0;
    return callee.callsite + 1;
  }
  if (r0.kind !== 'scalar') return reject('R0 leaks addr as return value');
  const rule = a.type.returns;
  if (rule.kind === 'range') a.markPrecise(s, [0]); // the value must lie in the type's range
  if (rule.kind === 'range' && (r0.value.umin < rule.min || r0.value.umax > rule.max)) {
    reject(`At program exit the register R0 has ${scalarToString(r0.value)} should have been in [${rule.min}, ${rule.max}]`);
  }
  return undefined;
}
