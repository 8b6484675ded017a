/**
 * Limits of the program/host contract. The verifier proves programs stay within them; the VM
 * enforces them at run time. One definition, so the two cannot drift.
 */

/** Stack bytes of one frame (r10 points at its top). */
export const STACK_FRAME_SIZE_BYTES = 512;
/** Frames a program may have live at once: the entry function plus nested local calls. */
export const MAX_CALL_DEPTH = 8;
/** Combined stack of all live frames. */
export const MAX_STACK_SIZE_BYTES = STACK_FRAME_SIZE_BYTES * MAX_CALL_DEPTH;
/** Instructions the verifier may process before it gives up (the kernel's limit). */
export const MAX_VERIFIER_PROCESSED_INSNS = 1_000_000;
/** Default instruction budget of one run. */
export const DEFAULT_FUEL = 100_000_000;
/** Helper id the conformance suite uses for "unwind": returns its argument; 0 stops the program. */
export const CONFORMANCE_UNWIND_HELPER_ID = 5;
