/**
 * DH-HMAC-CHAP on the host side: after a Connect whose response asks for authentication (AUTHREQ.ATR),
 * run Negotiate -> Challenge -> Reply -> Success1 (-> Success2) on that queue with AUTH_Send and
 * AUTH_Receive. With a controller key the controller must prove itself too; a wrong controller
 * response is answered with Failure2 and the queue fails. Codec and cryptography: src/protocol/dhchap.ts.
 */
import { AdminOpcode, FabricsType } from '../protocol/constants.js';
import {
  AUTH_CDW10,
  AUTH_FAILURE_REASON,
  AUTH_MAX_MESSAGE_BYTES,
  AuthenticationError,
  AuthFailure,
  type AuthFailureCode,
  type AuthMessage,
  AuthProtocolError,
  controllerResponse,
  DH_GROUP_IDS,
  type DhchapKey,
  type DhGroupName,
  decodeAuthMessage,
  dhGroupName,
  encodeAuthMessage,
  HASH_IDS,
  type HashName,
  hashLength,
  hashName,
  hostResponse,
  newChallenge,
  parseDhchapKey,
  responsesEqual,
  startDhExchange,
  transformKey,
} from '../protocol/dhchap.js';
import { makeSqe } from '../protocol/sqe.js';
import type { HostQueue } from './queue.js';

export interface DhchapOptions {
  /** The host's secret (`DHHC-1:...`), as nvme-cli's --dhchap-secret. */
  secret: string | DhchapKey;
  /** The controller's secret: when given, the controller must authenticate too (bidirectional). */
  controllerSecret?: string | DhchapKey;
  /** What we offer, in order (default: every hash and every group). */
  hashes?: readonly HashName[];
  dhGroups?: readonly DhGroupName[];
}

export interface AuthResult {
  hash: HashName;
  dhGroup: DhGroupName;
  bidirectional: boolean;
}

const keyOf = (k: string | DhchapKey): DhchapKey => (typeof k === 'string' ? parseDhchapKey(k) : k);

/** Parse the secrets once (typed errors for a bad key before any socket is opened). */
export function resolveDhchap(o: DhchapOptions): {
  key: DhchapKey;
  controllerKey: DhchapKey | null;
  hashes: HashName[];
  dhGroups: DhGroupName[];
} {
  return {
    key: keyOf(o.secret),
    controllerKey: o.controllerSecret === undefined ? null : keyOf(o.controllerSecret),
    hashes: [...(o.hashes ?? ['sha256', 'sha384', 'sha512'])],
    dhGroups: [...(o.dhGroups ?? ['null', 'ffdhe2048', 'ffdhe3072', 'ffdhe4096', 'ffdhe6144', 'ffdhe8192'])],
  };
}

let nextTransaction = (Math.random() * 0x10000) & 0xffff;

async function send(q: HostQueue, m: AuthMessage): Promise<void> {
  const data = encodeAuthMessage(m);
  await q.submit(makeSqe({ opcode: AdminOpcode.Fabrics, nsid: FabricsType.AuthSend, cdw10: AUTH_CDW10, cdw11: data.length }), {
    dataOut: data,
  });
}

async function receive(q: HostQueue): Promise<AuthMessage> {
  const r = await q.submit(
    makeSqe({ opcode: AdminOpcode.Fabrics, nsid: FabricsType.AuthReceive, cdw10: AUTH_CDW10, cdw11: AUTH_MAX_MESSAGE_BYTES }),
    { dataInBytes: AUTH_MAX_MESSAGE_BYTES, variableDataIn: true },
  );
  return decodeAuthMessage(r.data ?? Buffer.alloc(0));
}

const EXPLANATIONS: Record<number, string> = {
  [AuthFailure.Failed]: 'authentication failed (wrong key?)',
  [AuthFailure.ProtocolUnusable]: 'protocol not usable',
  [AuthFailure.ConcatMismatch]: 'secure channel concatenation mismatch',
  [AuthFailure.HashUnusable]: 'no usable hash function',
  [AuthFailure.DhGroupUnusable]: 'no usable DH group',
  [AuthFailure.IncorrectPayload]: 'incorrect payload',
  [AuthFailure.IncorrectMessage]: 'incorrect message',
};

