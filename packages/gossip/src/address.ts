/**
 * Why a gossip link must not be dialled at `host`, or undefined when it may be: `dial()` takes
 * addresses from DHT lookups, so the shared rule for addresses other nodes name applies
 * (`remoteAddressProblem` in @dpc/core).
 */
export { remoteAddressProblem as dialProblem } from '@dpc/core';
