/** A namespace held in memory: for tests, examples and scratch namespaces. */
import type { NamespaceReader } from './execution.js';

export class MemoryNamespace implements NamespaceReader {
  constructor(readonly bytes: Uint8Array) {}

  get sizeBytes(): number {
    return this.bytes.length;
  }

  readNow(offsetBytes: number, lengthBytes: number, dest: Uint8Array, destOffset: number): boolean {
    if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes + lengthBytes > this.bytes.length) return false;
    dest.set(this.bytes.subarray(offsetBytes, offsetBytes + lengthBytes), destOffset);
    return true;
  }

  async read(offsetBytes: number, lengthBytes: number): Promise<Uint8Array> {
    if (offsetBytes < 0 || lengthBytes < 0 || offsetBytes + lengthBytes > this.bytes.length) {
      throw new RangeError(`read of ${lengthBytes} bytes at ${offsetBytes} outside ${this.bytes.length} bytes`);
    }
    return this.bytes.slice(offsetBytes, offsetBytes + lengthBytes);
  }
}
