/**
 * The benchmark's C kernels are programs like any other: every committed object must load and
 * give, on every engine (the interpreter, the JIT checked and verified), what a plain TypeScript
 * reference of the same algorithm gives on a small buffer; the native build of the same source
 * must agree too; and the committed objects must be what the sources build to (clang and cc present; NEARBPF_REQUIRE_TOOLCHAIN=1, as in CI, turns a
 * missing compiler into a failure instead of a skip). No timings here.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  BENCH_PAYLOAD_BYTES,
  type BenchEngine,
  buildNativeKernel,
  findCCompiler,
  HEADER_BYTES,
  KERNELS,
  KERNELS_BUILD_DIR,
  KERNELS_DIR,
  type Kernel,
  kernelBuffer,
  kernelObjectPath,
  makePayload,
  openKernel,
  readKernelObject,
  runNativeKernel,
  writeBufferFile,
} from './kernels.js';

const ENGINES: BenchEngine[] = ['interpreter', 'jit', 'jit-verified'];
const M64 = (1n << 64n) - 1n;
const BAD_INPUT = M64;
const u64 = (x: bigint) => x & M64;

/** Reference of each kernel in plain TypeScript: (payload, rounds, seed) -> r0. */
type Reference = (payload: Uint8Array, rounds: number, seed: number) => bigint;

const view = (p: Uint8Array) => new DataView(p.buffer, p.byteOffset, p.byteLength);

const mix64 = (a: bigint, b: bigint) => {
  const x = u64((a ^ b) * 0xff51afd7ed558ccdn);
  return x ^ (x >> 33n);
};

const fold32 = (x: bigint) => {
  let y = (x & 0xffffffffn) + (x >> 32n);
  y = (y & 0xffffffffn) + (y >> 32n);
  return y === 0xffffffffn ? 0n : y;
};

