/**
 * `nearbpf serve [--config FILE] [--listen HOST:PORT]... [--io-threads N] [--data-dir DIR] [--verbose]`: run the NVMe/TCP
 * target until SIGINT/SIGTERM, then close it cleanly (in-flight writes complete first).
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError } from '../errors.js';
import { ConfigError } from '../protocol/errors.js';
import { DEFAULT_LISTEN, effectiveConfigJson, formatHostPort, type TargetConfig, validateConfig } from './config.js';
import { MAX_PORTS } from './config-schema.js';
import { type Logger, logEvent, makeLogger } from './logger.js';
import { NO_METRICS, PrometheusTargetMetrics, startMetricsServer } from './metrics.js';
import { startTarget } from './target.js';

interface Out {
  write(chunk: string | Uint8Array): unknown;
}

export interface ServeOptions {
  logger?: Logger;
  /** Where the log goes when no `logger` is given (default stderr). */
  logOut?: { write(s: string): unknown };
  /** Stop serving when aborted (tests); by default SIGINT/SIGTERM stop it. */
  signal?: AbortSignal;
}

export const SERVE_USAGE = `nearbpf serve [--config FILE] [--listen HOST:PORT]... [--io-threads N] [--data-dir DIR] [--metrics HOST:PORT]
              [--log-format text|json] [--log-level debug|info|warn|error] [--print-config] [--verbose]

Runs the NVMe/TCP target until SIGINT or SIGTERM.
  --config FILE       JSON configuration (reference: docs/configuration.md); paths in it are relative to FILE
  --print-config      print the effective configuration (defaults filled in, keys redacted) as JSON and exit
  --metrics HOST:PORT Prometheus metrics at http://HOST:PORT/metrics (config "metrics.listen"; off by default)
  --listen HOST:PORT  address to listen on (default 127.0.0.1:4420; [::1]:4420 for IPv6); repeat it for
                      several ports, each exporting every subsystem (Linux multipath: one path per port)
  --io-threads N      serve the ports on N I/O threads; with one --listen address, N consecutive ports from it
  --data-dir DIR      where relative namespace files live (default ./nearbpf-data)
  --log-format F      the log on stderr: text (default) or json, one JSON object per line (config "log.format")
  --log-level L       least severe level logged: debug, info (default), warn, error (config "log.level")
  --verbose           the same as --log-level debug
Host keys (DH-HMAC-CHAP) are set per host NQN in the config's "auth" section; listening beyond
loopback without any prints a warning. The log's events: docs/logging.md.`;

