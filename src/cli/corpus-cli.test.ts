/**
 * The verifier's corpus of natural storage functions (examples/corpus, README there), each loaded
 * with `nearbpf load` and run with `nearbpf exec` over NVMe/TCP against a real target, on data this
 * test writes with `nearbpf write`; every result is checked against a plain TypeScript version.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { STORAGE_FUNCTION } from '../abi/storage.js';
import { loadObject } from '../loader/index.js';
import { startTestTarget, type TestTarget } from '../target/test-helpers.js';
import { REPO_ROOT } from '../testing/conformance-data.js';
import { verifyProgram } from '../verifier/index.js';
import { runCliAgainst } from './test-helpers.js';

/** Bytes of the data image written at LBA 0 of namespace 1 (512-byte blocks). */
const IMAGE_BYTES = 128 * 1024;
/** Where the BFS nodes point: 32-byte nodes read by the second step. */
const BFS_TARGETS = 0x10000;

interface CorpusCase {
  readonly program: string;
  readonly param0: number;
  readonly param1?: bigint;
  readonly input?: Buffer;
  /** Fill the program's data in the image. */
  readonly fill: (image: Buffer) => void;
  /** The expected return value and output, computed from the image. */
  readonly expect: (image: Buffer) => { r0: bigint; output?: Buffer };
}

const u64 = (b: Buffer, off: number) => b.readBigUInt64LE(off);
const MASK64 = (1n << 64n) - 1n;

const CASES: CorpusCase[] = [
  {
    program: 'sum_u64',
    param0: 0x0000,
    fill: (b) => {
      for (let i = 0; i < 512; i++) b.writeBigUInt64LE(BigInt(i) * 0x1_0000_0007n + 3n, i * 8);
    },
    expect: (b) => {
      let sum = 0n;
      for (let i = 0; i < 512; i++) sum = (sum + u64(b, i * 8)) & MASK64;
      return { r0: sum };
    },
  },
  {
    program: 'count_above',
    param0: 0x1000,
    param1: 500n,
    fill: (b) => {
      for (let i = 0; i < 1024; i++) b.writeUInt32LE(Math.imul(i, 2654435761) >>> 0, 0x1000 + i * 4);
    },
    expect: (b) => {
      let n = 0n;
      for (let i = 0; i < 1024; i++) if (b.readUInt32LE(0x1000 + i * 4) > 500) n++;
      return { r0: n };
    },
  },
  {
    program: 'bsearch_u64',
    param0: 0x2000,
    param1: 10n * 137n + 5n,
    fill: (b) => {
      for (let i = 0; i < 512; i++) b.writeBigUInt64LE(10n * BigInt(i) + 5n, 0x2000 + i * 8);
    },
    expect: () => ({ r0: 138n }),
  },
  {
    program: 'grid_rows',
    param0: 0x3000,
    param1: 100n,
    fill: (b) => {
      for (let i = 0; i < 128; i++) b[0x3000 + i] = (i * 37 + (i >> 3) * 11) & 0xff;
    },
    expect: (b) => {
      let rows = 0;
      for (let r = 0; r < 16; r++) {
        let hot = 0;
        for (let c = 0; c < 8; c++) if (b[0x3000 + r * 8 + c] > 100) hot++;
        if (hot >= 4) rows++;
      }
      return { r0: BigInt(rows), output: rows > 8 ? b.subarray(0x3000, 0x3010) : undefined };
    },
  },
  {
    program: 'bfs_queue',
    param0: 0x4000,
    fill: (b) => {
      for (let i = 0; i < 10; i++) {
        const node = 0x4000 + i * 32;
        b.writeBigUInt64LE(BigInt(i), node);
        const edges = [i % 2 ? BFS_TARGETS + i * 32 : 0, i % 3 === 0 ? BFS_TARGETS : 0, BFS_TARGETS + 64 * (i % 5)];
        edges.forEach((e, k) => {
          b.writeBigUInt64LE(BigInt(e), node + 8 + k * 8);
        });
      }
    },
    expect: (b) => {
      let queued = 0;
      for (let i = 0; i < 10; i++) {
        for (let k = 0; k < 3; k++) if (u64(b, 0x4000 + i * 32 + 8 + k * 8) !== 0n) queued++;
      }
      return { r0: BigInt(queued * 1000 + queued) };
    },
  },
  {
    program: 'list_count',
    param0: 0x5000,
    fill: (b) => {
      // Ten nodes, stored out of order.
      const order = [0, 7, 3, 9, 1, 5, 8, 2, 6, 4];
      order.forEach((slot, k) => {
        const at = 0x5000 + slot * 16;
        b.writeBigUInt64LE(BigInt(k + 1), at);
        b.writeBigUInt64LE(k + 1 < order.length ? BigInt(0x5000 + order[k + 1] * 16) : 0n, at + 8);
      });
    },
    expect: () => ({ r0: 10n * 1000000n + 55n }),
  },
  {
    program: 'histogram',
    param0: 0x6000,
    fill: (b) => {
      for (let i = 0; i < 256; i++) b[0x6000 + i] = (i * 13) & 0x7f;
    },
    expect: (b) => {
      const buckets = new Uint32Array(16);
      for (let i = 0; i < 256; i++) buckets[b[0x6000 + i] >> 4]++;
      return { r0: BigInt(buckets.filter((x) => x > 0).length), output: Buffer.from(buckets.buffer) };
    },
  },
  {
    program: 'find_first',
    param0: 0x7000,
    param1: 42n,
    fill: (b) => {
      for (let i = 0; i < 512; i++) b.writeBigUInt64LE(BigInt((i * 7) % 100), 0x7000 + i * 8);
    },
    expect: (b) => {
      for (let i = 0; i < 512; i++) if (u64(b, 0x7000 + i * 8) === 42n) return { r0: BigInt(i + 1) };
      return { r0: 0n };
    },
  },
  {
    program: 'fletcher16',
    param0: 0x9000,
    fill: (b) => {
      for (let i = 0; i < 1024; i++) b[0x9000 + i] = (i * 31 + 7) & 0xff;
    },
    expect: (b) => {
      let s1 = 0;
      let s2 = 0;
      for (let i = 0; i < 1024; i++) {
        s1 = (s1 + b[0x9000 + i]) % 255;
        s2 = (s2 + s1) % 255;
      }
      return { r0: BigInt((s2 << 8) | s1) };
    },
  },
  {
    program: 'kv_filter',
    param0: 0xa000,
    param1: 95n,
    input: Buffer.from(new BigUint64Array([400n]).buffer),
    fill: (b) => {
      for (let i = 0; i < 64; i++) {
        b.writeBigUInt64LE(BigInt(i * 10), 0xa000 + i * 16);
        b.writeBigUInt64LE(BigInt(i * 100 + 1), 0xa000 + i * 16 + 8);
      }
    },
    expect: (b) => {
      const values: Buffer[] = [];
      for (let i = 0; i < 64 && values.length < 8; i++) {
        const key = u64(b, 0xa000 + i * 16);
        if (key >= 95n && key < 400n) values.push(b.subarray(0xa000 + i * 16 + 8, 0xa000 + i * 16 + 16));
      }
      return { r0: BigInt(values.length), output: Buffer.concat(values) };
    },
  },
  {
    program: 'word_count',
    param0: 0xb000,
    fill: (b) => {
      b.write('the quick  brown fox\tjumps\nover the lazy dog ', 0xb000, 'latin1');
    },
    expect: () => ({ r0: 9n }),
  },
  {
    program: 'row_argmax',
    param0: 0xc000,
    fill: (b) => {
      for (let i = 0; i < 64; i++) b.writeUInt32LE(((i * 3) % 17) * 1000 + i, 0xc000 + i * 4);
    },
    expect: (b) => {
      let best = 0;
      let bestRow = 0;
      for (let r = 0; r < 8; r++) {
        let sum = 0;
        for (let c = 0; c < 8; c++) sum += b.readUInt32LE(0xc000 + (r * 8 + c) * 4);
        if (r === 0 || sum > best) {
          best = sum;
          bestRow = r;
        }
      }
      return { r0: BigInt(bestRow * 1000000 + best) };
    },
  },
];

