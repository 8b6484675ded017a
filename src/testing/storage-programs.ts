/** Storage functions in assembly, shared by the runtime, target and benchmark tests. */

/**
 * Walks a linked list of 16-byte nodes {u64 value, u64 next offset} from param0, one read per
 * step; sums the values in scratch, emits the sum (8 bytes) and returns it.
 */
export const LIST_WALK_ASM = `
    mov %r6, %r1
    ldxdw %r7, [%r6+56]      # ctx->step
    jne %r7, 0, have_data
    ldxdw %r1, [%r6+40]      # ctx->param0: first node
    mov %r2, 16
    call 100                 # nb_read
    mov %r0, 0
    exit
  have_data:
    ldxdw %r8, [%r6+16]      # ctx->scratch
    ldxdw %r2, [%r6+0]       # ctx->data
    ldxdw %r3, [%r6+8]       # ctx->data_end
    mov %r4, %r2
    add %r4, 16
    jgt %r4, %r3, fail
    ldxdw %r5, [%r2]
    ldxdw %r9, [%r8]
    add %r9, %r5
    stxdw [%r8], %r9
    ldxdw %r1, [%r2+8]
    jeq %r1, 0, done
    mov %r2, 16
    call 100
    mov %r0, 0
    exit
  done:
    mov %r1, %r8
    mov %r2, 8
    call 101                 # nb_emit(scratch, 8)
    mov %r0, %r9
    exit
  fail:
    mov %r0, 1
    exit`;

/** Reads 4096 bytes at byte offset param0 and emits them unchanged (coherence tests compare every byte). */
export const EMIT_PAGE_ASM = `
    mov %r6, %r1
    ldxdw %r7, [%r6+56]      # ctx->step
    jne %r7, 0, have_data
    ldxdw %r1, [%r6+40]      # ctx->param0
    mov %r2, 4096
    call 100                 # nb_read(param0, 4096)
    mov %r0, 0
    exit
  have_data:
    ldxdw %r1, [%r6+0]       # ctx->data
    ldxdw %r3, [%r6+8]       # ctx->data_end
    mov %r4, %r1
    add %r4, 4096
    jgt %r4, %r3, fail
    mov %r2, 4096
    call 101                 # nb_emit(data, 4096)
    mov %r0, 0
    exit
  fail:
    mov %r0, 1
    exit`;

/**
 * CPU-heavy: each step spins 20,000 rounds of a small loop (about 80,000 instructions), for param0
 * steps (each asks for 8 bytes at offset 0 to go on); returns the spin's checksum.
 */
export const SPIN_STEPS_ASM = `
    mov %r6, %r1
    mov %r9, 0
    mov %r8, 0
  spin:
    add %r8, %r9
    xor %r8, 0x5a5a
    add %r9, 1
    jlt %r9, 20000, spin
    ldxdw %r7, [%r6+56]      # ctx->step
    ldxdw %r1, [%r6+40]      # ctx->param0: steps
    jge %r7, %r1, done
    mov %r1, 0
    mov %r2, 8
    call 100                 # nb_read(0, 8): one more step
    mov %r0, 0
    exit
  done:
    mov %r0, %r8
    exit`;

/** Scan: sums the u64 words of every chunk into scratch; at the end emits and returns the sum. */
export const SCAN_SUM_ASM = `
    mov %r6, %r1
    ldxdw %r8, [%r6+16]      # scratch
    ldxdw %r7, [%r6+80]      # flags
    and %r7, 2
    jne %r7, 0, finish
    ldxdw %r2, [%r6+0]
    ldxdw %r3, [%r6+8]
    ldxdw %r9, [%r8]
  loop:
    mov %r4, %r2
    add %r4, 8
    jgt %r4, %r3, out
    ldxdw %r5, [%r2]
    add %r9, %r5
    mov %r2, %r4
    ja loop
  out:
    stxdw [%r8], %r9
    mov %r0, 0
    exit
  finish:
    mov %r1, %r8
    mov %r2, 8
    call 101                 # nb_emit(scratch, 8)
    ldxdw %r0, [%r8]
    exit`;
