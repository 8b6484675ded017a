/** What a command handler returns: the CQE's status and DW0/DW1, plus data for the host if any. */
import { GenericStatus, StatusCodeType } from '../protocol/constants.js';
import { makeStatus } from '../protocol/sqe.js';

export interface Completion {
  status: number;
  dw0: number;
  dw1: number;
  /** Data for the host (C2HData), sent only on success and cut to the command's transfer length. */
  data: Buffer | null;
  /** Where `data` goes once it has been sent (a pooled buffer), if anywhere. */
  dataRelease?: (buf: Buffer) => void;
  /** Why the target failed the command (an errno and its message), for the log; never sent to the host. */
  error?: string;
}

export const success = (dw0 = 0, data: Buffer | null = null, dw1 = 0): Completion => ({ status: 0, dw0, dw1, data });

export const failure = (sct: number, sc: number, dnr = true, dw0 = 0): Completion => ({
  status: makeStatus(sct, sc, dnr),
  dw0,
  dw1: 0,
  data: null,
});

export const generic = (sc: number, dnr = true): Completion => failure(StatusCodeType.Generic, sc, dnr);
export const specific = (sc: number, dnr = true, dw0 = 0): Completion => failure(StatusCodeType.CommandSpecific, sc, dnr, dw0);

export const INVALID_FIELD = generic(GenericStatus.InvalidField);
export const INVALID_OPCODE = generic(GenericStatus.InvalidOpcode);
export const INVALID_NAMESPACE = generic(GenericStatus.InvalidNamespace);
export const LBA_OUT_OF_RANGE = generic(GenericStatus.LbaOutOfRange);
export const SEQUENCE_ERROR = generic(GenericStatus.CommandSequenceError);
