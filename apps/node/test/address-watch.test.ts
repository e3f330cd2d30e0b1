import type { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { addressChange, interfaceAddresses, watchAddresses } from '../src/address-watch.js';

type Ifaces = ReturnType<typeof networkInterfaces>;
const v4 = (address: string, internal = false) => ({
  address,
  family: 'IPv4' as const,
  internal,
  netmask: '255.255.255.0',
  mac: '',
  cidr: null,
});
const v6 = (address: string, internal = false) => ({
  address,
  family: 'IPv6' as const,
  internal,
  netmask: 'ffff:ffff:ffff:ffff::',
  mac: '',
  cidr: null,
  scopeid: 0,
});

describe('address watch', () => {
  it('keeps the addresses a record can name: no loopback, no link-local IPv6', () => {
    const ifaces: Ifaces = {
      lo: [v4('127.0.0.1', true), v6('::1', true)],
      eth0: [v4('10.1.0.10'), v6('fe80::1'), v6('2001:db8:1::10')],
      wlan0: [v4('192.168.1.20'), v6('FE90::2')],
    };
    expect(interfaceAddresses(ifaces)).toEqual(['10.1.0.10', '192.168.1.20', '2001:db8:1::10']);
  });

  it('a change names what appeared and what went; equal sets are no change', () => {
    const table: Array<[string[], string[], ReturnType<typeof addressChange>]> = [
      [['10.1.0.10'], ['10.1.0.10'], undefined],
      [['10.1.0.10', '2001:db8:1::10'], ['2001:db8:1::10', '10.1.0.10'], undefined],
      [['10.1.0.10'], ['10.2.0.10'], { added: ['10.2.0.10'], removed: ['10.1.0.10'] }],
      [[], ['2001:db8:2::10'], { added: ['2001:db8:2::10'], removed: [] }],
      [['10.1.0.10', '2001:db8:1::10'], ['10.1.0.10'], { added: [], removed: ['2001:db8:1::10'] }],
    ];
    for (const [before, after, want] of table) expect(addressChange(before, after), `${before} → ${after}`).toEqual(want);
  });

  it('calls onChange once per change, never twice at once, and stops with its signal', async () => {
    let current = ['10.1.0.10'];
    const seen: unknown[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const ac = new AbortController();
    watchAddresses({
      signal: ac.signal,
      intervalMs: 5,
      read: () => current,
      onChange: async (c) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        seen.push(c);
        await new Promise((r) => setTimeout(r, 30));
        inFlight--;
      },
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual([]);
    current = ['10.2.0.10'];
    await new Promise((r) => setTimeout(r, 15));
    current = ['10.2.0.10', '2001:db8:2::10']; // while the first change is being handled
    await new Promise((r) => setTimeout(r, 80));
    expect(seen).toEqual([
      { added: ['10.2.0.10'], removed: ['10.1.0.10'] },
      { added: ['2001:db8:2::10'], removed: [] },
    ]);
    expect(maxInFlight).toBe(1);
    ac.abort();
    current = [];
    await new Promise((r) => setTimeout(r, 30));
    expect(seen).toHaveLength(2);
  });
});
