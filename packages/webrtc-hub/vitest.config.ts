import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: 'webrtc-hub', include: ['test/**/*.test.ts'], testTimeout: 30_000 },
});
