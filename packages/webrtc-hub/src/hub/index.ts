// The Hub (server) and its client: signed logins, signalling routed by node id, Redis scale-out.

export {
  HUB_BUS_CONTEXT,
  HUB_PRESENCE_CONTEXT,
  MIN_CLUSTER_SECRET_LENGTH,
  type OpenedBusMessage,
  openBusMessage,
  presenceInstance,
  presenceValue,
  ReplayGuard,
  sealBusMessage,
} from './bus-auth.js';
export { createHubClient, type HubClient, type HubClientEvents, type HubClientOptions } from './client.js';
export * from './constants.js';
export * from './errors.js';
export { hubClientFromConfig, hubServerFromConfig, startHubLink } from './from-config.js';
export { checkLogin, type LoginChallenge, loginBytes, normalizeHubUrl, signLogin } from './login.js';
export {
  type ClientMessage,
  clientMessageSchema,
  type IceServer,
  iceServersSchema,
  type ServerMessage,
  serverMessageSchema,
} from './messages.js';
export { createHubServer } from './server.js';
export type { HubServer, HubServerOptions } from './server-options.js';
export type { SignalEvent, Signaller } from './signaller.js';
export { HubTokenBucket } from './token-bucket.js';
export { iceServersFor, turnCredentials } from './turn-credentials.js';
