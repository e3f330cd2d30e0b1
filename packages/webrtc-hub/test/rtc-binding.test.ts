// The signed binding as pure functions: the SDP fingerprint reader against a table of SDPs, and
// a golden fixture of the signed text (a browser builds the same bytes: test/browser/peer.js).
import { generateIdentity } from '@dpc/core';
import { BINDING_TAG, bindingText, type RtcOffer, sdpFingerprint, signBinding, verifyBinding } from '@dpc/webrtc-hub';
import { describe, expect, it } from 'vitest';

const FP = 'sha-256 1D:C3:47:A5:88:10:FE:36:05:8F:02:4D:79:14:FE:CD:2F:45:B1:9C:F9:8D:DA:1E:14:9A:24:3A:F4:41:B3:34';
const OTHER = 'sha-256 AA:C3:47:A5:88:10:FE:36:05:8F:02:4D:79:14:FE:CD:2F:45:B1:9C:F9:8D:DA:1E:14:9A:24:3A:F4:41:B3:34';
const sdp = (...lines: string[]) => ['v=0', 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', ...lines, 'a=mid:0'].join('\r\n');
const line = (fp: string) => `a=fingerprint:${fp}`;

describe('sdpFingerprint', () => {
  it.each([
    ['one sha-256 line', sdp(line(FP)), FP],
    ['the same line twice (session and media level)', sdp(line(FP), line(FP)), FP],
    ['lower-case hex and algorithm are normalized', sdp(line(FP.toLowerCase().replace('SHA', 'sha'))), FP],
    ['LF line ends (no CR)', sdp(line(FP)).replace(/\r/g, ''), FP],
  ])('%s', (_name, input, want) => {
    expect(sdpFingerprint(input)).toBe(want);
  });

  it.each([
    ['no fingerprint', sdp()],
    ['two different fingerprints (a second certificate would match)', sdp(line(FP), line(OTHER))],
    ['sha-1 only', sdp('a=fingerprint:sha-1 1D:C3:47:A5:88:10:FE:36:05:8F:02:4D:79:14:FE:CD:2F:45:B1:9C')],
    ['truncated sha-256', sdp(line(FP.slice(0, 40)))],
    ['an unreadable fingerprint line', sdp('a=fingerprint:sha-256 not hex')],
  ])('refuses %s with DPC_RTC_FINGERPRINT_MISMATCH', (_name, input) => {
    expect(() => sdpFingerprint(input)).toThrowError(expect.objectContaining({ code: 'DPC_RTC_FINGERPRINT_MISMATCH' }));
  });
});

describe('binding', () => {
  it('the signed text is fixed (golden): tag, kind, session, from, to, fingerprint, protocol, expiry — one a line', () => {
    const text = bindingText({
      kind: 'offer',
      sid: '00112233445566778899aabbccddeeff',
      from: 'dpc-node-0123456789abcdef0123456789abcdef',
      to: 'dpc-node-fedcba9876543210fedcba9876543210',
      fingerprint: FP,
      proto: 'dpc-msg/1',
      exp: 1_796_000_000_000,
    });
    expect(BINDING_TAG).toBe('dpc-rtc-binding/1');
    expect(text).toBe(
      'dpc-rtc-binding/1\noffer\n00112233445566778899aabbccddeeff\ndpc-node-0123456789abcdef0123456789abcdef\n' +
        `dpc-node-fedcba9876543210fedcba9876543210\n${FP}\ndpc-msg/1\n1796000000000`,
    );
  });

  it('verifies only for the node it was meant for, within its validity, with its own kind and protocol', () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const now = 1_796_000_000_000;
    const b = signBinding(
      alice,
      { kind: 'offer', sid: '00112233445566778899aabbccddeeff', to: bob.nodeId, fingerprint: FP, proto: 'dpc-tls/1' },
      now,
    );
    const offer: RtcOffer = { t: 'rtc-offer', sid: '00112233445566778899aabbccddeeff', proto: 'dpc-tls/1', sdp: sdp(line(FP)), ...b };
    const ok = { kind: 'offer' as const, from: alice.nodeId, to: bob.nodeId, proto: 'dpc-tls/1' as const, now };
    expect(verifyBinding(offer, ok)).toMatchObject({ nodeId: alice.nodeId, fingerprint: FP });
    const code = (f: () => unknown) => {
      try {
        f();
        return 'accepted';
      } catch (err) {
        return (err as { code: string }).code;
      }
    };
    expect(code(() => verifyBinding(offer, { ...ok, to: generateIdentity().nodeId }))).toBe('DPC_RTC_BINDING');
    expect(code(() => verifyBinding(offer, { ...ok, kind: 'answer' }))).toBe('DPC_RTC_BINDING');
    expect(code(() => verifyBinding(offer, { ...ok, proto: 'dpc-msg/1' }))).toBe('DPC_RTC_BINDING');
    expect(code(() => verifyBinding(offer, { ...ok, expectedSigner: bob.nodeId }))).toBe('DPC_RTC_BINDING');
    expect(code(() => verifyBinding(offer, { ...ok, from: bob.nodeId }))).toBe('DPC_RTC_BINDING');
    expect(code(() => verifyBinding(offer, { ...ok, now: now + 10 * 60_000 }))).toBe('DPC_RTC_BINDING');
    expect(code(() => verifyBinding({ ...offer, exp: offer.exp + 1 }, ok))).toBe('DPC_RTC_BINDING');
    expect(code(() => verifyBinding({ ...offer, sdp: sdp(line(OTHER)) }, ok))).toBe('DPC_RTC_FINGERPRINT_MISMATCH');
  });
});
