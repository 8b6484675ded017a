export * from './auth.js';
export * from './host.js';
export * from './identity.js';
export * from './programs.js';
export * from './queue.js';
