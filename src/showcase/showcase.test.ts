import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { trafficDelta } from '../client/host.js';
import { ProgramClient } from '../client/programs.js';
import { type BtreeLayout, buildBtree, keyAt, valueForKey } from './btree.js';
import { blockReader, blockWriter, type LoopbackSession, startLoopbackSession } from './nvme.js';
import {
  type Dataset,
  describeRefusals,
  type LoadedFunctions,
  loadStorageFunctions,
  lookupFetched,
  lookupPushdown,
  rangeFetched,
  rangePushdown,
  samePairs,
  sameScan,
  scanFetched,
  scanPushdown,
  type TablePlace,
} from './pushdown.js';
import { formatTable, toCsv } from './report.js';
import { barChartSvg, escapeXml, lineChartSvg } from './svg.js';
import { buildTable, ROW_SIZE_BYTES, thresholdFor } from './table.js';

/** The handle of a loaded function; the target must have accepted it (its verifier's reason otherwise). */
function handleOf(loaded: LoadedFunctions, name: keyof LoadedFunctions['handles']): number {
  const h = loaded.handles[name];
  assert.ok(h !== undefined, `the target refused ${name}:\n${describeRefusals(loaded)}`);
  return h;
}

describe('showcase over NVMe/TCP loopback', () => {
  let session: LoopbackSession;
  let tree: Dataset;
  let tab: Dataset;
  let layout: BtreeLayout;
  let loaded: LoadedFunctions;
  const rows = 4096;
  const table: TablePlace = { offsetBytes: 0, lengthBytes: rows * ROW_SIZE_BYTES };

  before(async () => {
    session = await startLoopbackSession({
      namespaces: [
        { nsid: 1, sizeBytes: 1 << 20 },
        { nsid: 2, sizeBytes: 1 << 20 },
      ],
    });
    const { host, blockSize } = session;
    const programs = new ProgramClient(host);
    tree = { host, programs, nsid: 1, blockSize, read: blockReader(host, 1, blockSize) };
    tab = { host, programs, nsid: 2, blockSize, read: blockReader(host, 2, blockSize) };
    const w1 = blockWriter(host, 1, blockSize, { maxInFlight: 4 });
    // Small chunks: the last chunk of values does not fill a block, so the read-modify-write path runs.
    layout = await buildBtree(3000, 3, w1.write, { chunkBytes: 3000 });
    await w1.drain();
    const w2 = blockWriter(host, 2, blockSize);
    await buildTable(rows, 0, w2.write, { chunkBytes: 40_000 });
    await w2.drain();
    // btree_batch is left out: verifying it takes seconds; btree.test.ts runs it in-process and
    // the demo and bench-pushdown run it end to end.
    loaded = await loadStorageFunctions(programs, { names: ['btree_lookup', 'btree_range', 'table_scan'] });
  });

  after(async () => {
    await session?.close();
  });

  it('reads bytes back through the block adapter at any offset', async () => {
    for (const i of [0, 1, 1500, 2999]) {
      const value = await tree.read(layout.valuesStart + i * 64, 64);
      assert.deepEqual(Buffer.from(value), Buffer.from(valueForKey(keyAt(i))));
    }
  });

  it('a depth-3 lookup costs fewer bytes and round trips pushed down than fetched', async () => {
    const handles = handleOf(loaded, 'btree_lookup');
    const host = session.host;
    for (const key of [keyAt(0), keyAt(1234), keyAt(2999), 2n, keyAt(2999) + 1n]) {
      const b0 = host.traffic('io');
      const fetched = await lookupFetched(tree, layout, key);
      const b1 = host.traffic('io');
      const pushed = await lookupPushdown(tree, handles, layout, key);
      const b2 = host.traffic('io');
      assert.deepEqual(pushed && Buffer.from(pushed), fetched && Buffer.from(fetched), `key ${key}`);
      if (key % 2n === 1n && key <= keyAt(2999)) assert.deepEqual(Buffer.from(pushed ?? []), Buffer.from(valueForKey(key)));
      const f = trafficDelta(b0, b1);
      const p = trafficDelta(b1, b2);
      assert.equal(p.commands, 1);
      if (fetched) assert.equal(f.commands, layout.depth + 1);
      assert.ok(f.commands > p.commands);
      assert.ok(f.bytesSent + f.bytesReceived > p.bytesSent + p.bytesReceived, `bytes ${JSON.stringify({ f, p })}`);
      assert.ok(p.bytesReceived > 0 && p.bytesSent > 0);
    }
    // `traffic()` also counts the admin queue (connect, identify, program loads).
    const all = host.traffic();
    const io = host.traffic('io');
    assert.ok(all.commands > io.commands && all.bytesSent > io.bytesSent);
  });

  it('range queries agree both ways', async () => {
    const handles = handleOf(loaded, 'btree_range');
    for (const [lo, hi] of [
      [0n, 20n],
      [101n, 180n],
      [5990n, 7000n],
      [7000n, 8000n],
    ] as const) {
      const pushed = await rangePushdown(tree, handles, layout, lo, hi);
      const fetched = await rangeFetched(tree, layout, lo, hi);
      assert.ok(samePairs(pushed, fetched), `[${lo}, ${hi})`);
    }
  });

  it('scans agree both ways, with and without projection, and the pushdown moves fewer bytes', async () => {
    const handles = handleOf(loaded, 'table_scan');
    for (const s of [0, 0.01, 0.5, 1]) {
      const threshold = thresholdFor(s);
      const before = session.host.traffic('io');
      const fetched = await scanFetched(tab, table, threshold, { project: true });
      const mid = session.host.traffic('io');
      const pushed = await scanPushdown(tab, handles, table, threshold, { project: true, selectivityHint: s });
      const f = trafficDelta(before, mid);
      const p = session.host.trafficSince(mid, 'io');
      assert.ok(sameScan(pushed, fetched), `selectivity ${s}`);
      assert.ok(f.bytesReceived > table.lengthBytes);
      assert.ok(p.bytesReceived < f.bytesReceived);
      const aggregateOnly = await scanPushdown(tab, handles, table, threshold);
      assert.deepEqual(aggregateOnly.aggregate, fetched.aggregate);
    }
  });
});