const REFERENCES: Record<string, Reference> = {
  alu_mix(p, rounds, seed) {
    const v = view(p);
    let acc = BigInt(seed);
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < Math.floor(p.length / 8); i++) {
        let x = u64((v.getBigUint64(i * 8, true) ^ acc) * 0x9e3779b97f4a7c15n);
        x ^= x >> 29n;
        let lo = Number(x & 0xffffffffn);
        let hi = Number(x >> 32n);
        lo = (Math.imul(lo, 2654435761) + hi) >>> 0;
        hi = (((hi << 7) | (hi >>> 25)) ^ lo) >>> 0;
        acc = u64(((BigInt(hi) << 32n) | BigInt(lo)) + u64((acc << 3n) | (acc >> 61n)) - BigInt(i));
      }
    }
    return acc;
  },
  byte_scan(p, rounds) {
    let lines = 0n;
    let longest = 0n;
    let current = 0n;
    let high = 0n;
    for (let r = 0; r < rounds; r++) {
      for (const c of p) {
        if (c === 0x0a) {
          lines++;
          if (current > longest) longest = current;
          current = 0n;
        } else current++;
        high += BigInt(c >> 7);
      }
    }
    return u64((lines << 40n) ^ (longest << 20n) ^ high);
  },
  fnv1a(p, rounds, seed) {
    let total = BigInt(seed);
    for (let r = 0; r < rounds; r++) {
      let hash = 0xcbf29ce484222325n ^ total;
      for (const c of p) hash = u64((hash ^ BigInt(c)) * 0x100000001b3n);
      total = hash;
    }
    return total;
  },
  local_calls(p, rounds, seed) {
    const v = view(p);
    let acc = BigInt(seed);
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < Math.floor(p.length / 4); i++) {
        const w = v.getUint32(i * 4, true);
        const clamped = Math.min(Math.max(w, 0x1000), 0xfffff000);
        acc = mix64(acc, BigInt(clamped) + BigInt(i));
      }
    }
    return acc;
  },
  binary_search(p, rounds, seed) {
    const v = view(p);
    const count = Math.floor(p.length / 4);
    let state = BigInt(seed);
    let total = 0n;
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < 1024; k++) {
        state = u64(state * 6364136223846793005n + 1442695040888963407n);
        const want = Number(state >> 32n);
        let lo = 0;
        let hi = count;
        while (lo < hi) {
          const mid = lo + Math.floor((hi - lo) / 2);
          if (v.getUint32(mid * 4, true) < want) lo = mid + 1;
          else hi = mid;
        }
        total += BigInt(lo);
      }
    }
    return total;
  },
  struct_walk(p, rounds, seed) {
    const v = view(p);
    const count = Math.floor(p.length / 16);
    let index = 0;
    let acc = BigInt(seed);
    for (let r = 0; r < rounds; r++) {
      for (let s = 0; s < Math.min(4096, count); s++) {
        if (index >= count) return BAD_INPUT;
        const at = index * 16;
        const value = BigInt(v.getUint32(at + 4, true));
        const kind = v.getUint16(at + 8, true) & 3;
        const weight = v.getUint16(at + 10, true);
        if (kind === 0) acc = u64(acc + value);
        else if (kind === 1) acc ^= u64(value << BigInt(weight & 31));
        else if (kind === 2) acc = u64(acc * 31n + BigInt(weight));
        else acc = u64(acc - (value >> 3n));
        acc = u64(acc + BigInt(v.getUint32(at + 12, true) & 1));
        index = v.getUint32(at, true);
      }
    }
    return acc;
  },
  checksum(p, rounds, seed) {
    const v = view(p);
    let a = BigInt(seed);
    let b = 0n;
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < Math.floor(p.length / 4); i++) {
        a = u64(a + BigInt(v.getUint32(i * 4, true)));
        b = u64(b + a);
      }
      a = fold32(a);
      b = fold32(b);
    }
    return u64((b << 32n) | a);
  },
  csv_parse(p, rounds) {
    const sums = [0n, 0n, 0n, 0n];
    let records = 0n;
    let junk = 0n;
    for (let r = 0; r < rounds; r++) {
      let value = 0n;
      let column = 0;
      let inField = false;
      for (const c of p) {
        if (c >= 0x30 && c <= 0x39) {
          value = u64(value * 10n + BigInt(c - 0x30));
          inField = true;
        } else if (c !== 0x2c && c !== 0x0a) {
          junk++;
        } else {
          if (inField) sums[Math.min(column, 3)] = u64(sums[Math.min(column, 3)] + value);
          value = 0n;
          inField = false;
          column++;
          if (c === 0x0a) {
            records++;
            column = 0;
          }
        }
      }
    }
    return u64(sums[0] ^ (sums[1] << 8n) ^ (sums[2] << 16n) ^ (sums[3] << 24n) ^ (records << 48n) ^ (junk << 32n));
  },
  histogram(p, rounds, seed) {
    let acc = BigInt(seed);
    for (let r = 0; r < rounds; r++) {
      const counts = new Array<number>(64).fill(0);
      for (const c of p) counts[c >> 2]++;
      for (const n of counts) acc = u64(acc * 31n + BigInt(n));
    }
    return acc;
  },
};

/** Small buffers: an odd payload length (trailing bytes no word covers) and a few rounds. */
const SMALL_PAYLOAD_BYTES = 1030;
const SMALL_ROUNDS = 3;

function smallCase(kernel: Kernel): { buffer: Uint8Array; expected: bigint } {
  const payload = makePayload(kernel.payload, SMALL_PAYLOAD_BYTES);
  const reference = REFERENCES[kernel.name];
  assert.ok(reference, `no reference for ${kernel.name}`);
  return {
    buffer: kernelBuffer(kernel, payload, SMALL_ROUNDS),
    expected: reference(payload, SMALL_ROUNDS, kernel.seed),
  };
}

/** The results of every kernel on its small case, on `engine`, from objects in `dir`, as "name=value". */
function engineResults(engine: BenchEngine, dir = KERNELS_BUILD_DIR): string[] {
  return KERNELS.map((k) => {
    const { buffer } = smallCase(k);
    return `${k.name}=${openKernel(readKernelObject(k, dir), buffer.length).run(buffer, engine).r0}`;
  });
}

const expectedResults = () => KERNELS.map((k) => `${k.name}=${smallCase(k).expected}`);

/** Skip when `tool` is missing, unless the environment demands the toolchain (CI). */
function requireTool(t: TestContext, present: boolean, tool: string): boolean {
  if (present) return true;
  assert.ok(process.env.NEARBPF_REQUIRE_TOOLCHAIN !== '1', `${tool} is required (NEARBPF_REQUIRE_TOOLCHAIN=1) but missing`);
  t.skip(`${tool} is not installed`);
  return false;
}

