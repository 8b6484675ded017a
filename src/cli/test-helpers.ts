/** For CLI tests: run `nearbpf ARGV` in-process against a test target and capture what it printed. */
import { SUBNQN } from '../target/test-helpers.js';
import type { CliIo } from './io.js';
import { main } from './main.js';

export async function runCliAgainst(port: number, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: { write: (c) => void (stdout += String(c)) },
    stderr: { write: (c) => void (stderr += String(c)) },
  };
  const code = await main([...argv, '--addr', `127.0.0.1:${port}`, '--nqn', SUBNQN], io);
  return { code, stdout, stderr };
}
