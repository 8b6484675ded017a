import { NearbpfError } from '../errors.js';

/**
 * A PDU that breaks the NVMe/TCP framing or sequencing rules. Fatal for the connection: the receiver
 * answers with a TermReq carrying `fes` and `fei` (byte offset of the bad field in the PDU) and closes.
 */
export class PduError extends NearbpfError {
  readonly code = 'ERR_NVME_TCP_PDU';
  constructor(
    /** Name of the offending field, e.g. `plen`, `hlen`, `pdo`, `type`, `hdgst`. */
    readonly field: string,
    readonly reason: string,
    readonly fes: number,
    readonly fei: number,
    readonly value?: number,
  ) {
    super(`NVMe/TCP PDU field ${field}: ${reason}${value === undefined ? '' : ` (${value})`}`);
  }
}

/** A data digest mismatch: not fatal for the connection, the command fails with a transient transport error. */
export class DataDigestError extends NearbpfError {
  readonly code = 'ERR_NVME_TCP_DATA_DIGEST';
  constructor(
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`data digest mismatch: expected 0x${expected.toString(16)}, got 0x${actual.toString(16)}`);
  }
}

/** An NVMe command that completed with a non-zero status. */
export class NvmeStatusError extends NearbpfError {
  readonly code = 'ERR_NVME_STATUS';
  constructor(
    /** Status code type. */
    readonly sct: number,
    /** Status code. */
    readonly sc: number,
    readonly dnr: boolean,
    readonly opcode: number,
    /** CQE DW0, which some failures use (e.g. Connect's invalid-parameter attributes). */
    readonly dw0 = 0,
    /** Command identifier and queue of the failed command, when known. */
    readonly cid?: number,
    readonly qid?: number,
  ) {
    super(`NVMe command 0x${opcode.toString(16)} failed: SCT ${sct} SC 0x${sc.toString(16)}${dnr ? ' (DNR)' : ''}`);
  }
}

/** The transport failed: connection closed or reset, TermReq received, a response timed out. */
export class TransportError extends NearbpfError {
  readonly code = 'ERR_NVME_TCP_TRANSPORT';
  constructor(
    readonly reason: string,
    readonly fes?: number,
  ) {
    super(reason);
  }
}

/** A configuration value is invalid. `field` is a JSON-path-like name such as `subsystems[0].namespaces[1].blockSize`. */
export class ConfigError extends NearbpfError {
  readonly code = 'ERR_CONFIG';
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`config ${field}: ${reason}`);
  }
}
