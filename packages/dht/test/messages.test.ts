import { constants } from '@dpc/dht';
import { describe, expect, it } from 'vitest';
import { decodeDatagram, encodeDatagram, fitAnswer } from '../src/messages.js';

const id = Buffer.alloc(16, 7);
const x = Buffer.from([1, 2, 3, 4]);

describe('DHT wire messages', () => {
  it('round-trips a request and a response, validated', () => {
    const req = decodeDatagram(encodeDatagram({ t: 'find_node', x, id, k: id }));
    expect(req.kind).toBe('request');
    const res = decodeDatagram(encodeDatagram({ t: 'nodes', x, id, n: [{ id, host: '127.0.0.1', port: 8889 }], tk: Buffer.alloc(8) }));
    expect(res).toMatchObject({ kind: 'response', msg: { t: 'nodes', n: [{ host: '127.0.0.1', port: 8889 }] } });
  });

  it('golden bytes of a PING, so an accidental encoding change fails', () => {
    expect(encodeDatagram({ t: 'ping', x, id }).toString('hex')).toMatchInlineSnapshot(
      `"de0003a174a470696e67a178c40401020304a26964c41007070707070707070707070707070707"`,
    );
  });

  it('refuses to send a datagram over the MTU budget', () => {
    expect(() => encodeDatagram({ t: 'store', x, id, k: id, r: Buffer.alloc(1300), tk: Buffer.alloc(8) })).toThrow(
      expect.objectContaining({ code: 'DPC_DHT_DATAGRAM_TOO_LARGE' }),
    );
  });

  it('fits k IPv6 contacts and records under the limit', () => {
    const v6 = Array.from({ length: 20 }, (_, i) => ({
      id: Buffer.alloc(16, i),
      host: `2001:db8:ffff:ffff:ffff:ffff:ffff:${i.toString(16)}`,
      port: 65535,
    }));
    const records = [Buffer.alloc(900, 1), Buffer.alloc(500, 2)];
    const fit = fitAnswer(records, v6, constants.MAX_DATAGRAM_BYTES - 90);
    expect(fit.records).toHaveLength(1);
    expect(fit.recordsLeft).toBe(1);
    const bytes = encodeDatagram({ t: 'nodes', x, id, n: fit.contacts, tk: Buffer.alloc(8), r: fit.records, nx: 1 });
    expect(bytes.length).toBeLessThanOrEqual(constants.MAX_DATAGRAM_BYTES);
    const all = fitAnswer([], v6, constants.MAX_DATAGRAM_BYTES - 90);
    expect(encodeDatagram({ t: 'nodes', x, id, n: all.contacts, tk: Buffer.alloc(8) }).length).toBeLessThanOrEqual(
      constants.MAX_DATAGRAM_BYTES,
    );
  });

  it.each([
    [{ t: 'ping', x: Buffer.alloc(3), id }],
    [{ t: 'ping', x, id: Buffer.alloc(20) }],
    [{ t: 'find_node', x, id }],
    [{ t: 'nodes', x, id, n: [[id, 'not-an-ip', 1]], tk: Buffer.alloc(8) }],
    [{ t: 'ping', x, id, extra: 1 }],
    [{ t: 'boom', x, id }],
  ])('rejects malformed message %#', (m) => {
    expect(() => decodeDatagram(encodeDatagram(m as never))).toThrow();
  });
});