describe('bench kernels', () => {
  it('has a kernel entry, a reference and a committed object for every kernel source', () => {
    const sources = readdirSync(KERNELS_DIR)
      .filter((f) => f.endsWith('.c') && f !== 'harness.c')
      .map((f) => f.slice(0, -2))
      .sort();
    assert.deepEqual(KERNELS.map((k) => k.name).sort(), sources);
    assert.deepEqual(Object.keys(REFERENCES).sort(), sources);
    const objects = readdirSync(KERNELS_BUILD_DIR)
      .filter((f) => f.endsWith('.o'))
      .map((f) => f.slice(0, -2))
      .sort();
    assert.deepEqual(objects, sources);
  });

  for (const engine of ENGINES) {
    it(`committed objects give the reference results on the ${engine}`, () => {
      assert.deepEqual(engineResults(engine), expectedResults());
    });
  }

  it('refuses short buffers, oversized payloads and too many rounds with ~0 on every engine', () => {
    for (const k of KERNELS) {
      const oversized = kernelBuffer(k, makePayload(k.payload, BENCH_PAYLOAD_BYTES + 1), 1);
      const kernel = openKernel(readKernelObject(k), oversized.length);
      const tooManyRounds = kernelBuffer(k, makePayload(k.payload, 64), 100_001);
      for (const engine of ENGINES) {
        for (const [what, buffer] of [
          ['empty', new Uint8Array(0)],
          ['header cut short', new Uint8Array(HEADER_BYTES - 1)],
          ['payload over 64 KiB', oversized],
          ['rounds over the limit', tooManyRounds],
        ] as const) {
          assert.equal(kernel.run(buffer, engine).r0, BAD_INPUT, `${k.name} on ${engine}: ${what}`);
        }
        // A header alone is a valid, empty payload.
        assert.notEqual(kernel.run(kernelBuffer(k, new Uint8Array(0), 2), engine).r0, BAD_INPUT, `${k.name}: empty payload`);
      }
    }
  });

  it('the native build of each kernel (cc -O2) agrees with the reference', (t) => {
    const cc = findCCompiler();
    if (!requireTool(t, cc !== undefined, 'a C compiler (cc)') || cc === undefined) return;
    const dir = mkdtempSync(join(tmpdir(), 'nearbpf-kernels-native-'));
    try {
      const got = KERNELS.map((k) => {
        const { buffer } = smallCase(k);
        const file = writeBufferFile(join(dir, `${k.name}.bin`), buffer);
        return `${k.name}=${runNativeKernel(buildNativeKernel(cc, k, dir), file, 2).r0}`;
      });
      assert.deepEqual(got, expectedResults());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the committed objects are what the sources build to (rebuilt with clang)', (t) => {
    const clang = process.env.CLANG ?? 'clang';
    const probe = spawnSync(clang, ['--version'], { encoding: 'utf8' });
    if (!requireTool(t, probe.status === 0, 'clang')) return;
    const dir = mkdtempSync(join(tmpdir(), 'nearbpf-kernels-bpf-'));
    try {
      const script = fileURLToPath(new URL('../../scripts/build-bench-kernels.sh', import.meta.url));
      const build = spawnSync('bash', [script, dir], { encoding: 'utf8' });
      assert.equal(build.status, 0, `build-bench-kernels.sh failed:\n${build.stdout}${build.stderr}`);
      // Fresh objects must be correct whatever the clang version.
      for (const engine of ENGINES) assert.deepEqual(engineResults(engine, dir), expectedResults(), `rebuilt, ${engine}`);
      // The objects are reproducible (no paths, no dates), so with the clang that built the committed
      // ones (its version is in their .comment section) any difference means a stale object.
      const version = probe.stdout.split('\n')[0].trim();
      const stale: string[] = [];
      let sameCompiler = 0;
      for (const k of KERNELS) {
        const committed = readFileSync(kernelObjectPath(k));
        if (!committed.includes(version)) continue;
        sameCompiler++;
        if (!committed.equals(readFileSync(kernelObjectPath(k, dir)))) stale.push(k.name);
      }
      assert.deepEqual(stale, [], 'stale objects: run scripts/build-bench-kernels.sh and commit src/bench/kernels/build');
      if (sameCompiler < KERNELS.length)
        t.diagnostic(
          `${KERNELS.length - sameCompiler} objects were built by another clang than ${version}: compared by results only`,
        );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
