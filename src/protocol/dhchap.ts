/**
 * DH-HMAC-CHAP, NVMe in-band authentication (NVMe Base Specification, "Authentication", and the
 * fabrics commands Authentication Send 05h / Authentication Receive 06h): the message codec, the
 * `DHHC-1:` secret representation with its CRC and key transformation, the response computations and
 * the FFDHE groups. Pure functions shared by the target's state machine and the host library; no
 * sockets, no policy.
 *
 * Exchange (T = target/controller, H = host), each message one AUTH_Send (H->T) or AUTH_Receive (T->H):
 *   H: Negotiate (hashes, DH groups)  T: Challenge (hash, group, C1, seqnum S1, g^x)
 *   H: Reply (R1 = HMAC(Kh', C1' | S1 | TID | 0 | "HostHost" | NQNh | 0 | NQNc), C2, S2, g^y)
 *   T: Success1 (R2 = HMAC(Kc', C2' | S2 | TID | 0 | "Controller" | NQNc | 0 | NQNh) when C2 was sent)
 *   H: Success2 (bidirectional only)          any side: Failure1 (T) / Failure2 (H), then the queue closes
 * Kh' = key transformed with NQNh, Kc' = controller key transformed with NQNc; with a DH group,
 * Cx' = HMAC(H(g^xy), Cx) (the "augmented challenge").
 */
