export * from './host.js';
export * from './programs.js';
export * from './queue.js';
