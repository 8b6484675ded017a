/** The tiny logging interface the target uses; inject your own (pino fits it) or use one of these. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const noop = () => {};
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/** Human-readable lines on stderr; `debug` only when `verbose`. */
export function consoleLogger(verbose = false): Logger {
  const line = (level: string) => (msg: string, fields?: Record<string, unknown>) => {
    const extra = fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : '';
    process.stderr.write(`${new Date().toISOString()} ${level} ${msg}${extra}\n`);
  };
  return { debug: verbose ? line('debug') : noop, info: line('info'), warn: line('warn'), error: line('error') };
}
