import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { DelayProxy, pingPong, startEchoServer } from './delay-proxy.js';
import type { Measurement } from './pushdown.js';
import { formatRttTable, type RttSweepRow, rttFigureFiles } from './rtt.js';

/** Read everything until the peer's FIN. */
const readAll = (s: Socket) =>
  new Promise<Buffer>((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on('data', (c: Buffer) => parts.push(c));
    s.once('end', () => resolve(Buffer.concat(parts)));
    s.once('error', reject);
  });

describe('delay proxy', () => {
  it('forwards bytes intact both ways, in order, and forwards the FIN after the held data', async () => {
    const up = randomBytes(3 << 20);
    const down = randomBytes(1 << 20);
    let receivedUp: Promise<Buffer> | undefined;
    const server = createServer({ allowHalfOpen: true }, (s) => {
      receivedUp = readAll(s);
      // The server's own payload, in pieces, while the client's is still arriving.
      for (let at = 0; at < down.length; at += 10_000) s.write(down.subarray(at, at + 10_000));
      void receivedUp.then(() => s.end());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = await DelayProxy.start({
      upstream: { host: '127.0.0.1', port: (server.address() as AddressInfo).port },
      oneWayUs: 50,
    });
    try {
      const client = connect({ host: proxy.host, port: proxy.port, allowHalfOpen: true });
      const receivedDown = readAll(client);
      // Writes of uneven sizes, then a half-close.
      let at = 0;
      for (let n = 1; at < up.length; n = (n * 7 + 13) % 65_521) {
        client.write(up.subarray(at, at + n + 1));
        at += n + 1;
      }
      client.end();
      assert.ok(Buffer.compare(await receivedDown, down) === 0, 'server -> client bytes differ');
      assert.ok(receivedUp);
      assert.ok(Buffer.compare(await receivedUp, up) === 0, 'client -> server bytes differ');
      client.destroy();
      const st = proxy.stats();
      assert.equal(st.bytes, up.length + down.length);
      assert.ok(st.meanHeldUs >= 50, `chunks held ${st.meanHeldUs} µs on average`);
    } finally {
      await proxy.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('adds at least the configured delay each way (sub-millisecond and beyond), also after a change', async () => {
    const echo = await startEchoServer();
    const proxy = await DelayProxy.start({ upstream: echo, oneWayUs: 250 });
    try {
      for (const oneWayUs of [250, 12.5, 3000]) {
        proxy.setOneWayDelay(oneWayUs);
        const rtts = await pingPong(proxy.host, proxy.port, { rounds: oneWayUs > 1000 ? 10 : 50, warmup: 2 });
        const min = Math.min(...rtts);
        assert.ok(min >= 2 * oneWayUs, `one-way ${oneWayUs} µs: a round trip took only ${min} µs`);
      }
    } finally {
      await proxy.close();
      await echo.close();
    }
  });

  it('rejects a negative delay', () => {
    assert.throws(() => new DelayProxy({ upstream: { host: '127.0.0.1', port: 1 }, oneWayUs: -1 }), RangeError);
  });
});

describe('RTT sweep report', () => {
  const m = (p50Us: number, commandsPerOp: number): Measurement => ({
    ops: 10,
    concurrency: 1,
    seconds: 0.01,
    opsPerSec: 1000,
    p50Us,
    p99Us: p50Us * 2,
    meanUs: p50Us,
    bytesPerOp: 200,
    bytesSentPerOp: 100,
    bytesReceivedPerOp: 100,
    commandsPerOp,
  });
  const row = (path: RttSweepRow['path'], oneWayUs: number, rttUs: number): RttSweepRow => ({
    path,
    oneWayUs,
    nominalRttUs: 2 * oneWayUs,
    probe: { rounds: 1, minUs: rttUs, p50Us: rttUs, p99Us: rttUs, meanUs: rttUs },
    heldUs: oneWayUs,
    lookup: { pushdown: m(100 + rttUs, 1), fetched: m(300 + 7 * rttUs, 7) },
    scan: { pushdown: m(30_000, 1), fetched: m(100_000 + 128 * rttUs, 512) },
  });
  const rows = [row('direct', 0, 20), row('proxy', 0, 40), row('proxy', 50, 140), row('proxy', 250, 540)];

  it('writes the CSV and a stacked SVG, and prints the proxy cost and the slopes', () => {
    const [csv, svg] = rttFigureFiles(rows);
    assert.equal(csv.name, 'pushdown-gain-by-rtt.csv');
    const lines = csv.text.trim().split('\r\n');
    assert.equal(lines.length, 1 + rows.length);
    assert.ok(lines[0].startsWith('path,one_way_delay_us,nominal_rtt_us,measured_rtt_p50_us'));
    assert.equal(svg.name, 'pushdown-gain-by-rtt.svg');
    assert.equal(svg.text.match(/<svg /g)?.length, 3);
    const text = formatRttTable(rows);
    assert.match(text, /direct \(no proxy\)/);
    assert.match(text, /proxy's own cost .*ping-pong RTT \+20 µs/);
    assert.match(text, /pushdown 1\.00, fetched 7\.00/);
  });
});