export function parseListen(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) throw new UsageError(`--listen must be HOST:PORT, got '${s}'`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** Run the target; resolves with the exit status once it has shut down. */
export async function runServe(args: string[], io: { stdout: Out; stderr: Out }, options: ServeOptions = {}): Promise<number> {
  let parsed: ReturnType<typeof parseServeArgs>;
  try {
    parsed = parseServeArgs(args);
  } catch (e) {
    if (e instanceof Error && String((e as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS'))
      throw new UsageError(e.message);
    throw e;
  }
  const { values, positionals } = parsed;
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  let raw: Record<string, unknown> = {};
  let baseDir = process.cwd();
  if (values.config !== undefined) {
    let text: string;
    try {
      text = await readFile(values.config, 'utf8');
    } catch (e) {
      throw new ConfigError('(file)', `cannot read ${values.config}: ${(e as Error).message}`);
    }
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new ConfigError('(file)', `${values.config} is not valid JSON: ${(e as Error).message}`);
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError('(root)', 'must be a JSON object');
    baseDir = dirname(resolve(values.config));
  }
  if (values.listen !== undefined) raw = { ...raw, listen: values.listen.map(parseListen) };
  if (values['io-threads'] !== undefined) raw = withIoThreads(raw, values['io-threads']);
  if (values['data-dir'] !== undefined) raw = { ...raw, dataDir: resolve(values['data-dir']) };
  if (values.metrics !== undefined) {
    const m = parseListen(values.metrics);
    const section = typeof raw.metrics === 'object' && raw.metrics !== null ? raw.metrics : {};
    raw = { ...raw, metrics: { ...section, listen: formatHostPort(m) } };
  }
  const logOverrides = {
    ...(values['log-format'] !== undefined ? { format: values['log-format'] } : {}),
    ...(values['log-level'] !== undefined ? { level: values['log-level'] } : values.verbose ? { level: 'debug' } : {}),
  };
  if (Object.keys(logOverrides).length > 0) {
    const section = typeof raw.log === 'object' && raw.log !== null ? raw.log : {};
    raw = { ...raw, log: { ...section, ...logOverrides } };
  }
  let config: TargetConfig;
  try {
    config = validateConfig(raw, baseDir);
  } catch (e) {
    // A bad --log-format / --log-level is a usage error, not a config file's.
    if (e instanceof ConfigError && e.field.startsWith('log.') && logOverrides[e.field.slice(4) as 'format' | 'level'])
      throw new UsageError(`--${e.field.replace('.', '-')}: ${e.message}`);
    throw e;
  }
  if (values['print-config']) {
    io.stdout.write(`${JSON.stringify(effectiveConfigJson(config), null, 2)}\n`);
    return 0;
  }
  const log = options.logger ?? makeLogger(config.log.format, { level: config.log.level, out: options.logOut ?? process.stderr });
  const openWarning = unauthenticatedExposureWarning(config);
  if (openWarning) io.stderr.write(`nearbpf: WARNING: ${openWarning}\n`);
  const metrics = config.metrics.listen ? new PrometheusTargetMetrics(config.metrics) : null;
  const handle = await startTarget({ config, logger: log, metrics: metrics ?? NO_METRICS });
  let metricsServer: { close(): Promise<void> } | null = null;
  if (metrics && config.metrics.listen) {
    try {
      const m = await startMetricsServer(metrics, config.metrics.listen);
      metricsServer = m;
      io.stdout.write(`nearbpf: metrics at http://${formatHostPort(m.address)}/metrics\n`);
    } catch (e) {
      await handle.close();
      throw new ConfigError('metrics.listen', `cannot listen: ${(e as Error).message}`);
    }
  }
  for (const a of handle.addresses) io.stdout.write(`nearbpf: listening on ${formatHostPort(a)}\n`);
  for (const s of handle.target.describe()) {
    for (const n of s.namespaces) {
      io.stdout.write(
        `nearbpf: exporting ${s.nqn} nsid ${n.nsid}: ${n.path} (${n.sizeBytes} bytes, ${n.blockSize}-byte blocks)\n`,
      );
    }
  }
  await new Promise<void>((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      options.signal?.removeEventListener('abort', stop);
      done();
    };
    if (options.signal) {
      if (options.signal.aborted) return done();
      options.signal.addEventListener('abort', stop);
    } else {
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    }
  });
  logEvent(log, 'target.stopping', {});
  await metricsServer?.close();
  await handle.close();
  io.stdout.write('nearbpf: stopped\n');
  return 0;
}

/**
 * `--io-threads N`: N I/O threads; with one listen address, N ports on consecutive numbers from it (port 0:
 * N ephemeral ports), one per thread.
 */
export function withIoThreads(raw: Record<string, unknown>, value: string): Record<string, unknown> {
  const n = Number(value);
  if (!/^\d{1,2}$/.test(value) || n < 1 || n > MAX_PORTS)
    throw new UsageError(`--io-threads must be 1..${MAX_PORTS}, got '${value}'`);
  const listen = raw.listen === undefined ? [{}] : Array.isArray(raw.listen) ? raw.listen : [raw.listen];
  if (listen.length !== 1) return { ...raw, ioThreads: n };
  const first = listen[0] as { host?: string; port?: number };
  const host = first.host ?? DEFAULT_LISTEN.host;
  const port = first.port ?? DEFAULT_LISTEN.port;
  if (port !== 0 && port + n - 1 > 65535)
    throw new UsageError(`--io-threads ${n}: ports ${port}..${port + n - 1} run past 65535`);
  return { ...raw, ioThreads: n, listen: Array.from({ length: n }, (_, i) => ({ host, port: port === 0 ? 0 : port + i })) };
}

/** Loopback addresses: only this machine can connect. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || /^::ffff:127\./i.test(host);
}

/**
 * Listening beyond loopback with no host keys means a host NQN is just a claim: say so. Null when the
 * listen address is loopback or at least one host key is configured.
 */
export function unauthenticatedExposureWarning(config: TargetConfig): string | null {
  const open = config.listen.find((a) => !isLoopback(a.host));
  if (open === undefined || config.auth.hosts.size > 0) return null;
  return `listening on ${open.host} with no DH-HMAC-CHAP host keys (config "auth.hosts"): any host that can reach this port can claim any host NQN and get that host's access, programs and maps`;
}

function parseServeArgs(args: string[]) {
  return parseArgs({
    args,
    options: {
      config: { type: 'string' },
      listen: { type: 'string', multiple: true },
      'data-dir': { type: 'string' },
      verbose: { type: 'boolean' },
      'print-config': { type: 'boolean' },
      metrics: { type: 'string' },
      'log-format': { type: 'string' },
      'log-level': { type: 'string' },
      'io-threads': { type: 'string' },
    },
    strict: true,
    allowPositionals: true,
  });
}

/** The `serve` subcommand, shaped like the CLI's `Command` table entries. */
export const serveCommand = {
  name: 'serve',
  summary: 'run the NVMe/TCP storage target',
  usage: SERVE_USAGE,
  run: (args: string[], io: { stdout: Out; stderr: Out }) => runServe(args, io),
};
