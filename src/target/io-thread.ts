/**
 * Entry point of an I/O thread (see io-threads.ts): a `NvmeTcpTarget` serving this thread's ports, with
 * the main thread as its coordinator; Execute commands go straight to the execution workers
 * (io-executions.ts). Its namespaces are opened here (own file handles) over the main thread's page
 * caches (shared memory: one cache per namespace for every thread, so none goes stale).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type ExecutionsUpdate, IoExecutions } from './io-executions.js';
import { CoordinatorClient, type IoThreadData, reviveBuffers, SharedPortStats } from './io-threads.js';
import type { Logger } from './logger.js';
import { NO_METRICS } from './metrics.js';
import { NvmeTcpTarget } from './target.js';

const port = parentPort;
if (port === null) throw new Error('io-thread.js runs as a worker thread');
const data = reviveBuffers(workerData as IoThreadData);
// Executions this thread starts on the execution workers itself; their reports go to the main
// thread ahead of any other message, so a later command there sees them.
const executions = data.executions ? new IoExecutions(data.executions, (m) => port.postMessage(m)) : undefined;
const post = (m: unknown) => {
  executions?.flush();
  port.postMessage(m);
};
const forward =
  (level: keyof Logger) =>
  (msg: string, fields?: Record<string, unknown>): void =>
    post({ type: 'log', level, msg, fields });
const log: Logger = { debug: forward('debug'), info: forward('info'), warn: forward('warn'), error: forward('error') };
const coordinator = new CoordinatorClient(post);
const config = { ...data.config, limits: { ...data.config.limits, readCacheBytes: 0 } };

const targetReady = NvmeTcpTarget.create(config, log, NO_METRICS, {
  coordinator,
  ownedPorts: data.ports,
  portStats: new Map(data.stats.map(([id, buffer]) => [id, new SharedPortStats(buffer)])),
  thread: data.thread,
  executions,
  caches: new Map(data.caches),
});
// Namespaces failing to open here fail the first request (the main thread opened them already).
targetReady.catch(() => {});

const answer = (id: number, run: () => Promise<unknown>) =>
  run().then(
    (result) => post({ type: 'result', id, result }),
    (e: Error) => post({ type: 'result', id, error: e.message }),
  );

port.on('message', (m: { type: string; id: number; [k: string]: unknown }) => {
  switch (m.type) {
    case 'exec-program':
    case 'exec-namespaces':
    case 'exec-replaced':
    case 'exec-done':
      executions?.update(m as unknown as ExecutionsUpdate);
      return;
    case 'reply':
      coordinator.answer(m.id, m.result);
      return;
    case 'port-table':
      targetReady.then((t) => t.setPortTable(m.table as never));
      return;
    case 'ping':
      answer(m.id, () => targetReady.then(() => null));
      return;
    case 'start-port':
      answer(m.id, async () => (await targetReady).startPort(m.port as number));
      return;
    case 'stop-port':
      answer(m.id, async () => (await targetReady).stopPort(m.port as number));
      return;
    case 'close':
      answer(m.id, async () => (await targetReady).close());
      return;
  }
});
