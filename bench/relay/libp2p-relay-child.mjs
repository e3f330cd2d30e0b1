// The js-libp2p circuit relay v2 under test, in its own process (as the dpc relay is).
import { createRelayNode } from './libp2p.mjs';

const relay = await createRelayNode();
process.send({ addr: relay.getMultiaddrs()[0].toString() });
process.on('message', async (m) => {
  if (m === 'cpu') process.send({ cpu: process.cpuUsage() });
  else if (m === 'stop') {
    await relay.stop();
    process.exit(0);
  }
});