let target: TestTarget;
let dir: string;
const image = Buffer.alloc(IMAGE_BYTES);

const run = (argv: string[]) => runCliAgainst(target.address.port, argv);

describe('the corpus of natural storage functions, end to end over NVMe/TCP', () => {
  before(async () => {
    target = await startTestTarget();
    dir = await mkdtemp(join(tmpdir(), 'nearbpf-corpus-'));
    for (const c of CASES) c.fill(image);
    for (let i = 0; i < 32 * 5; i++) image.writeBigUInt64LE(BigInt(i), BFS_TARGETS + i * 8);
    await writeFile(join(dir, 'image.bin'), image);
    const written = await run(['write', '--nsid', '1', '--slba', '0', '--input', join(dir, 'image.bin')]);
    assert.equal(written.code, 0, written.stderr);
  });

  after(async () => {
    await target?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('has at least 12 programs', () => assert.ok(CASES.length >= 12));

  for (const c of CASES) {
    it(`${c.program}: accepted by the target and right`, async () => {
      const object = join(REPO_ROOT, 'examples', 'build', 'corpus', `${c.program}.o`);
      const loaded = await run(['load', object, '--name', c.program]);
      assert.equal(loaded.code, 0, `${c.program} was refused:\n${loaded.stderr}`);
      const argv = ['exec', c.program, '--nsid', '1', '--param0', String(c.param0)];
      if (c.param1 !== undefined) argv.push('--param1', String(c.param1));
      if (c.input) {
        const input = join(dir, `${c.program}.input`);
        await writeFile(input, c.input);
        argv.push('--input', input);
      }
      const executed = await run(argv);
      assert.equal(executed.code, 0, executed.stderr);
      const { r0, output } = c.expect(image);
      const lines = executed.stdout.split('\n');
      assert.equal(lines[0], `0x${r0.toString(16)}`, `${c.program}: return value`);
      if (output) assert.equal(lines[1], output.toString('hex'), `${c.program}: output`);
      assert.equal((await run(['unload', c.program])).code, 0);
    });
  }
});

describe('the corpus rebuilt from C', () => {
  it('scripts/build-examples.sh builds every corpus program, and the verifier accepts each', async (t) => {
    const clang = process.env.CLANG ?? 'clang';
    if (spawnSync(clang, ['--version']).status !== 0) {
      t.skip('clang is not installed: rebuild check skipped (apt-get install -y clang llvm)');
      return;
    }
    const out = await mkdtemp(join(tmpdir(), 'nearbpf-corpus-build-'));
    try {
      const build = spawnSync('bash', [join(REPO_ROOT, 'scripts', 'build-examples.sh'), out], { encoding: 'utf8' });
      assert.equal(build.status, 0, `${build.stdout}${build.stderr}`);
      const built = readdirSync(join(out, 'corpus')).filter((f) => f.endsWith('.o'));
      assert.deepEqual(built.sort(), CASES.map((c) => `${c.program}.o`).sort());
      for (const file of built) {
        const object = loadObject(readFileSync(join(out, 'corpus', file)));
        for (const p of object.programs) verifyProgram(p.instructions, { type: STORAGE_FUNCTION, maps: object.maps });
      }
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
