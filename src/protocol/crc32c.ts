/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), slice-by-8. Used for NVMe/TCP header and data
 * digests. Node's zlib.crc32 is CRC-32/IEEE, a different polynomial, hence this table-driven version.
 */

const POLY = 0x82f63b78;
const TABLES = buildTables();

function buildTables(): Uint32Array[] {
  const t0 = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t0[i] = c >>> 0;
  }
  const tables = [t0];
  for (let t = 1; t < 8; t++) {
    const prev = tables[t - 1];
    const next = new Uint32Array(256);
    for (let i = 0; i < 256; i++) next[i] = (prev[i] >>> 8) ^ t0[prev[i] & 0xff];
    tables.push(next);
  }
  return tables;
}

const [T0, T1, T2, T3, T4, T5, T6, T7] = TABLES;

/** Continue a CRC32C over `bytes`; start with `crc = 0`. Returns an unsigned 32-bit value. */
export function crc32c(bytes: Uint8Array, crc = 0, start = 0, end = bytes.length): number {
  let c = ~crc;
  let i = start;
  // Slice-by-8 over the bulk, byte at a time for the tail.
  const bulkEnd = end - ((end - i) & 7);
  while (i < bulkEnd) {
    const lo = c ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    c =
      T7[lo & 0xff] ^
      T6[(lo >>> 8) & 0xff] ^
      T5[(lo >>> 16) & 0xff] ^
      T4[lo >>> 24] ^
      T3[bytes[i + 4]] ^
      T2[bytes[i + 5]] ^
      T1[bytes[i + 6]] ^
      T0[bytes[i + 7]];
    i += 8;
  }
  while (i < end) c = T0[(c ^ bytes[i++]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** CRC32C over several buffers as if concatenated. */
export function crc32cOf(parts: readonly Uint8Array[]): number {
  let c = 0;
  for (const p of parts) c = crc32c(p, c);
  return c;
}
