// NAT classification from DISCOVER_ENDPOINT samples, against tables of what peers report behind
// each kind of NAT of tools/netlab (and a public host).
import { classifyNat, type NatSample, pairVerdict, punchMode, punchPlan } from '@dpc/holepunch';
import { describe, expect, it } from 'vitest';

const s = (responder: string, ip: string, port: number): NatSample => ({ responder, ip, port });
const LOCAL = ['127.0.0.1', '10.1.0.2', '::1'];

describe('classifyNat', () => {
  const cases: Array<{ name: string; samples: NatSample[]; final?: boolean; type: string; unsure: boolean }> = [
    {
      name: 'public host: every peer sees our own address → none',
      samples: [s('p1', '10.1.0.2', 8889), s('p2', '10.1.0.2', 8889), s('p3', '10.1.0.2', 8889)],
      type: 'none',
      unsure: false,
    },
    {
      name: 'cone (masquerade): three peers agree on one mapping → cone',
      samples: [s('p1', '198.51.100.10', 40001), s('p2', '198.51.100.10', 40001), s('p3', '198.51.100.10', 40001)],
      type: 'cone',
      unsure: false,
    },
    {
      name: 'symmetric (masquerade fully-random): every peer sees another port → symmetric',
      samples: [s('p1', '198.51.100.10', 40001), s('p2', '198.51.100.10', 51234), s('p3', '198.51.100.10', 2210)],
      type: 'symmetric',
      unsure: false,
    },
    {
      name: 'two different ports only: symmetric, but asked again',
      samples: [s('p1', '198.51.100.10', 40001), s('p2', '198.51.100.10', 51234)],
      type: 'symmetric',
      unsure: true,
    },
    {
      name: 'two agreeing samples only: unsure, resample',
      samples: [s('p1', '198.51.100.10', 40001), s('p2', '198.51.100.10', 40001)],
      type: 'unknown',
      unsure: true,
    },
    {
      name: 'two agreeing samples after the last round: cone by strict majority',
      samples: [s('p1', '198.51.100.10', 40001), s('p2', '198.51.100.10', 40001)],
      final: true,
      type: 'cone',
      unsure: false,
    },
    {
      name: 'the same peer answering three times counts once',
      samples: [s('p1', '198.51.100.10', 40001), s('p1', '198.51.100.10', 40001), s('p1', '198.51.100.10', 40001)],
      type: 'unknown',
      unsure: true,
    },
    {
      name: 'a 2–2 split: unknown even at the end',
      samples: [s('p1', '198.51.100.10', 1), s('p2', '198.51.100.10', 1), s('p3', '198.51.100.10', 2), s('p4', '198.51.100.10', 2)],
      final: true,
      type: 'unknown',
      unsure: false,
    },
    { name: 'UDP blocked: no answer at all', samples: [], final: true, type: 'blocked', unsure: false },
    { name: 'no answer yet: ask again', samples: [], type: 'blocked', unsure: true },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const v = classifyNat(c.samples, LOCAL, c.final ?? false);
      expect(v.type).toBe(c.type);
      expect(v.unsure).toBe(c.unsure);
    });
  }

  it('publishes the agreed mapping and names the evidence', () => {
    const v = classifyNat(
      [s('aaaaaaaaaa', '198.51.100.10', 40001), s('bbbbbbbbbb', '198.51.100.10', 40001), s('cccccccccc', '198.51.100.10', 40001)],
      LOCAL,
    );
    expect(v.endpoint).toEqual({ ip: '198.51.100.10', port: 40001 });
    expect(v.evidence).toContain('aaaaaaaa→198.51.100.10:40001');
  });
});

describe('pairVerdict', () => {
  it('punches cone↔cone, open↔cone and unknown pairs', () => {
    expect(pairVerdict('cone', 'cone')).toBeUndefined();
    expect(pairVerdict('none', 'cone')).toBeUndefined();
    expect(pairVerdict('unknown', 'cone')).toBeUndefined();
  });
  it('punches cone↔symmetric and open↔symmetric with a birthday punch, the symmetric side opening the sockets', () => {
    expect(pairVerdict('cone', 'symmetric')).toBeUndefined();
    expect(pairVerdict('symmetric', 'none')).toBeUndefined();
    expect(punchMode('symmetric', 'cone')).toBe('birthday-open');
    expect(punchMode('cone', 'symmetric')).toBe('birthday-probe');
    expect(punchMode('cone', 'cone')).toBe('direct');
    expect(punchMode('none', 'unknown')).toBe('direct');
  });
  it('does not try a birthday punch opposite an unmeasured NAT', () => {
    expect(pairVerdict('unknown', 'symmetric')).toMatch(/birthday/);
  });
  it('refuses symmetric↔symmetric and blocked UDP', () => {
    expect(pairVerdict('symmetric', 'symmetric')).toMatch(/symmetric/);
    expect(pairVerdict('cone', 'blocked')).toMatch(/blocked/);
    expect(pairVerdict('blocked', 'none')).toMatch(/blocked/);
  });
});

describe('punchPlan', () => {
  it('sends every round to each distinct candidate', () => {
    const plan = punchPlan(
      [
        { ip: '198.51.100.10', port: 1 },
        { ip: '198.51.100.10', port: 1 },
        { ip: '198.51.100.11', port: 2 },
      ],
      { rounds: 3, probesPerRound: 2 },
    );
    expect(plan).toHaveLength(3);
    expect(plan[0]).toHaveLength(4);
  });
  it('has nothing to send without candidates', () => {
    expect(punchPlan([], { rounds: 3, probesPerRound: 2 })).toEqual([]);
  });
});
