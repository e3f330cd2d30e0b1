import { createHmac, randomBytes } from 'node:crypto';
import { TOKEN_ROTATION_MS } from './constants.js';

/** Write tokens for STORE and REGISTER: HMAC of the source IP, rotated; the previous one stays valid. */
export class WriteTokens {
  readonly #secret = randomBytes(32);
  readonly #rotationMs: number;

  constructor(rotationMs = TOKEN_ROTATION_MS) {
    this.#rotationMs = rotationMs;
  }

  token(host: string, window = Math.floor(Date.now() / this.#rotationMs)): Buffer {
    return createHmac('sha256', this.#secret).update(`${window}|${host}`).digest().subarray(0, 8);
  }

  valid(tk: Uint8Array, host: string): boolean {
    const w = Math.floor(Date.now() / this.#rotationMs);
    return this.token(host, w).equals(tk) || this.token(host, w - 1).equals(tk);
  }
}
