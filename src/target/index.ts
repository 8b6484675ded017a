export * from './config.js';
export {
  type ClientInteropResult,
  INTEROP_USAGE,
  InteropError,
  type InteropResult,
  interopCommand,
  runClientInterop,
  runInterop,
} from './interop/qemu.js';
export * from './logger.js';
export { parseListen, runServe, SERVE_USAGE, type ServeOptions, serveCommand } from './serve.js';
export * from './target.js';
