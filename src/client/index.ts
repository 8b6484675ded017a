export * from './host.js';
export * from './queue.js';
