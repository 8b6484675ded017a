/** Shared by the loader tests: the committed example objects and small ELF editing helpers. */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** examples/ of the repository (tests run from dist/loader/). */
export const EXAMPLES_DIR = fileURLToPath(new URL('../../examples/', import.meta.url));
export const EXAMPLES_BUILD_DIR = `${EXAMPLES_DIR}build/`;

export function exampleObject(name: string, dir = EXAMPLES_BUILD_DIR): Uint8Array {
  return new Uint8Array(readFileSync(`${dir}${name}`));
}

export function exampleObjectNames(dir = EXAMPLES_BUILD_DIR): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.o'))
    .sort();
}

/** Parsed examples/expected.json. */
export interface ExpectedCase {
  readonly object: string;
  readonly program: string;
  readonly memory: { hex?: string; text?: string; iota?: number; start?: number; u64?: string[] };
  readonly r0: string;
  readonly log?: string[];
  readonly maps?: Record<string, Record<string, string>>;
}

export function expectedCases(): ExpectedCase[] {
  return JSON.parse(readFileSync(`${EXAMPLES_DIR}expected.json`, 'utf8')).cases;
}

export function caseMemory(m: ExpectedCase['memory']): Uint8Array {
  if (m.hex !== undefined) return Uint8Array.from(Buffer.from(m.hex.replace(/\s+/g, ''), 'hex'));
  if (m.text !== undefined) return new TextEncoder().encode(m.text);
  if (m.iota !== undefined) return Uint8Array.from({ length: m.iota }, (_, i) => ((m.start ?? 0) + i) & 0xff);
  if (m.u64 !== undefined) return new Uint8Array(BigUint64Array.from(m.u64.map((v) => BigInt(v))).buffer);
  throw new Error(`unknown memory form ${JSON.stringify(m)}`);
}

/** Section header field offsets inside an ELF64 section header. */
export const SH = { name: 0, type: 4, flags: 8, offset: 24, size: 32, link: 40, info: 44, entsize: 56 } as const;

export function sectionHeaderAt(bytes: Uint8Array, index: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Number(view.getBigUint64(40, true)) + index * 64;
}

/** Deterministic PRNG (mulberry32), so fuzz failures reproduce from the seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
