/**
 * Where a database lies on a namespace, and reading its pages over plain reads: a raw image at a
 * byte offset, or a file inside a file system described by its extent map (`filefrag -e`).
 */
import { SqliteCorruptError, SqliteQueryError } from './errors.js';

/** Reads `lengthBytes` at byte `offsetBytes` of the namespace. */
export type ByteReader = (offsetBytes: number, lengthBytes: number) => Promise<Uint8Array>;

/** A run of the database file on the namespace. */
export interface Extent {
  readonly fileOffset: number;
  readonly nsOffset: number;
  readonly length: number;
}

export interface DatabaseLocation {
  readonly nsid: number;
  /** Namespace byte offset of the image's first byte (raw image; ignored with extents). */
  readonly offsetBytes: number;
  /** The file's extents, sorted by file offset (a file inside a file system). */
  readonly extents?: readonly Extent[];
}

/** Most extents the storage functions accept (examples/sqlite/sqlite.h SQ_MAX_EXTENTS). */
export const MAX_EXTENTS = 128;

/** Check an extent map and merge runs that continue each other on both sides. */
export function normalizeExtents(extents: readonly Extent[]): Extent[] {
  const sorted = [...extents].sort((a, b) => a.fileOffset - b.fileOffset);
  const out: Extent[] = [];
  for (const e of sorted) {
    if (!(e.length > 0) || e.fileOffset < 0 || e.nsOffset < 0)
      throw new SqliteQueryError('ERR_SQLITE_ARGUMENT', `bad extent ${JSON.stringify(e)}`);
    const last = out[out.length - 1];
    if (last && e.fileOffset < last.fileOffset + last.length)
      throw new SqliteQueryError('ERR_SQLITE_ARGUMENT', `extents overlap at file offset ${e.fileOffset}`);
    if (last && last.fileOffset + last.length === e.fileOffset && last.nsOffset + last.length === e.nsOffset)
      out[out.length - 1] = { ...last, length: last.length + e.length };
    else out.push(e);
  }
  if (out.length > MAX_EXTENTS)
    throw new SqliteQueryError('ERR_SQLITE_ARGUMENT', `${out.length} extents: the storage functions take at most ${MAX_EXTENTS}`);
  return out;
}

/**
 * Parse `filefrag -e FILE` output (block size from its header line, e.g. "blocksize of 4096
 * bytes" / "File size of F is N (M blocks of 4096 bytes)"): one extent per table row, with the
 * physical offset shifted by `partitionOffsetBytes` when the file system starts inside the namespace.
 */
export function parseFilefrag(text: string, partitionOffsetBytes = 0): Extent[] {
  const bs = /blocks? of (\d+) bytes/.exec(text) ?? /blocksize of (\d+)/.exec(text);
  const block = bs ? Number(bs[1]) : 4096;
  const extents: Extent[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*\d+:\s*(\d+)\.\.\s*(\d+):\s*(\d+)\.\.\s*(\d+):\s*(\d+):/.exec(line);
    if (!m) continue;
    const logical = Number(m[1]);
    const physical = Number(m[3]);
    const length = Number(m[5]);
    extents.push({ fileOffset: logical * block, nsOffset: partitionOffsetBytes + physical * block, length: length * block });
  }
  if (extents.length === 0) throw new SqliteQueryError('ERR_SQLITE_ARGUMENT', 'no extents in the filefrag output');
  return normalizeExtents(extents);
}

/** Reads database pages through a location; counts the reads it issues. */
export class PageReader {
  reads = 0;
  bytes = 0;
  constructor(
    private readonly read: ByteReader,
    readonly location: DatabaseLocation,
    public pageSize: number,
  ) {}

  /** Bytes at a file offset, through the extent map when there is one. */
  async readFile(fileOffset: number, length: number, page: number): Promise<Uint8Array> {
    const extents = this.location.extents;
    this.reads++;
    this.bytes += length;
    if (!extents || extents.length === 0) return this.read(this.location.offsetBytes + fileOffset, length);
    const pieces: Promise<Uint8Array>[] = [];
    let at = fileOffset;
    let left = length;
    while (left > 0) {
      const e = extents.find((x) => at >= x.fileOffset && at < x.fileOffset + x.length);
      if (!e) throw new SqliteCorruptError('ERR_SQLITE_UNMAPPED', page, `file offset ${at}`);
      const take = Math.min(left, e.fileOffset + e.length - at);
      pieces.push(this.read(e.nsOffset + (at - e.fileOffset), take));
      at += take;
      left -= take;
    }
    if (pieces.length === 1) return pieces[0];
    return Buffer.concat(await Promise.all(pieces));
  }

  readPage(page: number): Promise<Uint8Array> {
    return this.readFile((page - 1) * this.pageSize, this.pageSize, page);
  }
}
