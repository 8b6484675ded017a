import assert from 'node:assert/strict';
import { it } from 'node:test';
import { COMMANDS } from './index.js';

it('every lazily loaded command has the name and summary its table entry promises', async () => {
  for (const [name, entry] of COMMANDS) {
    const command = await entry.load();
    assert.equal(command.name, name);
    assert.equal(command.summary, entry.summary, name);
  }
});
