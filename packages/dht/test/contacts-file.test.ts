import { describe, expect, it } from 'vitest';
import { parseContactsFile } from '../src/contacts-file.js';

describe('saved contacts file', () => {
  const good = { id: 'ab'.repeat(16), host: '203.0.113.5', port: 8889 };
  it.each([
    ['not JSON', '{ nope', []],
    ['no list', '{"v":1}', []],
    ['a list of garbage', JSON.stringify({ contacts: [null, 1, 'x', { id: 'AB'.repeat(16), host: '203.0.113.5', port: 8889 }] }), []],
    [
      'bad host and port',
      JSON.stringify({
        contacts: [
          { ...good, host: 'example.org' },
          { ...good, port: 0 },
          { ...good, port: 1.5 },
        ],
      }),
      [],
    ],
    [
      'good ones, duplicates dropped',
      JSON.stringify({ contacts: [good, good, { ...good, id: 'cd'.repeat(16), host: '2001:db8::1' }] }),
      [good, { ...good, id: 'cd'.repeat(16), host: '2001:db8::1' }],
    ],
  ])('%s', (_, text, want) => {
    expect(parseContactsFile(text)).toEqual(want);
  });
  it('reads at most max contacts', () => {
    const many = Array.from({ length: 10 }, (_, i) => ({ ...good, id: i.toString(16).padStart(32, '0') }));
    expect(parseContactsFile(JSON.stringify({ contacts: many }), 3)).toHaveLength(3);
  });
});
