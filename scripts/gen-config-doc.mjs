// Writes docs/configuration.md from the configuration schema (run through `npm run docs:config`).
import { writeFileSync } from 'node:fs';
import { renderConfigReference } from '../dist/target/config-schema.js';

writeFileSync(new URL('../docs/configuration.md', import.meta.url), renderConfigReference());
