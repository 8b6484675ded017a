export * from './constants.js';
export * from './crc32c.js';
export * from './dhchap.js';
export * from './errors.js';
export * from './fabrics.js';
export * from './framer.js';
export * from './pdu.js';
export * from './sqe.js';
