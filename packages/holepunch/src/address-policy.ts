/**
 * Why a peer-supplied punch candidate must not be probed, or undefined when it may be: the
 * shared rule for addresses other nodes name (`remoteAddressProblem` in @dpc/core).
 */
export { remoteAddressProblem as candidateProblem } from '@dpc/core';
