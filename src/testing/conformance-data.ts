/**
 * Reader for the bpf_conformance suite's `.data` files: sections `-- asm`, `-- raw`, `-- mem`,
 * `-- result` and `-- error`, with `#` comments. The suite is vendored under testdata/.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DecodeError } from '../errors.js';
import { assemble, decodeProgram, type Instruction } from '../isa/index.js';
import { parseHexBytes } from '../vm/conformance.js';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CONFORMANCE_DIR = join(REPO_ROOT, 'testdata', 'bpf_conformance');

export interface ConformanceCase {
  readonly name: string;
  readonly asm?: string;
  /** Program bytes from a `-- raw` section. */
  readonly raw?: Uint8Array;
  readonly memory: Uint8Array;
  readonly result?: bigint;
  readonly error?: string;
}

export function parseConformanceFile(name: string, text: string): ConformanceCase {
  const sections = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split(/\r?\n/)) {
    const header = /^--\s*(\w+)/.exec(line);
    if (header) {
      current = [];
      sections.set(header[1], current);
    } else if (current) current.push(line);
  }
  const body = (key: string) => sections.get(key)?.join('\n');
  const uncommented = (key: string) => body(key)?.replace(/#.*$/gm, '').trim();
  const rawText = uncommented('raw');
  const resultText = uncommented('result');
  return {
    name,
    asm: body('asm'),
    raw: rawText === undefined ? undefined : rawBytes(rawText),
    memory: parseHexBytes(uncommented('mem') ?? ''),
    result: resultText ? BigInt(resultText) : undefined,
    error: uncommented('error'),
  };
}

/** `-- raw` holds either 64-bit words (`0x...`) or 8 space-separated bytes per line. */
function rawBytes(text: string): Uint8Array {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.every((l) => /^0x[0-9a-f]{16}$/i.test(l.trim()))) {
    const bytes = new Uint8Array(lines.length * 8);
    const view = new DataView(bytes.buffer);
    lines.forEach((l, i) => {
      view.setBigUint64(i * 8, BigInt(l.trim()), true);
    });
    return bytes;
  }
  return parseHexBytes(lines.join(' '));
}

/** The program of a case: assembled from `-- asm` or decoded from `-- raw`. Throws if neither loads. */
export function loadCaseProgram(c: ConformanceCase): Instruction[] {
  if (c.asm !== undefined) return assemble(c.asm);
  if (c.raw !== undefined) return decodeProgram(c.raw);
  throw new DecodeError(0, `${c.name} has no asm or raw section`);
}

export function readConformanceCases(subdir = ''): ConformanceCase[] {
  const dir = join(CONFORMANCE_DIR, subdir);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.data'))
    .sort()
    .map((f) => parseConformanceFile(f, readFileSync(join(dir, f), 'utf8')));
}
