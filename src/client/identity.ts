/**
 * The host's identity: the host NQN and Host Identifier it connects with. Like nvme-cli, a machine
 * uses `/etc/nvme/hostnqn` and `/etc/nvme/hostid` when they exist; otherwise a UUID-based NQN is
 * created once under the user's configuration directory (`$XDG_CONFIG_HOME/nearbpf`, else
 * `~/.config/nearbpf`) and reused from then on. There is no shared built-in identity: two machines
 * (or two users without /etc/nvme) are two tenants.
 *
 * Paths are injectable (`IdentityPaths`), and the defaults honour `NEARBPF_NVME_DIR` (instead of
 * /etc/nvme) and `XDG_CONFIG_HOME`, so tests never touch the real /etc or $HOME.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { NearbpfError } from '../errors.js';
import { NQN_MAX_BYTES } from '../protocol/constants.js';

export interface HostIdentity {
  hostNqn: string;
  /** 16 bytes (the UUID of /etc/nvme/hostid or of the created NQN). */
  hostId: Buffer;
  /** Where the NQN came from. */
  source: string;
}

export interface IdentityPaths {
  /** nvme-cli's configuration folder (default `$NEARBPF_NVME_DIR` or `/etc/nvme`). */
  nvmeDir?: string;
  /** Where nearbpf keeps a created identity (default `$XDG_CONFIG_HOME/nearbpf` or `~/.config/nearbpf`). */
  configDir?: string;
}

export class HostIdentityError extends NearbpfError {
  readonly code = 'ERR_HOST_IDENTITY';
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const UUID_NQN_PREFIX = 'nqn.2014-08.org.nvmexpress:uuid:';

export function defaultIdentityPaths(env: NodeJS.ProcessEnv = process.env): Required<IdentityPaths> {
  const xdg = env.XDG_CONFIG_HOME;
  const configHome = xdg?.startsWith('/') ? xdg : join(env.HOME || homedir(), '.config');
  return { nvmeDir: env.NEARBPF_NVME_DIR || '/etc/nvme', configDir: join(configHome, 'nearbpf') };
}

/** The 16 bytes of a textual UUID. */
export function uuidBytes(uuid: string): Buffer {
  if (!UUID_RE.test(uuid)) throw new HostIdentityError(`not a UUID: '${uuid}'`);
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}

/** Check an NQN read from a file or given by the user. */
export function checkHostNqn(nqn: string, from: string): string {
  if (nqn.length === 0 || Buffer.byteLength(nqn) > NQN_MAX_BYTES || !nqn.startsWith('nqn.') || !/^[\x20-\x7e]+$/.test(nqn)) {
    throw new HostIdentityError(`${from}: not a valid NQN ('nqn.' prefix, 1..${NQN_MAX_BYTES} printable bytes)`);
  }
  return nqn;
}

function readTrimmed(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new HostIdentityError(`cannot read ${path}: ${(e as Error).message}`);
  }
}

/**
 * A Host Identifier for an NQN without a hostid file: the NQN's own UUID when it has one, else 16
 * bytes derived from the NQN (stable, so reconnects of the same host look the same).
 */
export function hostIdForNqn(nqn: string): Buffer {
  const tail = nqn.startsWith(UUID_NQN_PREFIX) ? nqn.slice(UUID_NQN_PREFIX.length) : '';
  if (UUID_RE.test(tail)) return uuidBytes(tail);
  return createHash('sha256').update(nqn).digest().subarray(0, 16);
}

function fromDir(dir: string): HostIdentity | null {
  const nqnPath = join(dir, 'hostnqn');
  const nqn = readTrimmed(nqnPath);
  if (nqn === null || nqn.length === 0) return null;
  checkHostNqn(nqn, nqnPath);
  const idPath = join(dir, 'hostid');
  const id = readTrimmed(idPath);
  let hostId: Buffer;
  if (id !== null && id.length > 0) {
    if (!UUID_RE.test(id)) throw new HostIdentityError(`${idPath}: not a UUID`);
    hostId = uuidBytes(id);
  } else {
    hostId = hostIdForNqn(nqn);
  }
  return { hostNqn: nqn, hostId, source: nqnPath };
}

/**
 * This machine's (or user's) host identity; creates one under `configDir` the first time. Two
 * processes racing to create it agree: the file is written exclusively and the loser reads it back.
 */
export function resolveHostIdentity(paths: IdentityPaths = {}): HostIdentity {
  const d = { ...defaultIdentityPaths(), ...paths };
  const system = fromDir(d.nvmeDir);
  if (system) return system;
  const own = fromDir(d.configDir);
  if (own) return own;
  const uuid = randomUUID();
  try {
    mkdirSync(d.configDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(d.configDir, 'hostid'), `${uuid}\n`, { flag: 'wx', mode: 0o644 });
    writeFileSync(join(d.configDir, 'hostnqn'), `${UUID_NQN_PREFIX}${uuid}\n`, { flag: 'wx', mode: 0o644 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new HostIdentityError(`cannot create a host identity in ${d.configDir}: ${(e as Error).message}`);
    }
    // Another process created it first (or a hostid without hostnqn was left): read what is there.
    const raced = fromDir(d.configDir);
    if (raced) return raced;
    writeFileSync(join(d.configDir, 'hostnqn'), `${UUID_NQN_PREFIX}${uuid}\n`, { flag: 'wx', mode: 0o644 });
    return fromDir(d.configDir)!;
  }
  return { hostNqn: `${UUID_NQN_PREFIX}${uuid}`, hostId: uuidBytes(uuid), source: join(d.configDir, 'hostnqn') };
}
