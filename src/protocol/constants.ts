/**
 * Numbers from the NVMe over TCP transport specification and the NVMe base / NVM command set
 * specifications that both the target and the client need.
 */

/** PDU types (common header byte 0). */
export const PduType = {
  ICReq: 0x00,
  ICResp: 0x01,
  H2CTermReq: 0x02,
  C2HTermReq: 0x03,
  CapsuleCmd: 0x04,
  CapsuleResp: 0x05,
  H2CData: 0x06,
  C2HData: 0x07,
  R2T: 0x09,
} as const;
export type PduTypeValue = (typeof PduType)[keyof typeof PduType];

/** Common header flags (byte 1). */
export const PduFlags = {
  HDGSTF: 0x01,
  DDGSTF: 0x02,
  /** H2CData/C2HData: last PDU of the transfer (of an R2T for H2C, of the command for C2H). */
  LAST_PDU: 0x04,
  /** C2HData: the command succeeded and no CapsuleResp follows. We never set it (always send the response). */
  SUCCESS: 0x08,
} as const;

/** Header lengths (hlen) per PDU type; each type has exactly one. */
export const PDU_HEADER_BYTES = {
  [PduType.ICReq]: 128,
  [PduType.ICResp]: 128,
  [PduType.H2CTermReq]: 24,
  [PduType.C2HTermReq]: 24,
  [PduType.CapsuleCmd]: 72,
  [PduType.CapsuleResp]: 24,
  [PduType.H2CData]: 24,
  [PduType.C2HData]: 24,
  [PduType.R2T]: 24,
} as const satisfies Record<number, number>;

export const COMMON_HEADER_BYTES = 8;
export const DIGEST_BYTES = 4;
export const SQE_BYTES = 64;
export const CQE_BYTES = 16;
/** The smallest MAXH2CDATA a controller may advertise (TCP transport 1.0). */
export const MIN_MAX_H2C_DATA_BYTES = 4096;
/** TermReq PDUs carry at most this many bytes of the offending header (plen 24..152). */
export const MAX_TERM_REQ_ERROR_HEADER_BYTES = 128;
/** In-capsule data the admin queue accepts: Connect's 1024 bytes and Linux's 8 KiB admin limit. */
export const ADMIN_IN_CAPSULE_BYTES = 8192;
export const PFV_1_0 = 0;

/** ICReq/ICResp DGST byte. */
export const DigestEnable = { HEADER: 0x01, DATA: 0x02 } as const;

/** TermReq Fatal Error Status (FES). */
export const FatalErrorStatus = {
  InvalidPduHeaderField: 0x01,
  PduSequenceError: 0x02,
  HeaderDigestError: 0x03,
  DataTransferOutOfRange: 0x04,
  DataTransferLimitExceeded: 0x05,
  UnsupportedParameter: 0x06,
} as const;

/** Admin command opcodes. */
export const AdminOpcode = {
  GetLogPage: 0x02,
  Identify: 0x06,
  Abort: 0x08,
  SetFeatures: 0x09,
  GetFeatures: 0x0a,
  AsyncEventRequest: 0x0c,
  KeepAlive: 0x18,
  Fabrics: 0x7f,
} as const;

/** NVM command set I/O opcodes. */
export const IoOpcode = {
  Flush: 0x00,
  Write: 0x01,
  Read: 0x02,
  WriteZeroes: 0x08,
  DatasetManagement: 0x09,
} as const;

/** Fabrics command types (FCTYPE, SQE byte 4). */
export const FabricsType = {
  PropertySet: 0x00,
  Connect: 0x01,
  PropertyGet: 0x04,
  AuthSend: 0x05,
  AuthReceive: 0x06,
  Disconnect: 0x08,
} as const;

/** Controller properties (the fabrics stand-in for PCIe registers), byte offsets. */
export const Property = {
  CAP: 0x00,
  VS: 0x08,
  CC: 0x14,
  CSTS: 0x1c,
  NSSR: 0x20,
} as const;

