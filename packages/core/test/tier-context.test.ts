import { type EndpointBody, EndpointParts, emptyEndpointBody, generateIdentity, isDpcError } from '@dpc/core';
import { describe, expect, it } from 'vitest';

const relayRef = { node_id: generateIdentity().nodeId, ip: '198.51.100.7', port: 9100 };

function parts(debounceMs = 20) {
  const changes: EndpointBody[] = [];
  const p = new EndpointParts({ initial: emptyEndpointBody(), onChange: (b) => changes.push(b), debounceMs });
  return { p, changes };
}

describe('EndpointParts: one owner per part of the endpoint record', () => {
  it('the first plugin to set a part owns it; another one claiming it gets a typed error', () => {
    const { p } = parts();
    p.set('volunteer_relay', 'relays', [relayRef]);
    expect(p.owner('relays')).toBe('volunteer_relay');
    let err: unknown;
    try {
      p.set('udp_hole_punch', 'relays', []);
    } catch (e) {
      err = e;
    }
    expect(isDpcError(err, 'DPC_ENDPOINT_PART_OWNED')).toBe(true);
    expect(err).toMatchObject({ part: 'relays', owner: 'volunteer_relay', claimant: 'udp_hole_punch' });
    expect(p.body().relays).toEqual([relayRef]);
    p.close();
  });

  it('parts claimed by the node are refused to plugins, even before they are set', () => {
    const { p } = parts();
    p.claim('node', 'ipv6', 'ipv4_local', 'ipv4_external');
    expect(() => p.set('volunteer_relay', 'ipv4_external', [])).toThrow(/belongs to node/);
    expect(() => p.claim('hub_webrtc', 'hub', 'ipv6')).toThrow(/belongs to node/);
    expect(p.owner('hub')).toBeUndefined(); // a refused claim takes nothing
    p.close();
  });

  it('a bad value is refused at once with the schema error; the body is unchanged', () => {
    const { p, changes } = parts();
    expect(() => p.set('volunteer_relay', 'relays', [{ ...relayRef, ip: 'not-an-ip' }])).toThrow(/not an IP/);
    expect(p.body().relays).toEqual([]);
    p.close();
    expect(changes).toEqual([]);
  });

  it('changes are reported once, debounced; setting the same value again reports nothing', async () => {
    const { p, changes } = parts(30);
    expect(p.set('volunteer_relay', 'relays', [relayRef])).toBe(true);
    expect(p.set('udp_hole_punch', 'nat_type', 'cone')).toBe(true);
    expect(p.set('volunteer_relay', 'relays', [relayRef])).toBe(false);
    expect(changes).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 80));
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ relays: [relayRef], nat_type: 'cone' });
    expect(p.set('volunteer_relay', 'relays', [relayRef])).toBe(false);
    await new Promise((r) => setTimeout(r, 80));
    expect(changes).toHaveLength(1);
    p.close();
  });

  it('flush reports a pending change now; close drops it and leaves no timer', async () => {
    const { p, changes } = parts(10_000);
    p.set('hub_webrtc', 'hub', 'wss://hub.example');
    p.flush();
    expect(changes.map((c) => c.hub)).toEqual(['wss://hub.example']);
    p.set('hub_webrtc', 'hub', null);
    p.close();
    await new Promise((r) => setTimeout(r, 20));
    expect(changes).toHaveLength(1);
  });
});
