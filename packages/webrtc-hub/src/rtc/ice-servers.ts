import type { DpcConfig } from '@dpc/core';
import type { RTCIceServer } from 'werift';

/**
 * The ICE servers of `[webrtc] stun_servers` and `[turn] servers / username / credential`, in
 * that order (werift uses the first STUN and the first TURN URL it finds). Blank entries are
 * dropped; a TURN URL without credentials is kept (some servers allow it).
 */
export function iceServersFromConfig(config: Pick<DpcConfig, 'webrtc' | 'turn'>): RTCIceServer[] {
  const out: RTCIceServer[] = [];
  const stun = config.webrtc.stun_servers.map((u) => u.trim()).filter(Boolean);
  if (stun.length > 0) out.push({ urls: stun });
  const turn = config.turn.servers.map((u) => u.trim()).filter(Boolean);
  for (const url of turn) {
    out.push({
      urls: url,
      ...(config.turn.username && { username: config.turn.username }),
      ...(config.turn.credential && { credential: config.turn.credential }),
    });
  }
  return out;
}
