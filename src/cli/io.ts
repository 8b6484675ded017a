/**
 * Where a command writes. `main` takes these instead of touching `process`, so tests can run any
 * command in-process and read what it printed.
 */

/** The part of a writable stream the CLI uses; `process.stdout` and any `Writable` fit. */
export interface OutputStream {
  write(chunk: string | Uint8Array): unknown;
  /** True when the stream is a terminal (binary output is refused there). */
  readonly isTTY?: boolean;
}

export interface CliIo {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
}

export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr };
}
