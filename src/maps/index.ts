export * from './errors.js';
export { mapHelpers } from './helpers.js';
export * from './map.js';
