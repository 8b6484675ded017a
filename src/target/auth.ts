/**
 * DH-HMAC-CHAP on the target: one `QueueAuthentication` per queue of a host that has a key (every
 * queue authenticates, admin and I/O). AUTH_Send carries the host's messages (negotiate, reply,
 * success2, failure2) and AUTH_Receive fetches ours (challenge, success1, failure1); the queue is
 * usable for other commands only once `authenticated`. Any failure ends in Failure1 (or the host's
 * Failure2) and the queue is closed after the answer. The codec and the cryptography live in
 * src/protocol/dhchap.ts; this is the policy and the state.
 */
import {
  AUTH_CDW10,
  AUTH_FAILURE_REASON,
  AuthFailure,
  type AuthFailureCode,
  type AuthMessage,
  AuthProtocolError,
  controllerResponse,
  DH_GROUP_IDS,
  type DhchapKey,
  type DhExchange,
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
  responsesEqual,
  startDhExchange,
  transformKey,
} from '../protocol/dhchap.js';
import type { Sqe } from '../protocol/sqe.js';
import { type Completion, INVALID_FIELD, success } from './completion.js';

export interface HostCredentials {
  /** The host's secret: the host proves it knows it. */
  key: DhchapKey;
  /** When set, the controller proves it knows this one if the host asks (bidirectional). */
  controllerKey?: DhchapKey;
}

export interface AuthPolicy {
  /** Preference order; the first one the host offers is used. */
  hashes: readonly HashName[];
  dhGroups: readonly DhGroupName[];
}

type State =
  | 'negotiate' // waiting for Negotiate
  | 'challenge' // Negotiate accepted; AUTH_Receive gets the Challenge
  | 'reply' // Challenge sent; waiting for Reply
  | 'success1' // Reply verified; AUTH_Receive gets Success1
  | 'success2' // Success1 with R2 sent; waiting for Success2
  | 'failure1' // AUTH_Receive gets Failure1, then the queue closes
  | 'authenticated'
  | 'failed';

/** What the target does with a command's answer: send it, and maybe close the queue after it. */
export interface AuthOutcome {
  completion: Completion;
  close: boolean;
  /** Set once, when the exchange ends: for the log. */
  result?: { ok: true; hash: HashName; dhGroup: DhGroupName; bidirectional: boolean } | { ok: false; reason: string };
}

export class QueueAuthentication {
  private state: State = 'negotiate';
  private tid = 0;
  private hash: HashName = 'sha256';
  private dhGroup: DhGroupName = 'null';
  private dh: DhExchange | null = null;
  private sessionKey: Buffer | null = null;
  private c1: Buffer = Buffer.alloc(0);
  private s1 = 0;
  private r2: Buffer | null = null;
  private failure: AuthFailureCode = AuthFailure.Failed;
  private failureReason = '';
  /** True once the host proved its key on this queue (stays true during a re-authentication). */
  authenticated = false;

  constructor(
    private readonly hostNqn: string,
    private readonly subsystemNqn: string,
    /** null: the host has no key here, so its attempt fails (it may still try, as a host can). */
    private readonly credentials: HostCredentials | null,
    private readonly policy: AuthPolicy,
  ) {}

  get finished(): boolean {
    return this.state === 'failed';
  }

  /** AUTH_Send: a message from the host. `data` is the command's data (TL bytes). */
  send(sqe: Sqe, data: Buffer | null): AuthOutcome {
    const tl = sqe.cdw11 >>> 0;
    if ((sqe.cdw10 & 0xffffff00) >>> 0 !== AUTH_CDW10 || tl === 0 || !data || data.length !== tl) {
      return { completion: INVALID_FIELD, close: false };
    }
    let m: AuthMessage;
    try {
      m = decodeAuthMessage(data);
    } catch (e) {
      if (!(e instanceof AuthProtocolError)) throw e;
      return this.fail(e.failure, e.message);
    }
    if (m.kind === 'failure2') {
      this.state = 'failed';
      this.authenticated = false;
      return {
        completion: success(),
        close: true,
        result: { ok: false, reason: `host sent Failure2 (explanation ${m.explanation})` },
      };
    }
    if (m.kind === 'negotiate') return this.negotiate(m.tid, m.scC, m.hashIds, m.dhGroupIds);
    if (m.tid !== this.tid) return this.fail(AuthFailure.IncorrectPayload, `transaction ${m.tid}, expected ${this.tid}`);
    if (m.kind === 'reply' && this.state === 'reply') return this.reply(m.response, m.challenge, m.seqnum, m.dhValue);
    if (m.kind === 'success2' && this.state === 'success2') {
      this.state = 'authenticated';
      this.authenticated = true;
      return { completion: success(), close: false, result: this.okResult(true) };
    }
    return this.fail(AuthFailure.IncorrectMessage, `unexpected ${m.kind} in state ${this.state}`);
  }

