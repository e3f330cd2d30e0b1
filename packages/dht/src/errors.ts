import { DpcError, type DpcErrorOptions } from '@dpc/core';

/** No seed answered within `bootstrapTimeoutMs`. */
export class BootstrapError extends DpcError {
  readonly seeds: string[];
  constructor(seeds: string[], ms: number, options?: DpcErrorOptions) {
    super('DPC_DHT_BOOTSTRAP', `no DHT seed answered within ${ms} ms (seeds: ${seeds.join(', ') || 'none'})`, {
      retryable: true,
      ...options,
    });
    this.seeds = seeds;
  }
}

/** No valid endpoint record for this node id was found in the DHT. */
export class PeerNotFoundError extends DpcError {
  readonly nodeId: string;
  constructor(nodeId: string, options?: DpcErrorOptions) {
    super('DPC_PEER_NOT_FOUND', `no valid endpoint record for ${nodeId} in the DHT`, { retryable: true, ...options });
    this.nodeId = nodeId;
  }
}

/** A DHT request got no answer. */
export class RpcTimeoutError extends DpcError {
  constructor(type: string, to: string, ms: number) {
    super('DPC_DHT_RPC_TIMEOUT', `${type} to ${to} got no answer within ${ms} ms`, { retryable: true });
  }
}

/** The remote node answered a request with an error code. */
export class RpcRemoteError extends DpcError {
  readonly remoteCode: string;
  constructor(type: string, to: string, remoteCode: string) {
    super('DPC_DHT_RPC_REFUSED', `${to} refused ${type}: ${remoteCode}`);
    this.remoteCode = remoteCode;
  }
}

/** A datagram would exceed MAX_DATAGRAM_BYTES (a bug or an oversized payload). */
export class DatagramTooLargeError extends DpcError {
  constructor(size: number, max: number) {
    super('DPC_DHT_DATAGRAM_TOO_LARGE', `datagram of ${size} bytes exceeds the limit of ${max}`);
  }
}

/** The DHT is not running (not started, or stopped). */
export class DhtNotRunningError extends DpcError {
  constructor(what: string) {
    super('DPC_DHT_NOT_RUNNING', `${what}: the DHT is not running`);
  }
}

/** A signal could not be delivered through any path. */
export class SignalDeliveryError extends DpcError {
  readonly causes: unknown[];
  constructor(nodeId: string, causes: unknown[]) {
    super('DPC_DHT_SIGNAL_FAILED', `could not deliver a signal to ${nodeId} (${causes.length} paths tried)`, {
      retryable: true,
      cause: causes[0],
    });
    this.causes = causes;
  }
}

/** discoverEndpoint() got no answer from any peer. */
export class EndpointDiscoveryError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_DHT_DISCOVERY_FAILED', message, { retryable: true, ...options });
  }
}

/** registerProtocol() was given a prefix the DHT owns, a bad one, or one that overlaps another protocol's. */
export class ProtocolPrefixError extends DpcError {
  constructor(message: string) {
    super('DPC_DHT_PROTOCOL_PREFIX', message);
  }
}

/** A datagram to an address family the DHT's socket is not bound to (e.g. IPv6 with `host = 127.0.0.1`). */
export class AddressFamilyError extends DpcError {
  constructor(host: string, families: { ipv4: boolean; ipv6: boolean }) {
    const bound = [families.ipv4 && 'IPv4', families.ipv6 && 'IPv6'].filter(Boolean).join(' and ') || 'nothing';
    super('DPC_DHT_ADDRESS_FAMILY', `cannot send to ${host}: the DHT socket is bound to ${bound} only`);
  }
}
