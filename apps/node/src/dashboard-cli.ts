import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ApiServer } from './api.js';

/**
 * Prints where the dashboard and /metrics are. On a terminal the dashboard URL carries the token
 * (open it as it is); the `--json` event does not, so logs collecting stdout never hold it: it
 * names the token file instead.
 */
export function emitDashboard(
  emit: (event: string, data: Record<string, unknown>, text: string) => void,
  api: ApiServer,
  dataDir: string,
): void {
  const tokenFile = join(dataDir, 'api-token');
  const metrics = api.dashboardUrl.replace(/\/dashboard$/, '/metrics');
  void readFile(tokenFile, 'utf8')
    .then((t) => t.trim())
    .catch(() => '<token>')
    .then((token) =>
      emit(
        'dashboard',
        { url: api.dashboardUrl, metrics, tokenFile },
        `dashboard: ${api.dashboardUrl}?token=${token}\nmetrics: ${metrics} (Authorization: Bearer <token in ${tokenFile}>)`,
      ),
    );
}
