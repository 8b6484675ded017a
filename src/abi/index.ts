export * from './context.js';
export * from './helpers.js';
export * from './limits.js';
export * from './maps.js';
export * from './program-types.js';
