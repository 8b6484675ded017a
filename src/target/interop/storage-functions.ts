/**
 * Storage functions for the interop guest: load images built here with the project's assembler and
 * `encodeLoadImage`, put into the initramfs as files, and loaded, listed, executed and unloaded by the
 * stock Linux host through `nvme admin-passthru` / `nvme io-passthru`.
 */
import { assemble, encodeProgram } from '../../isa/index.js';
import { encodeLoadImage, LOAD_HEADER_BYTES } from '../../protocol/programs.js';

/** Returns ctx->param0 + 1 (param0 = CDW2-3 of EXECUTE). */
const PLUS_ONE = `
    ldxdw %r0, [%r1+40]      # ctx->param0
    add %r0, 1
    exit`;

/**
 * Reads the u64 at byte offset param0 of the namespace: step 0 asks for the read, step 1 emits the 8
 * bytes and returns them as the result.
 */
const READ_U64 = `
    mov %r6, %r1
    ldxdw %r7, [%r6+56]      # ctx->step
    jne %r7, 0, have_data
    ldxdw %r1, [%r6+40]      # ctx->param0: byte offset
    mov %r2, 8
    call 100                 # nb_read
    mov %r0, 0
    exit
  have_data:
    ldxdw %r2, [%r6+0]       # ctx->data
    ldxdw %r3, [%r6+8]       # ctx->data_end
    mov %r4, %r2
    add %r4, 8
    jgt %r4, %r3, fail
    ldxdw %r7, [%r2]
    mov %r1, %r2
    mov %r2, 8
    call 101                 # nb_emit(data, 8)
    mov %r0, %r7
    exit
  fail:
    mov %r0, 0
    exit`;

export const SF_PLUS_ONE_NAME = 'interop-plus-one';
export const SF_READ_U64_NAME = 'interop-read-u64';
/** Where the guest writes the block the read-u64 function reads (byte offset in namespace 1). */
export const SF_BLOCK_OFFSET = 7 << 20;

export interface GuestStorageFunctions {
  /** Path inside the initramfs → contents. */
  files: Record<string, Buffer>;
}

/**
 * /sf/plus1.img (one chunk), /sf/readu64.part0 + .part1 (the same image in two chunks: header, then
 * program), /sf/block.bin (512 bytes whose first 8 are the value read-u64 must return), /sf/value.bin
 * (those 8 bytes) and /sf/env (sizes and expected results, sourced by the guest's /init).
 */
export function guestStorageFunctions(): GuestStorageFunctions {
  const plus1 = encodeLoadImage(
    { format: 'bytecode', name: SF_PLUS_ONE_NAME, objectProgram: '' },
    encodeProgram(assemble(PLUS_ONE)),
  );
  const readU64 = encodeLoadImage(
    { format: 'bytecode', name: SF_READ_U64_NAME, objectProgram: '' },
    encodeProgram(assemble(READ_U64)),
  );
  const value = Buffer.from('nearbpf!', 'ascii');
  const block = Buffer.alloc(512, 0x5a);
  value.copy(block, 0);
  const low = value.readUInt32LE(0);
  const env = [
    `SF_PLUS1_SIZE=${plus1.length}`,
    `SF_READ_SIZE=${readU64.length}`,
    `SF_READ_PART0=${LOAD_HEADER_BYTES}`,
    `SF_READ_PART1=${readU64.length - LOAD_HEADER_BYTES}`,
    `SF_BLOCK_OFFSET=${SF_BLOCK_OFFSET}`,
    `SF_BLOCK_LBA512=${SF_BLOCK_OFFSET / 512}`,
    // DW0 of the read-u64 result, as nvme-cli prints it (hex).
    `SF_READ_DW0=${low.toString(16).padStart(8, '0')}`,
    `SF_PLUS1_NAME=${SF_PLUS_ONE_NAME}`,
    `SF_READ_NAME=${SF_READ_U64_NAME}`,
    '',
  ].join('\n');
  return {
    files: {
      'sf/plus1.img': plus1,
      'sf/readu64.part0': readU64.subarray(0, LOAD_HEADER_BYTES),
      'sf/readu64.part1': readU64.subarray(LOAD_HEADER_BYTES),
      'sf/block.bin': block,
      'sf/value.bin': value,
      'sf/env': Buffer.from(env),
    },
  };
}