/** Authenticate one queue right after its Connect. Throws AuthenticationError; the caller closes the queue. */
export async function authenticateQueue(
  q: HostQueue,
  o: ReturnType<typeof resolveDhchap>,
  hostNqn: string,
  subsystemNqn: string,
): Promise<AuthResult> {
  const tid = nextTransaction;
  nextTransaction = (nextTransaction + 1) & 0xffff;
  const hashIds = o.hashes.map((h) => HASH_IDS[h]);
  const groupIds = o.dhGroups.map((g) => DH_GROUP_IDS[g]);
  await send(q, { kind: 'negotiate', tid, scC: 0, hashIds, dhGroupIds: groupIds });
  const challenge = await receive(q);
  const refused = (m: AuthMessage) =>
    m.kind === 'failure1'
      ? new AuthenticationError(
          `the controller refused authentication: ${EXPLANATIONS[m.explanation] ?? `explanation ${m.explanation}`}`,
          m.explanation,
        )
      : null;
  const fail = async (explanation: AuthFailureCode, message: string): Promise<never> => {
    // Tell the controller (Failure2) before giving up; it closes the queue.
    await send(q, { kind: 'failure2', tid, reason: AUTH_FAILURE_REASON, explanation }).catch(() => {});
    throw new AuthenticationError(message, explanation);
  };
  if (refused(challenge)) throw refused(challenge);
  if (challenge.kind !== 'challenge' || challenge.tid !== tid)
    return fail(AuthFailure.IncorrectMessage, `expected a challenge, got ${challenge.kind}`);
  const hash = hashName(challenge.hashId);
  const group = dhGroupName(challenge.dhGroupId);
  if (!hash || !o.hashes.includes(hash))
    return fail(AuthFailure.HashUnusable, `the controller chose hash ${challenge.hashId}, not offered`);
  if (!group || !o.dhGroups.includes(group))
    return fail(AuthFailure.DhGroupUnusable, `the controller chose DH group ${challenge.dhGroupId}, not offered`);
  if (challenge.challenge.length !== hashLength(hash))
    return fail(AuthFailure.IncorrectPayload, 'challenge length does not match the hash');
  let sessionKey: Buffer | null = null;
  let dhValue: Buffer = Buffer.alloc(0);
  if (group !== 'null') {
    const dh = startDhExchange(group);
    try {
      sessionKey = dh.sharedSecret(challenge.dhValue);
    } catch (e) {
      if (e instanceof AuthProtocolError) return fail(e.failure, e.message);
      throw e;
    }
    dhValue = dh.publicValue;
  } else if (challenge.dhValue.length !== 0) {
    return fail(AuthFailure.IncorrectPayload, 'DH value with the null group');
  }
  const response = hostResponse({
    hash,
    key: transformKey(o.key, hostNqn),
    challenge: challenge.challenge,
    seqnum: challenge.seqnum,
    tid,
    hostNqn,
    subsystemNqn,
    sessionKey,
  });
  const c2 = o.controllerKey ? newChallenge(hash) : null;
  await send(q, { kind: 'reply', tid, response, challenge: c2?.challenge ?? null, seqnum: c2?.seqnum ?? 0, dhValue });
  const success1 = await receive(q);
  if (refused(success1)) throw refused(success1);
  if (success1.kind !== 'success1' || success1.tid !== tid)
    return fail(AuthFailure.IncorrectMessage, `expected success1, got ${success1.kind}`);
  if (o.controllerKey && c2) {
    const expected = controllerResponse({
      hash,
      key: transformKey(o.controllerKey, subsystemNqn),
      challenge: c2.challenge,
      seqnum: c2.seqnum,
      tid,
      hostNqn,
      subsystemNqn,
      sessionKey,
    });
    if (!success1.response || !responsesEqual(expected, success1.response)) {
      return fail(AuthFailure.Failed, 'the controller failed to authenticate (wrong controller key, or not the real target)');
    }
    await send(q, { kind: 'success2', tid });
  }
  return { hash, dhGroup: group, bidirectional: o.controllerKey !== null };
}
