import { runSelfCheck, type SelfCheckReport } from '@dpc/netlab';
import { beforeAll, describe, expect, it } from 'vitest';
import { labAvailability } from './support.js';

const canRunLab = labAvailability(['ip', 'nft', 'conntrack', 'turnserver', 'turnutils_natdiscovery']);

describe.skipIf(!canRunLab)('self-check: routers behave as labelled', () => {
  let report: SelfCheckReport;
  beforeAll(async () => {
    report = await runSelfCheck({ natDiscovery: true });
    for (const r of report.results) console.log(`netlab selfcheck: ${r.ok ? 'ok  ' : 'FAIL'} ${r.name}: ${r.detail}`);
  });
  const result = (name: RegExp) => report.results.find((r) => name.test(r.name));

  it('coturn natdiscovery sees endpoint-independent mapping behind the cone router', () => {
    expect(result(/-m from conehost/)).toMatchObject({ ok: true, detail: 'NAT with Endpoint Independent Mapping!' });
    expect(report.natdiscovery['conehost -m']).toContain('Endpoint Independent Mapping');
  });

  it('coturn natdiscovery sees address-and-port-dependent mapping behind the symmetric router', () => {
    expect(result(/-m from symhost/)).toMatchObject({ ok: true, detail: 'NAT with Address and Port Dependent Mapping!' });
  });

  it('coturn natdiscovery: the double NAT maps endpoint-independently; the cone filters by address and port', () => {
    expect(result(/-m from dblhost/)?.ok).toBe(true);
    expect(result(/-f from conehost/)).toMatchObject({ ok: true, detail: 'NAT with Address and Port Dependent Filtering!' });
  });

  it('our own UDP probe agrees, UDP-blocked passes TCP only, unsolicited inbound is dropped', () => {
    for (const name of [/^cone keeps/, /^symmetric picks/, /^double NAT/, /^udp-blocked drops/, /^udp-blocked lets TCP/, /unsolicited/]) {
      expect(result(name), String(name)).toMatchObject({ ok: true });
    }
    expect(report.ok).toBe(true);
  });
});