import { createDiffieHellman, createHash, createHmac, type DiffieHellman, randomBytes, timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { NearbpfError } from '../errors.js';
import { FFDHE_PRIMES_HEX } from './ffdhe.js';

/** SECP of AUTH_Send/AUTH_Receive for DH-HMAC-CHAP, and the SPSP0/SPSP1 values it uses. */
export const AUTH_SECP_DHCHAP = 0xe9;
export const AUTH_SPSP0 = 0x01;
export const AUTH_SPSP1 = 0x01;
/** CDW10 of AUTH_Send/AUTH_Receive: byte 41 SPSP0, 42 SPSP1, 43 SECP. */
export const AUTH_CDW10 = ((AUTH_SECP_DHCHAP << 24) | (AUTH_SPSP1 << 16) | (AUTH_SPSP0 << 8)) >>> 0;
/** Connect response DW0: AUTHREQ.ATR (authentication required), AUTHREQ.ASCR (secure channel). */
export const CONNECT_AUTHREQ_ATR = 1 << 17;
export const CONNECT_AUTHREQ_ASCR = 1 << 18;
/** Largest message either side sends (ffdhe8192 reply: 16 + 2 * 64 + 1024) rounded up; receivers allocate this. */
export const AUTH_MAX_MESSAGE_BYTES = 4096;

export const AuthType = { Common: 0x00, Dhchap: 0x01 } as const;
export const AuthMessageId = {
  Negotiate: 0x00,
  Challenge: 0x01,
  Reply: 0x02,
  Success1: 0x03,
  Success2: 0x04,
  Failure2: 0xf0,
  Failure1: 0xf1,
} as const;
export const DHCHAP_AUTH_ID = 0x01;
/** Reason code of Failure1/Failure2, and its explanations. */
export const AUTH_FAILURE_REASON = 0x01;
export const AuthFailure = {
  Failed: 0x01,
  ProtocolUnusable: 0x02,
  ConcatMismatch: 0x03,
  HashUnusable: 0x04,
  DhGroupUnusable: 0x05,
  IncorrectPayload: 0x06,
  IncorrectMessage: 0x07,
} as const;
export type AuthFailureCode = (typeof AuthFailure)[keyof typeof AuthFailure];

export type HashName = 'sha256' | 'sha384' | 'sha512';
export type DhGroupName = 'null' | 'ffdhe2048' | 'ffdhe3072' | 'ffdhe4096' | 'ffdhe6144' | 'ffdhe8192';

export const HASH_IDS: Readonly<Record<HashName, number>> = { sha256: 1, sha384: 2, sha512: 3 };
export const DH_GROUP_IDS: Readonly<Record<DhGroupName, number>> = {
  null: 0,
  ffdhe2048: 1,
  ffdhe3072: 2,
  ffdhe4096: 3,
  ffdhe6144: 4,
  ffdhe8192: 5,
};
export const HASH_NAMES = Object.keys(HASH_IDS) as HashName[];
export const DH_GROUP_NAMES = Object.keys(DH_GROUP_IDS) as DhGroupName[];
const HASH_BY_ID = new Map(HASH_NAMES.map((n) => [HASH_IDS[n], n]));
const GROUP_BY_ID = new Map(DH_GROUP_NAMES.map((n) => [DH_GROUP_IDS[n], n]));
export const hashName = (id: number): HashName | undefined => HASH_BY_ID.get(id);
export const dhGroupName = (id: number): DhGroupName | undefined => GROUP_BY_ID.get(id);
export const hashLength = (h: HashName): number => ({ sha256: 32, sha384: 48, sha512: 64 })[h];

/** A malformed or out-of-place authentication message; `failure` is what Failure1/2 should say. */
export class AuthProtocolError extends NearbpfError {
  readonly code = 'ERR_DHCHAP_PROTOCOL';
  constructor(
    readonly field: string,
    readonly reason: string,
    readonly failure: AuthFailureCode = AuthFailure.IncorrectPayload,
  ) {
    super(`DH-HMAC-CHAP ${field}: ${reason}`);
  }
}

/** A `DHHC-1:` secret that does not parse, has a wrong length or a wrong CRC. */
export class DhchapKeyError extends NearbpfError {
  readonly code = 'ERR_DHCHAP_KEY';
}

/** Authentication did not succeed (wrong key, refused by the peer, peer did not prove itself). */
export class AuthenticationError extends NearbpfError {
  readonly code = 'ERR_AUTHENTICATION';
  constructor(
    message: string,
    readonly failure?: number,
  ) {
    super(message);
  }
}

// ---- messages ----

export interface NegotiateMessage {
  kind: 'negotiate';
  tid: number;
  /** Secure channel concatenation requested (we support none: 0). */
  scC: number;
  hashIds: number[];
  dhGroupIds: number[];
}
export interface ChallengeMessage {
  kind: 'challenge';
  tid: number;
  hashId: number;
  dhGroupId: number;
  seqnum: number;
  challenge: Buffer;
  /** The controller's DH public value (empty for the null group). */
  dhValue: Buffer;
}
export interface ReplyMessage {
  kind: 'reply';
  tid: number;
  response: Buffer;
  /** C2 when the host wants the controller to authenticate too (CVALID). */
  challenge: Buffer | null;
  /** S2; 0 when not bidirectional. */
  seqnum: number;
  dhValue: Buffer;
}
export interface Success1Message {
  kind: 'success1';
  tid: number;
  hashLength: number;
  /** The controller's response R2 (RVALID), when the host sent C2. */
  response: Buffer | null;
}
export interface Success2Message {
  kind: 'success2';
  tid: number;
}
export interface FailureMessage {
  kind: 'failure1' | 'failure2';
  tid: number;
  reason: number;
  explanation: number;
}
export type AuthMessage = NegotiateMessage | ChallengeMessage | ReplyMessage | Success1Message | Success2Message | FailureMessage;

const HEADER_BYTES = 16;
const NEGOTIATE_HEADER_BYTES = 8;
const PROTOCOL_DESCRIPTOR_BYTES = 64;
const MAX_HASH_IDS = 30;
const MAX_DH_IDS = 30;
const FAILURE_BYTES = 8;

function header(bytes: number, type: number, id: number, tid: number): Buffer {
  const b = Buffer.alloc(bytes);
  b[0] = type;
  b[1] = id;
  b.writeUInt16LE(tid & 0xffff, 4);
  return b;
}

export function encodeAuthMessage(m: AuthMessage): Buffer {
  switch (m.kind) {
    case 'negotiate': {
      if (m.hashIds.length > MAX_HASH_IDS || m.dhGroupIds.length > MAX_DH_IDS)
        throw new AuthProtocolError('idlist', 'too many identifiers');
      const b = header(NEGOTIATE_HEADER_BYTES + PROTOCOL_DESCRIPTOR_BYTES, AuthType.Common, AuthMessageId.Negotiate, m.tid);
      b[6] = m.scC;
      b[7] = 1; // NAPD: one protocol descriptor
      const d = NEGOTIATE_HEADER_BYTES;
      b[d] = DHCHAP_AUTH_ID;
      b[d + 2] = m.hashIds.length;
      b[d + 3] = m.dhGroupIds.length;
      m.hashIds.forEach((id, i) => {
        b[d + 4 + i] = id;
      });
      m.dhGroupIds.forEach((id, i) => {
        b[d + 4 + 30 + i] = id;
      });
      return b;
    }
    case 'challenge': {
      const b = header(HEADER_BYTES + m.challenge.length + m.dhValue.length, AuthType.Dhchap, AuthMessageId.Challenge, m.tid);
      b[6] = m.challenge.length;
      b[8] = m.hashId;
      b[9] = m.dhGroupId;
      b.writeUInt16LE(m.dhValue.length, 10);
      b.writeUInt32LE(m.seqnum >>> 0, 12);
      m.challenge.copy(b, HEADER_BYTES);
      m.dhValue.copy(b, HEADER_BYTES + m.challenge.length);
      return b;
    }
    case 'reply': {
      const hl = m.response.length;
      if (m.challenge && m.challenge.length !== hl) throw new AuthProtocolError('cval', 'C2 must be as long as the response');
      const b = header(HEADER_BYTES + 2 * hl + m.dhValue.length, AuthType.Dhchap, AuthMessageId.Reply, m.tid);
      b[6] = hl;
      b[8] = m.challenge ? 1 : 0;
      b.writeUInt16LE(m.dhValue.length, 10);
      b.writeUInt32LE(m.seqnum >>> 0, 12);
      m.response.copy(b, HEADER_BYTES);
      m.challenge?.copy(b, HEADER_BYTES + hl);
      m.dhValue.copy(b, HEADER_BYTES + 2 * hl);
      return b;
    }
    case 'success1': {
      const b = header(HEADER_BYTES + (m.response ? m.response.length : 0), AuthType.Dhchap, AuthMessageId.Success1, m.tid);
      b[6] = m.hashLength;
      b[8] = m.response ? 1 : 0;
      m.response?.copy(b, HEADER_BYTES);
      return b;
    }
    case 'success2':
      return header(HEADER_BYTES, AuthType.Dhchap, AuthMessageId.Success2, m.tid);
    case 'failure1':
    case 'failure2': {
      const id = m.kind === 'failure1' ? AuthMessageId.Failure1 : AuthMessageId.Failure2;
      const b = header(FAILURE_BYTES, AuthType.Common, id, m.tid);
      b[6] = m.reason;
      b[7] = m.explanation;
      return b;
    }
  }
}

function need(b: Buffer, bytes: number, what: string): void {
  if (b.length < bytes) throw new AuthProtocolError(what, `message of ${b.length} bytes, need ${bytes}`);
}

/**
 * Decode one message. Trailing bytes beyond the message are allowed (AUTH_Receive buffers are
 * zero-padded to the allocation length); every length field is checked against the buffer.
 */
export function decodeAuthMessage(b: Buffer): AuthMessage {
  need(b, FAILURE_BYTES, 'header');
  const type = b[0];
  const id = b[1];
  const tid = b.readUInt16LE(4);
  if (type === AuthType.Common) {
    if (id === AuthMessageId.Negotiate) {
      need(b, NEGOTIATE_HEADER_BYTES + PROTOCOL_DESCRIPTOR_BYTES, 'negotiate');
      const napd = b[7];
      if (napd < 1) throw new AuthProtocolError('napd', 'no protocol descriptor', AuthFailure.ProtocolUnusable);
      need(b, NEGOTIATE_HEADER_BYTES + napd * PROTOCOL_DESCRIPTOR_BYTES, 'negotiate descriptors');
      // Only the first DH-HMAC-CHAP descriptor matters.
      for (let i = 0; i < napd; i++) {
        const d = NEGOTIATE_HEADER_BYTES + i * PROTOCOL_DESCRIPTOR_BYTES;
        if (b[d] !== DHCHAP_AUTH_ID) continue;
        const halen = b[d + 2];
        const dhlen = b[d + 3];
        if (halen > MAX_HASH_IDS || dhlen > MAX_DH_IDS)
          throw new AuthProtocolError('halen/dhlen', `at most ${MAX_HASH_IDS} identifiers each`);
        return {
          kind: 'negotiate',
          tid,
          scC: b[6],
          hashIds: [...b.subarray(d + 4, d + 4 + halen)],
          dhGroupIds: [...b.subarray(d + 34, d + 34 + dhlen)],
        };
      }
      throw new AuthProtocolError('authid', 'no DH-HMAC-CHAP protocol descriptor', AuthFailure.ProtocolUnusable);
    }
    if (id === AuthMessageId.Failure1 || id === AuthMessageId.Failure2) {
      return { kind: id === AuthMessageId.Failure1 ? 'failure1' : 'failure2', tid, reason: b[6], explanation: b[7] };
    }
    throw new AuthProtocolError('auth_id', `unknown common message 0x${id.toString(16)}`, AuthFailure.IncorrectMessage);
  }
  if (type !== AuthType.Dhchap)
    throw new AuthProtocolError('auth_type', `unknown message type 0x${type.toString(16)}`, AuthFailure.IncorrectMessage);
  need(b, HEADER_BYTES, 'header');
  const hl = b[6];
  switch (id) {
    case AuthMessageId.Challenge: {
      const dhvlen = b.readUInt16LE(10);
      need(b, HEADER_BYTES + hl + dhvlen, 'challenge');
      return {
        kind: 'challenge',
        tid,
        hashId: b[8],
        dhGroupId: b[9],
        seqnum: b.readUInt32LE(12),
        challenge: Buffer.from(b.subarray(HEADER_BYTES, HEADER_BYTES + hl)),
        dhValue: Buffer.from(b.subarray(HEADER_BYTES + hl, HEADER_BYTES + hl + dhvlen)),
      };
    }
    case AuthMessageId.Reply: {
      const dhvlen = b.readUInt16LE(10);
      need(b, HEADER_BYTES + 2 * hl + dhvlen, 'reply');
      const cvalid = b[8] !== 0;
      return {
        kind: 'reply',
        tid,
        response: Buffer.from(b.subarray(HEADER_BYTES, HEADER_BYTES + hl)),
        challenge: cvalid ? Buffer.from(b.subarray(HEADER_BYTES + hl, HEADER_BYTES + 2 * hl)) : null,
        seqnum: b.readUInt32LE(12),
        dhValue: Buffer.from(b.subarray(HEADER_BYTES + 2 * hl, HEADER_BYTES + 2 * hl + dhvlen)),
      };
    }
    case AuthMessageId.Success1: {
      const rvalid = b[8] !== 0;
      if (rvalid) need(b, HEADER_BYTES + hl, 'success1');
      return {
        kind: 'success1',
        tid,
        hashLength: hl,
        response: rvalid ? Buffer.from(b.subarray(HEADER_BYTES, HEADER_BYTES + hl)) : null,
      };
    }
    case AuthMessageId.Success2:
      return { kind: 'success2', tid };
    default:
      throw new AuthProtocolError('auth_id', `unknown DH-HMAC-CHAP message 0x${id.toString(16)}`, AuthFailure.IncorrectMessage);
  }
}

// ---- secrets ----

/** A DH-HMAC-CHAP secret: 32, 48 or 64 bytes, and the hash of its transformation (none = 0). */
export interface DhchapKey {
  secret: Buffer;
  /** 0: used as is; 1/2/3: transformed with HMAC-SHA-256/384/512 and the NQN before use. */
  transform: 0 | 1 | 2 | 3;
}

export const DHCHAP_KEY_LENGTHS = [32, 48, 64] as const;
const KEY_RE = /^DHHC-1:(0[0-3]):([A-Za-z0-9+/]+={0,2}):?$/;

/** Parse the `DHHC-1:0T:base64(secret || crc32le):` representation (what `nvme gen-dhchap-key` prints). */
export function parseDhchapKey(text: string): DhchapKey {
  const m = KEY_RE.exec(text.trim());
  if (!m) throw new DhchapKeyError("not a DH-HMAC-CHAP secret: expected 'DHHC-1:0T:<base64>:' with T in 0..3");
  const raw = Buffer.from(m[2], 'base64');
  if (raw.toString('base64') !== m[2]) throw new DhchapKeyError('the secret is not canonical base64');
  const len = raw.length - 4;
  if (!(DHCHAP_KEY_LENGTHS as readonly number[]).includes(len)) {
    throw new DhchapKeyError(`the secret holds ${Math.max(0, len)} key bytes; must be 32, 48 or 64`);
  }
  const secret = raw.subarray(0, len);
  if (crc32(secret) !== raw.readUInt32LE(len)) throw new DhchapKeyError('the secret fails its CRC-32 check (mistyped?)');
  return { secret: Buffer.from(secret), transform: Number(m[1]) as DhchapKey['transform'] };
}

export function formatDhchapKey(key: DhchapKey): string {
  const crc = Buffer.alloc(4);
  crc.writeUInt32LE(crc32(key.secret));
  return `DHHC-1:0${key.transform}:${Buffer.concat([key.secret, crc]).toString('base64')}:`;
}

const TRANSFORM_HASH: Record<1 | 2 | 3, HashName> = { 1: 'sha256', 2: 'sha384', 3: 'sha512' };

/** The key actually used in responses: the secret as is, or HMAC(secret, NQN || "NVMe-over-Fabrics"). */
export function transformKey(key: DhchapKey, nqn: string): Buffer {
  if (key.transform === 0) return key.secret;
  return createHmac(TRANSFORM_HASH[key.transform], key.secret).update(nqn, 'utf8').update('NVMe-over-Fabrics').digest();
}

/**
 * A new secret as `nvme gen-dhchap-key` makes it: random `lengthBytes` (or `secret`), and with a
 * transformation hash the stored secret is already transformed with the host NQN (so the key is
 * bound to that host).
 */
export function generateDhchapKey(options: {
  transform: 0 | 1 | 2 | 3;
  lengthBytes?: 32 | 48 | 64;
  secret?: Buffer;
  nqn?: string;
}): DhchapKey {
  const lengthBytes =
    options.lengthBytes ?? (options.transform === 0 ? 32 : (hashLength(TRANSFORM_HASH[options.transform]) as 32 | 48 | 64));
  const raw = options.secret ?? randomBytes(lengthBytes);
  if (raw.length !== lengthBytes) throw new DhchapKeyError(`the secret must be ${lengthBytes} bytes, got ${raw.length}`);
  if (options.transform === 0) return { secret: Buffer.from(raw), transform: 0 };
  if (!options.nqn) throw new DhchapKeyError('a transformed key needs the host NQN');
  const h = TRANSFORM_HASH[options.transform];
  if (hashLength(h) !== lengthBytes) throw new DhchapKeyError(`a key transformed with ${h} must be ${hashLength(h)} bytes`);
  return { secret: transformKey({ secret: raw, transform: options.transform }, options.nqn), transform: options.transform };
}

// ---- responses ----

const seqBytes = (seqnum: number, tid: number) => {
  const b = Buffer.alloc(7);
  b.writeUInt32LE(seqnum >>> 0, 0);
  b.writeUInt16LE(tid & 0xffff, 4);
  return b; // byte 6: SC_C = 0
};

/** Cx' = HMAC(H(session key), Cx) with a DH group; Cx itself with the null group. */
export function augmentChallenge(hash: HashName, challenge: Buffer, sessionKey: Buffer | null): Buffer {
  if (!sessionKey) return challenge;
  return createHmac(hash, createHash(hash).update(sessionKey).digest()).update(challenge).digest();
}

export interface ResponseInput {
  hash: HashName;
  /** The transformed key (Kh' for the host's response, Kc' for the controller's). */
  key: Buffer;
  challenge: Buffer;
  seqnum: number;
  tid: number;
  hostNqn: string;
  subsystemNqn: string;
  sessionKey: Buffer | null;
}

/** HMAC(key, Cx' || seqnum || TID || 0 || label || first NQN || 0 || second NQN). */
function response(i: ResponseInput, label: string, first: string, second: string): Buffer {
  return createHmac(i.hash, i.key)
    .update(augmentChallenge(i.hash, i.challenge, i.sessionKey))
    .update(seqBytes(i.seqnum, i.tid))
    .update(label)
    .update(first, 'utf8')
    .update(Buffer.alloc(1))
    .update(second, 'utf8')
    .digest();
}

/** R1, the host's response to C1. */
export const hostResponse = (i: ResponseInput): Buffer => response(i, 'HostHost', i.hostNqn, i.subsystemNqn);

/** R2, the controller's response to C2. */
export const controllerResponse = (i: ResponseInput): Buffer => response(i, 'Controller', i.subsystemNqn, i.hostNqn);

/** Constant-time comparison of two responses. */
export function responsesEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

// ---- Diffie-Hellman ----

const GROUP_BITS: Record<Exclude<DhGroupName, 'null'>, 2048 | 3072 | 4096 | 6144 | 8192> = {
  ffdhe2048: 2048,
  ffdhe3072: 3072,
  ffdhe4096: 4096,
  ffdhe6144: 6144,
  ffdhe8192: 8192,
};
const primes = new Map<string, Buffer>();

export function ffdhePrime(group: Exclude<DhGroupName, 'null'>): Buffer {
  let p = primes.get(group);
  if (!p) {
    p = Buffer.from(FFDHE_PRIMES_HEX[GROUP_BITS[group]], 'hex');
    primes.set(group, p);
  }
  return p;
}

const leftPad = (b: Buffer, bytes: number) => (b.length >= bytes ? b : Buffer.concat([Buffer.alloc(bytes - b.length), b]));

/** One side's ephemeral DH key: the public value to send and the shared secret from the peer's. */
export interface DhExchange {
  publicValue: Buffer;
  /** Throws AuthProtocolError for a peer value of the wrong size or outside 2..p-2. */
  sharedSecret(peerValue: Buffer): Buffer;
}

export function startDhExchange(group: Exclude<DhGroupName, 'null'>): DhExchange {
  const p = ffdhePrime(group);
  const dh: DiffieHellman = createDiffieHellman(p, 2);
  dh.generateKeys();
  return {
    publicValue: leftPad(dh.getPublicKey(), p.length),
    sharedSecret(peer) {
      if (peer.length !== p.length)
        throw new AuthProtocolError(
          'dhv',
          `DH value of ${peer.length} bytes, ${group} needs ${p.length}`,
          AuthFailure.DhGroupUnusable,
        );
      // 1 < y < p - 1: reject the degenerate values that force a known secret.
      const y = BigInt(`0x${peer.toString('hex')}`);
      const pn = BigInt(`0x${p.toString('hex')}`);
      if (y <= 1n || y >= pn - 1n) throw new AuthProtocolError('dhv', 'DH value out of range', AuthFailure.DhGroupUnusable);
      return leftPad(dh.computeSecret(peer), p.length);
    },
  };
}

/** A fresh challenge and a non-zero sequence number. */
export function newChallenge(hash: HashName): { challenge: Buffer; seqnum: number } {
  let seqnum = 0;
  while (seqnum === 0) seqnum = randomBytes(4).readUInt32LE(0);
  return { challenge: randomBytes(hashLength(hash)), seqnum };
}
