// The part of udx-native's API this package uses (the package ships no types).
declare module 'udx-native' {
  import type { EventEmitter } from 'node:events';

  export interface UdxSocket extends EventEmitter {
    readonly bound: boolean;
    bind(port?: number, host?: string): void;
    address(): { host: string; family: number; port: number };
    close(): Promise<void>;
  }

  export interface UdxStream extends EventEmitter {
    readonly id: number;
    readonly connected: boolean;
    readonly rtt: number;
    readonly destroyed: boolean;
    connect(socket: UdxSocket, remoteId: number, port: number, host?: string): void;
    setKeepalive(ms: number): void;
    write(data: Uint8Array): boolean;
    end(): void;
    pause(): void;
    resume(): void;
    destroy(err?: Error): void;
  }

  export default class UDX {
    createSocket(opts?: { ipv6Only?: boolean }): UdxSocket;
    createStream(id: number, opts?: { firewall?: (socket: UdxSocket, port: number, host: string) => boolean }): UdxStream;
  }
}