describe('report writers', () => {
  it('writes RFC 4180 CSV', () => {
    const csv = toCsv(
      ['a', 'b c', 'd'],
      [
        [1, 'x,y', 'say "hi"'],
        [2.5, '', Number.NaN],
      ],
    );
    assert.equal(csv, 'a,b c,d\r\n1,"x,y","say ""hi"""\r\n2.5,,\r\n');
    assert.throws(() => toCsv(['a'], [[1, 2]]), /2 fields/);
  });

  it('formats a text table', () => {
    const text = formatTable(
      ['op', 'n'],
      [
        ['x', '1'],
        ['longer', '22'],
      ],
      new Set([1]),
    );
    assert.deepEqual(text.split('\n'), ['op       n', '------  --', 'x        1', 'longer  22', '']);
  });

  /** A minimal XML well-formedness check: balanced tags, quoted attributes, escaped text. */
  function assertWellFormedSvg(svg: string): void {
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    const stack: string[] = [];
    const tag = /<(\/?)([a-zA-Z]+)((?:\s+[a-zA-Z][\w:-]*="[^"<&]*(?:&(?:lt|gt|amp|quot|apos);[^"<&]*)*")*)\s*(\/?)>/g;
    let at = 0;
    for (let m = tag.exec(svg); m; m = tag.exec(svg)) {
      const between = svg.slice(at, m.index);
      assert.doesNotMatch(between, /[<>]|&(?!(lt|gt|amp|quot|apos);)/, `stray markup before ${m[0]}`);
      at = m.index + m[0].length;
      if (m[1] === '/') assert.equal(stack.pop(), m[2]);
      else if (m[4] !== '/') stack.push(m[2]);
    }
    assert.equal(svg.slice(at).trim(), '');
    assert.deepEqual(stack, []);
    assert.doesNotMatch(svg, /NaN|Infinity|undefined/);
  }

  it('writes well-formed SVG line charts, log axes and gaps included', () => {
    const svg = lineChartSvg({
      title: 'latency <by> depth & "more"',
      xLabel: 'depth',
      yLabel: 'µs',
      series: [
        {
          name: 'a',
          points: [
            [1, 10],
            [2, 20],
            [3, Number.NaN],
            [4, 35],
          ],
        },
        {
          name: 'b & c',
          points: [
            [1, 40],
            [2, 80],
          ],
        },
      ],
    });
    assertWellFormedSvg(svg);
    assert.match(svg, /latency &lt;by&gt; depth &amp; &quot;more&quot;/);
    assert.equal((svg.match(/<polyline/g) ?? []).length, 2);
    const log = lineChartSvg({
      title: 'bytes',
      xLabel: 's',
      yLabel: 'B',
      xLog: true,
      yLog: true,
      series: [
        {
          name: 'x',
          points: [
            [0.001, 100],
            [0.1, 1e6],
            [1, 0],
          ],
        },
      ],
    });
    assertWellFormedSvg(log);
    assertWellFormedSvg(lineChartSvg({ title: 'empty', xLabel: '', yLabel: '', series: [] }));
  });

  it('writes well-formed SVG bar charts', () => {
    const svg = barChartSvg({
      title: 'bytes per op',
      yLabel: 'B',
      yLog: true,
      categories: ['lookup', 'scan <1%>'],
      groups: [
        { name: 'pushdown', values: [300, 180] },
        { name: 'fetched', values: [4000, Number.NaN] },
      ],
    });
    assertWellFormedSvg(svg);
    assert.equal((svg.match(/<rect /g) ?? []).length, 1 + 3 + 2);
    assert.equal(escapeXml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;');
    assert.throws(() => barChartSvg({ title: '', yLabel: '', categories: ['a'], groups: [{ name: 'g', values: [] }] }));
  });
});