  /** AUTH_Receive: our next message, in at most AL bytes. */
  receive(sqe: Sqe): AuthOutcome {
    const al = sqe.cdw11 >>> 0;
    if ((sqe.cdw10 & 0xffffff00) >>> 0 !== AUTH_CDW10 || al === 0 || al > sqe.sglLength) {
      return { completion: INVALID_FIELD, close: false };
    }
    let m: AuthMessage;
    let next: State;
    let result: AuthOutcome['result'];
    let close = false;
    switch (this.state) {
      case 'challenge': {
        const { challenge, seqnum } = newChallenge(this.hash);
        this.c1 = challenge;
        this.s1 = seqnum;
        this.dh = this.dhGroup === 'null' ? null : startDhExchange(this.dhGroup);
        m = {
          kind: 'challenge',
          tid: this.tid,
          hashId: HASH_IDS[this.hash],
          dhGroupId: DH_GROUP_IDS[this.dhGroup],
          seqnum,
          challenge,
          dhValue: this.dh ? this.dh.publicValue : Buffer.alloc(0),
        };
        next = 'reply';
        break;
      }
      case 'success1':
        m = { kind: 'success1', tid: this.tid, hashLength: hashLength(this.hash), response: this.r2 };
        if (this.r2) next = 'success2';
        else {
          next = 'authenticated';
          result = this.okResult(false);
        }
        break;
      case 'failure1':
        m = { kind: 'failure1', tid: this.tid, reason: AUTH_FAILURE_REASON, explanation: this.failure };
        next = 'failed';
        close = true;
        result = { ok: false, reason: this.failureReason };
        break;
      default:
        // Nothing to fetch now: the host is out of step.
        this.failure = AuthFailure.IncorrectMessage;
        this.failureReason = `AUTH_Receive in state ${this.state}`;
        m = { kind: 'failure1', tid: this.tid, reason: AUTH_FAILURE_REASON, explanation: this.failure };
        next = 'failed';
        close = true;
        result = { ok: false, reason: this.failureReason };
    }
    const bytes = encodeAuthMessage(m);
    if (bytes.length > al) {
      this.state = 'failed';
      return {
        completion: INVALID_FIELD,
        close: true,
        result: { ok: false, reason: `AUTH_Receive allocation of ${al} bytes is too small` },
      };
    }
    this.state = next;
    if (next === 'authenticated') this.authenticated = true;
    if (next === 'failed') this.authenticated = false;
    return { completion: success(0, bytes), close, result };
  }

  private okResult(bidirectional: boolean): AuthOutcome['result'] {
    this.dh = null;
    this.sessionKey = null;
    return { ok: true, hash: this.hash, dhGroup: this.dhGroup, bidirectional };
  }

  /** The exchange failed: the host learns it from the Failure1 it fetches next. */
  private fail(explanation: AuthFailureCode, reason: string): AuthOutcome {
    this.state = 'failure1';
    this.failure = explanation;
    this.failureReason = reason;
    this.authenticated = false;
    return { completion: success(), close: false };
  }

  private negotiate(tid: number, scC: number, hashIds: number[], groupIds: number[]): AuthOutcome {
    this.tid = tid;
    this.r2 = null;
    if (scC !== 0) return this.fail(AuthFailure.ConcatMismatch, 'secure channel concatenation is not supported');
    const offered = new Set(hashIds.map(hashName));
    const hash = this.policy.hashes.find((h) => offered.has(h));
    if (!hash) return this.fail(AuthFailure.HashUnusable, `no common hash (host offered ${hashIds.join(',')})`);
    const groups = new Set(groupIds.map(dhGroupName));
    const group = this.policy.dhGroups.find((g) => groups.has(g));
    if (!group) return this.fail(AuthFailure.DhGroupUnusable, `no common DH group (host offered ${groupIds.join(',')})`);
    this.hash = hash;
    this.dhGroup = group;
    this.state = 'challenge';
    return { completion: success(), close: false };
  }

  private reply(response: Buffer, c2: Buffer | null, s2: number, dhValue: Buffer): AuthOutcome {
    const hl = hashLength(this.hash);
    if (response.length !== hl)
      return this.fail(AuthFailure.HashUnusable, `response of ${response.length} bytes, ${this.hash} needs ${hl}`);
    if (this.dh) {
      try {
        this.sessionKey = this.dh.sharedSecret(dhValue);
      } catch (e) {
        if (e instanceof AuthProtocolError) return this.fail(e.failure, e.message);
        throw e;
      }
    } else if (dhValue.length !== 0) {
      return this.fail(AuthFailure.IncorrectPayload, 'DH value with the null group');
    }
    if (!this.credentials) return this.fail(AuthFailure.Failed, 'no key is configured for this host');
    const expected = hostResponse({
      hash: this.hash,
      key: transformKey(this.credentials.key, this.hostNqn),
      challenge: this.c1,
      seqnum: this.s1,
      tid: this.tid,
      hostNqn: this.hostNqn,
      subsystemNqn: this.subsystemNqn,
      sessionKey: this.sessionKey,
    });
    if (!responsesEqual(expected, response)) return this.fail(AuthFailure.Failed, 'host response does not match (wrong key?)');
    if (c2 && s2 !== 0) {
      if (!this.credentials?.controllerKey) {
        return this.fail(AuthFailure.Failed, 'host asked the controller to authenticate but no controller key is configured');
      }
      this.r2 = controllerResponse({
        hash: this.hash,
        key: transformKey(this.credentials.controllerKey, this.subsystemNqn),
        challenge: c2,
        seqnum: s2,
        tid: this.tid,
        hostNqn: this.hostNqn,
        subsystemNqn: this.subsystemNqn,
        sessionKey: this.sessionKey,
      });
    }
    // Without bidirectional authentication the host is authenticated now; with it, at Success2.
    if (this.r2 === null) this.authenticated = true;
    this.state = 'success1';
    return { completion: success(), close: false };
  }
}

export const DEFAULT_AUTH_POLICY: AuthPolicy = {
  hashes: ['sha512', 'sha384', 'sha256'],
  dhGroups: ['ffdhe2048', 'ffdhe3072', 'ffdhe4096', 'ffdhe6144', 'ffdhe8192', 'null'],
};
