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
