import { secondsToMs, sleep, type TierContext, type TierPlugin } from '@dpc/core';
import { NAT_REFRESH_MS } from './constants.js';
import { HolePuncher } from './hole-puncher.js';
import type { NatVerdict } from './nat-type.js';
import { holePunchStrategy } from './strategy.js';

/** Pause before measuring the NAT again after a failed measurement (no DHT peer yet), ms. */
const NAT_RETRY_MS = 5_000;

/**
 * Tier 4 as a node plugin: measures the NAT of the DHT socket (published as `nat_type`, `punch`
 * and `accepts_punch` in the endpoint record and reported as `natType`), answers punch requests
 * (inbound connections go to `ctx.accept`) and offers the strategy when `enable_hole_punching`
 * is on. Event for the user: `nat` with `type` and `evidence`.
 */
export function holePunchTier(): TierPlugin {
  return {
    name: 'udp_hole_punch',
    async start(ctx: TierContext) {
      const { config, log } = ctx;
      const enabled = config.connection.enable_hole_punching;
      const publish = (v: NatVerdict) => {
        try {
          ctx.setEndpointPart('nat_type', v.type);
          ctx.setEndpointPart('punch', v.endpoint ? [v.endpoint] : []);
          ctx.setEndpointPart('accepts_punch', enabled && v.type !== 'blocked' && v.endpoint !== undefined);
        } catch (err) {
          log.warn('NAT type not published in the endpoint record', { error: err });
        }
        ctx.reportNetwork({ natType: v.type });
        ctx.emit('nat', { type: v.type, evidence: v.evidence });
        log.info('NAT type measured', { type: v.type, evidence: v.evidence });
      };
      const hp = new HolePuncher({
        identity: ctx.identity,
        dht: ctx.dht,
        counters: ctx.counters,
        log,
        enabled,
        timeoutMs: secondsToMs(config.connection.hole_punch_timeout),
        birthdayTimeoutMs: secondsToMs(config.hole_punch.birthday_timeout),
        punchAttempts: config.hole_punch.punch_attempts,
        natDetection: config.hole_punch.nat_detection_enabled,
        discoveryTimeoutMs: secondsToMs(config.hole_punch.stun_timeout),
        onNat: publish,
        onIncoming: (conn) => ctx.accept(conn),
        allowLocal: ctx.allowLoopback,
      });
      hp.start();
      const loop = new AbortController();
      const signal = AbortSignal.any([loop.signal, ctx.signal]);
      void (async () => {
        while (!signal.aborted) {
          try {
            const v = await hp.measureNat({ signal, force: true });
            // Right after joining the DHT few peers may be known: measure again soon until 3+ answered.
            await sleep(v.unsure || (v.type !== 'none' && v.samples.length < 3) ? NAT_RETRY_MS : NAT_REFRESH_MS, signal);
          } catch {
            await sleep(NAT_RETRY_MS, signal).catch(() => {});
          }
        }
      })().catch(() => {});
      return {
        ...(enabled && { strategy: holePunchStrategy(hp) }),
        info: { enabled },
        async stop() {
          loop.abort();
          await hp.stop();
        },
      };
    },
  };
}

/** The plugin the node app loads when @dpc/holepunch is installed. */
export const tierPlugin: TierPlugin = holePunchTier();