export const CC_EN = 0x1;
export const CC_SHN_SHIFT = 14;
export const CC_SHN_MASK = 0x3 << CC_SHN_SHIFT;
export const CSTS_RDY = 0x1;
export const CSTS_CFS = 0x2;
export const CSTS_SHST_COMPLETE = 0x2 << 2;
export const CSTS_SHST_MASK = 0x3 << 2;

/** Identify CNS values. */
export const Cns = {
  Namespace: 0x00,
  Controller: 0x01,
  ActiveNamespaceList: 0x02,
  NamespaceDescriptors: 0x03,
  IoCommandSetController: 0x06,
} as const;

/** Log page identifiers. */
export const LogPage = {
  ErrorInformation: 0x01,
  Smart: 0x02,
  FirmwareSlot: 0x03,
  CommandsSupported: 0x05,
  Discovery: 0x70,
} as const;

/** Feature identifiers. */
export const Feature = {
  Arbitration: 0x01,
  PowerManagement: 0x02,
  TemperatureThreshold: 0x04,
  ErrorRecovery: 0x05,
  VolatileWriteCache: 0x06,
  NumberOfQueues: 0x07,
  InterruptCoalescing: 0x08,
  InterruptVectorConfig: 0x09,
  WriteAtomicity: 0x0a,
  AsyncEventConfig: 0x0b,
  KeepAliveTimer: 0x0f,
} as const;

/** Status code types (SCT). */
export const StatusCodeType = { Generic: 0, CommandSpecific: 1, MediaError: 2, Path: 3 } as const;

/** Generic command status (SCT 0). */
export const GenericStatus = {
  Success: 0x00,
  InvalidOpcode: 0x01,
  InvalidField: 0x02,
  CommandIdConflict: 0x03,
  DataTransferError: 0x04,
  InternalError: 0x06,
  AbortRequested: 0x07,
  InvalidNamespace: 0x0b,
  CommandSequenceError: 0x0c,
  InvalidSglDescriptor: 0x0d,
  DataSglLengthInvalid: 0x0f,
  SglDescriptorTypeInvalid: 0x11,
  NamespaceWriteProtected: 0x20,
  TransientTransportError: 0x22,
  LbaOutOfRange: 0x80,
} as const;

/** Command-specific status (SCT 1). */
export const CommandSpecificStatus = {
  InvalidQueueIdentifier: 0x01,
  InvalidQueueSize: 0x02,
  AsyncEventLimitExceeded: 0x05,
  InvalidLogPage: 0x09,
  FeatureNotSaveable: 0x0d,
  ConnectIncompatibleFormat: 0x80,
  ConnectControllerBusy: 0x81,
  ConnectInvalidParameters: 0x82,
  ConnectInvalidHost: 0x84,
  /** A queue of a host that must authenticate got a command other than AUTH_Send/AUTH_Receive first. */
  AuthenticationRequired: 0x91,
} as const;

/** Media and data integrity errors (SCT 2). */
export const MediaErrorStatus = { WriteFault: 0x80, UnrecoveredReadError: 0x81 } as const;

/** SGL descriptor type byte (SQE byte 39): data block/offset (in-capsule) and transport data block. */
export const SGL_IN_CAPSULE = 0x01;
export const SGL_TRANSPORT = 0x5a;
/** SQE flags PSDT = 01b: SGL for data (bits 7:6). */
export const SQE_FLAGS_SGL = 0x40;

export const DISCOVERY_NQN = 'nqn.2014-08.org.nvmexpress.discovery';
export const NQN_MAX_BYTES = 223;
/** Controller ID that asks the target to allocate one (admin Connect). */
export const CNTLID_DYNAMIC = 0xffff;
export const CNTLID_MAX = 0xffef;
/** CDW12 bit 30 of a Read/Write: force unit access. */
export const RW_FUA = 1 << 30;
/** Dataset Management CDW11 bit: deallocate. */
export const DSM_DEALLOCATE = 1 << 2;
export const DSM_RANGE_BYTES = 16;
export const IDENTIFY_BYTES = 4096;
export const CONNECT_DATA_BYTES = 1024;
export const DISCOVERY_LOG_ENTRY_BYTES = 1024;
/** NVMe version reported in VS and Identify VER: 1.3.0 (no 2.0 features are offered). */
export const NVME_VERSION = 0x00010300;
