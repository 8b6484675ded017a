/**
 * Verification off the event loop: a worker thread runs the verifier, so a program that takes
 * seconds to verify never stalls the target's I/O, keep-alives or other tenants' executions.
 */
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import type { MapDefinition } from '../abi/maps.js';
import { STORAGE_FUNCTION } from '../abi/storage.js';
import type { Program } from '../isa/index.js';
import { VerifierError, type VerifierRejection } from '../verifier/errors.js';
import { verifyProgram } from '../verifier/index.js';

interface Request {
  id: number;
  program: Program;
  maps: readonly MapDefinition[];
}

type Reply = { id: number; ok: true } | { id: number; ok: false; rejection?: VerifierRejection; message?: string };

if (!isMainThread && parentPort) {
  const port = parentPort;
  port.on('message', (req: Request) => {
    let reply: Reply;
    try {
      verifyProgram(req.program, { type: STORAGE_FUNCTION, maps: req.maps });
      reply = { id: req.id, ok: true };
    } catch (e) {
      reply =
        e instanceof VerifierError
          ? {
              id: req.id,
              ok: false,
              rejection: {
                pc: e.pc,
                instruction: e.instruction,
                reason: e.reason,
                state: e.state,
                lineInfo: e.lineInfo,
                log: e.log,
              },
            }
          : { id: req.id, ok: false, message: e instanceof Error ? e.message : String(e) };
    }
    port.postMessage(reply);
  });
}

/** Verifies storage functions in one worker thread, one program at a time. */
export class BackgroundVerifier {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();

  verify(program: Program, maps: readonly MapDefinition[]): Promise<void> {
    const worker = this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, program, maps } satisfies Request);
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./verify-worker.js', import.meta.url));
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (reply.ok) p.resolve();
      else if (reply.rejection) p.reject(new VerifierError(reply.rejection));
      else p.reject(new Error(`verifier failed: ${reply.message}`));
    });
    worker.on('error', (e) => this.fail(e));
    worker.on('exit', () => this.fail(new Error('verifier worker exited')));
    this.worker = worker;
    return worker;
  }

  private fail(e: Error): void {
    this.worker = undefined;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }
}
