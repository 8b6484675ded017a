/**
 * A bpf_trace_printk-style debug print (helper 6): formats `fmt` with up to three arguments into
 * a bounded log owned by the environment, instead of the kernel's trace pipe.
 */
import { HelperError } from '../errors.js';
import type { Helper, HelperArgs } from '../vm/helpers.js';

/** What formatting needs of a call: the sandbox (for %s) and the call's pc (for errors). */
type TraceCall = Pick<HelperArgs, 'memory' | 'pc'>;

export const TRACE_PRINTK_HELPER_ID = 6;
/** Lines kept per log; later lines are counted in `dropped`. */
export const DEFAULT_MAX_LOG_LINES = 1024;
/** A format string or a formatted line longer than this is cut (the kernel's limit is 1 KiB too). */
export const MAX_LOG_LINE_BYTES = 1024;
/** Bytes read for one %s argument. */
export const MAX_STRING_ARG_BYTES = 256;

export class DebugLog {
  readonly lines: string[] = [];
  dropped = 0;
  constructor(readonly maxLines = DEFAULT_MAX_LOG_LINES) {}

  push(line: string): void {
    if (this.lines.length < this.maxLines) this.lines.push(line);
    else this.dropped++;
  }

  clear(): void {
    this.lines.length = 0;
    this.dropped = 0;
  }
}

const SPEC = /%([-0+ ]*)(\d*)(ll|l|hh|h|z)?([diuxXcps%])/g;

/** Read a NUL-terminated string of at most MAX_STRING_ARG_BYTES from the sandbox, byte by byte (checked). */
function readString(call: TraceCall, address: bigint): string {
  let s = '';
  for (let i = 0; i < MAX_STRING_ARG_BYTES; i++) {
    const b = call.memory.slice(address + BigInt(i), 1, 'read', call.pc)[0];
    if (b === 0) break;
    s += String.fromCharCode(b);
  }
  return s;
}

/** Format like the kernel's bpf_trace_printk: plain %d/%u/%x are 32-bit, the l/ll forms 64-bit. */
export function formatTrace(fmt: string, args: readonly bigint[], call: TraceCall): string {
  let next = 0;
  const take = () => {
    if (next >= args.length) throw new HelperError(call.pc, TRACE_PRINTK_HELPER_ID, 'more conversions than the 3 arguments');
    return args[next++];
  };
  return fmt.replace(SPEC, (_all, flags: string, width: string, length: string | undefined, conv: string) => {
    if (conv === '%') return '%';
    const wide = length === 'l' || length === 'll' || length === 'z';
    const v = take();
    let text: string;
    switch (conv) {
      case 'd':
      case 'i':
        text = (wide ? BigInt.asIntN(64, v) : BigInt.asIntN(32, v)).toString();
        break;
      case 'u':
        text = (wide ? BigInt.asUintN(64, v) : BigInt.asUintN(32, v)).toString();
        break;
      case 'x':
      case 'X':
        text = (wide ? BigInt.asUintN(64, v) : BigInt.asUintN(32, v)).toString(16);
        if (conv === 'X') text = text.toUpperCase();
        break;
      case 'c':
        text = String.fromCharCode(Number(v & 0xffn));
        break;
      case 'p':
        text = `0x${BigInt.asUintN(64, v).toString(16)}`;
        break;
      default:
        text = readString(call, v);
    }
    const w = Math.min(Number(width || '0'), 64);
    if (text.length >= w) return text;
    if (flags.includes('-')) return text.padEnd(w);
    return flags.includes('0') && conv !== 's' && conv !== 'c' ? text.padStart(w, '0') : text.padStart(w);
  });
}

/** Helper 6: `bpf_trace_printk(fmt, fmt_size, a, b, c)`; returns the length of the line written. */
export function tracePrintkHelper(log: DebugLog): Helper {
  return {
    id: TRACE_PRINTK_HELPER_ID,
    name: 'trace_printk',
    fn: (args) => {
      const size = args.num(2);
      if (size < 1 || size > MAX_LOG_LINE_BYTES) {
        throw new HelperError(args.pc, TRACE_PRINTK_HELPER_ID, `format size ${args.u64(2)} is not in [1, ${MAX_LOG_LINE_BYTES}]`);
      }
      const bytes = args.bytes(1, size, 'read');
      const nul = bytes.indexOf(0);
      if (nul < 0) throw new HelperError(args.pc, TRACE_PRINTK_HELPER_ID, 'format string is not NUL-terminated within its size');
      const fmt = Buffer.from(bytes.subarray(0, nul)).toString('latin1');
      const line = formatTrace(fmt, [args.u64(3), args.u64(4), args.u64(5)], args).slice(0, MAX_LOG_LINE_BYTES);
      log.push(line);
      return line.length;
    },
  };
}
