/**
 * Typed errors with stable codes. Check them by `code` (or `name`), not `instanceof`.
 */
export class NetlabError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The topology is not valid (says which part and why). */
export class TopologyError extends NetlabError {
  constructor(message: string) {
    super('NETLAB_TOPOLOGY_INVALID', message);
  }
}

/** The machine cannot run the lab (not root, a tool missing, no namespaces). */
export class LabUnavailableError extends NetlabError {
  constructor(reason: string) {
    super('NETLAB_UNAVAILABLE', `network lab unavailable: ${reason}`);
  }
}

/** A command that builds or tears down the lab failed. */
export class LabCommandError extends NetlabError {
  readonly command: string[];
  readonly stderr: string;
  constructor(command: string[], stderr: string, cause?: unknown) {
    super('NETLAB_COMMAND_FAILED', `${command.join(' ')} failed: ${stderr.trim() || String(cause)}`, { cause });
    this.command = command;
    this.stderr = stderr;
  }
}

/** No host of that name in the lab. */
export class UnknownHostError extends NetlabError {
  constructor(host: string, known: string[]) {
    super('NETLAB_UNKNOWN_HOST', `no host ${host} in the lab (hosts: ${known.join(', ')})`);
  }
}
