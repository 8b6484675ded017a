/**
 * `nearbpf gen-dhchap-key` and `nearbpf check-dhchap-key`: DH-HMAC-CHAP secrets in the `DHHC-1:`
 * representation nvme-cli uses (`nvme gen-dhchap-key` / `nvme check-dhchap-key` accept ours and we
 * accept theirs; the same --secret, --hmac and --nqn give byte-identical keys).
 */
import { readFile } from 'node:fs/promises';
import { resolveHostIdentity } from '../../client/identity.js';
import { UsageError } from '../../errors.js';
import { DhchapKeyError, formatDhchapKey, generateDhchapKey, parseDhchapKey } from '../../protocol/dhchap.js';
import { expectPositionals, parseCommandArgs } from '../args.js';
import { parseNumber } from '../nvme-options.js';
import type { Command } from './command.js';

const HASHES = ['none', 'SHA-256', 'SHA-384', 'SHA-512'];

export const genDhchapKeyCommand: Command = {
  name: 'gen-dhchap-key',
  summary: 'generate a DH-HMAC-CHAP secret (DHHC-1:...) for a host or controller key',
  usage: `nearbpf gen-dhchap-key [--hmac 0-3] [--key-length 32|48|64] [--nqn NQN] [--secret HEX]

Prints a new secret in nvme-cli's representation. Put it in the target config ("auth.hosts") and give
it to the host (--dhchap-secret, --dhchap-secret-file, $NEARBPF_DHCHAP_SECRET, or nvme connect).
  --hmac N           key transformation hash: 0 none (default), 1 SHA-256, 2 SHA-384, 3 SHA-512;
                     with 1-3 the key is bound to the host NQN (--nqn, default this host's)
  --key-length N     32, 48 or 64 bytes (default 32, or the hash's length with --hmac)
  --nqn NQN          host NQN for the transformation
  --secret HEX       use these bytes instead of random ones (tests, migration)`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, {
      hmac: { type: 'string', default: '0' },
      'key-length': { type: 'string' },
      nqn: { type: 'string' },
      secret: { type: 'string' },
    });
    expectPositionals(positionals, []);
    const transform = parseNumber(values.hmac, '--hmac', 0, 3) as 0 | 1 | 2 | 3;
    const lengthBytes =
      values['key-length'] === undefined
        ? undefined
        : (parseNumber(values['key-length'], '--key-length', 32, 64) as 32 | 48 | 64);
    if (lengthBytes !== undefined && ![32, 48, 64].includes(lengthBytes))
      throw new UsageError('--key-length must be 32, 48 or 64');
    let secret: Buffer | undefined;
    if (values.secret !== undefined) {
      if (!/^(?:[0-9a-fA-F]{2})+$/.test(values.secret)) throw new UsageError('--secret must be hexadecimal bytes');
      secret = Buffer.from(values.secret, 'hex');
    }
    const nqn = transform === 0 ? undefined : (values.nqn ?? resolveHostIdentity().hostNqn);
    try {
      const key = generateDhchapKey({
        transform,
        lengthBytes: lengthBytes ?? (secret?.length as 32 | 48 | 64 | undefined),
        secret,
        nqn,
      });
      io.stdout.write(`${formatDhchapKey(key)}\n`);
    } catch (e) {
      if (e instanceof DhchapKeyError) throw new UsageError(e.message);
      throw e;
    }
    return 0;
  },
};

export const checkDhchapKeyCommand: Command = {
  name: 'check-dhchap-key',
  summary: 'check a DH-HMAC-CHAP secret: format, length, CRC and transformation',
  usage: `nearbpf check-dhchap-key KEY | --key-file FILE

Exit status 0 and a one-line description when KEY is a valid DHHC-1 secret; 1 (with the reason, not
the secret) otherwise.`,

  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, { 'key-file': { type: 'string' } });
    let text: string;
    if (values['key-file'] !== undefined) {
      expectPositionals(positionals, []);
      try {
        text = (await readFile(values['key-file'], 'utf8')).split('\n')[0];
      } catch (e) {
        throw new UsageError(`--key-file: cannot read ${values['key-file']}: ${(e as Error).message}`);
      }
    } else {
      [text] = expectPositionals(positionals, ['KEY']);
    }
    const key = parseDhchapKey(text);
    io.stdout.write(`valid DH-HMAC-CHAP secret: ${key.secret.length} bytes, transformation ${HASHES[key.transform]}\n`);
    return 0;
  },
};
