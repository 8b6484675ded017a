import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { findProgram, loadObject } from '../loader/index.js';
import { DEFAULT_TENANT_LIMITS } from '../runtime/budget.js';
import { executeStorageFunction } from '../runtime/execution.js';
import { MemoryNamespace } from '../runtime/namespace.js';
import { FairScheduler } from '../runtime/scheduler.js';
import { StorageFunction } from '../runtime/storage-function.js';
import { REPO_ROOT } from '../testing/conformance-data.js';
import { buildTable, decodeScanOutput, ROW_SIZE_BYTES, scanAtClient, thresholdFor } from './table.js';

describe('table scan', () => {
  it('pushdown and client-side scans agree on aggregates and projection at every selectivity', async () => {
    const rows = 20_000;
    const bytes = new Uint8Array(4096 + rows * ROW_SIZE_BYTES);
    const table = await buildTable(rows, 4096, async (o, b) => bytes.set(b, o), { chunkBytes: 65536 });
    const ns = new MemoryNamespace(bytes);
    const program = findProgram(loadObject(readFileSync(join(REPO_ROOT, 'examples', 'build', 'scan.o'))), 'table_scan');
    assert.ok(program);
    const fn = new StorageFunction({ name: 'scan', program: program.instructions, slots: 1 });
    for (const selectivity of [0, 0.001, 0.01, 0.5, 1]) {
      for (const project of [false, true]) {
        const threshold = thresholdFor(selectivity);
        const pushed = await executeStorageFunction(
          fn,
          {
            reader: ns,
            params: [BigInt(threshold), project ? 1n : 0n],
            tenant: 't',
            mode: { kind: 'scan', ...table, chunkBytes: 256 * 1024 },
          },
          DEFAULT_TENANT_LIMITS,
          new FairScheduler(),
        );
        const local = await scanAtClient((o, n) => ns.read(o, n), table, threshold, { project });
        const decoded = decodeScanOutput(pushed.output);
        assert.deepEqual(decoded.aggregate, local.aggregate, `selectivity ${selectivity}`);
        assert.equal(pushed.returnValue, local.aggregate.count);
        assert.deepEqual(decoded.projected, local.projected);
        assert.equal(pushed.stats.bytesRead, table.lengthBytes);
      }
    }
  });
});
