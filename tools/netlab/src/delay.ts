import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { FORWARDER_READY_TIMEOUT_MS } from './constants.js';
import { LabUnavailableError } from './errors.js';

/**
 * Latency and jitter without `tc netem` (these kernels are built without it): a userspace
 * switch in a middle namespace reads every frame from one veth with an AF_PACKET socket, holds
 * it for the delay and writes it to the other veth. Order is kept per direction (a late frame
 * waits for the one before it), so jitter never reorders a TCP stream.
 *
 * The veths on both sides must have their offloads off (see `disableOffloads`): with them on,
 * forwarded frames carry partial checksums and the receiver drops them.
 */
export const FORWARDER_SOURCE = `
import collections, os, random, select, socket, sys, time
a, b = sys.argv[1], sys.argv[2]
delay = float(sys.argv[3]) / 1000.0
jitter = float(sys.argv[4]) / 1000.0
watch_stdin = sys.argv[5] == '1'
def opened(ifname):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((ifname, 0))
    s.setblocking(False)
    return s
sa, sb = opened(a), opened(b)
out = {sa: sb, sb: sa}
queue = {sa: collections.deque(), sb: collections.deque()}
last = {sa: 0.0, sb: 0.0}
watched = [sa, sb] + ([sys.stdin] if watch_stdin else [])
print('ready', flush=True)
while True:
    now = time.monotonic()
    due = [q[0][0] for q in queue.values() if q]
    timeout = max(0.0, min(due) - now) if due else None
    readable, _, _ = select.select(watched, [], [], timeout)
    now = time.monotonic()
    for s in readable:
        if s is sys.stdin:
            if not os.read(sys.stdin.fileno(), 4096):
                sys.exit(0)
            continue
        while True:
            try:
                frame, addr = s.recvfrom(65536)
            except BlockingIOError:
                break
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            dst = out[s]
            hold = delay + (random.uniform(-jitter, jitter) if jitter > 0 else 0.0)
            at = max(now + max(hold, 0.0), last[dst])
            last[dst] = at
            queue[dst].append((at, frame))
    now = time.monotonic()
    for s, q in queue.items():
        while q and q[0][0] <= now:
            frame = q.popleft()[1]
            try:
                s.send(frame)
            except OSError:
                pass
`;

let pythonPath: string | undefined;

const usable = (python: string) =>
  spawnSync(python, ['-c', 'import socket; socket.AF_PACKET'], { stdio: 'ignore', timeout: 10_000 }).status === 0;

/** The Python 3 interpreter to run forwarders with: $DPC_NETLAB_PYTHON if set, else `python3` on PATH or /usr/bin/python3. */
export function findPython(): string {
  const chosen = process.env.DPC_NETLAB_PYTHON;
  if (chosen) {
    if (usable(chosen)) return chosen;
    throw new LabUnavailableError(`DPC_NETLAB_PYTHON=${chosen} is not a python3 with AF_PACKET sockets (needed for link delay)`);
  }
  pythonPath ??= ['python3', '/usr/bin/python3', '/usr/local/bin/python3'].find((c) => (!c.startsWith('/') || existsSync(c)) && usable(c));
  if (pythonPath) return pythonPath;
  throw new LabUnavailableError('no python3 with AF_PACKET sockets (needed for link delay); set DPC_NETLAB_PYTHON');
}

export interface ForwarderOptions {
  namespace: string;
  ifA: string;
  ifB: string;
  delayMs: number;
  jitterMs: number;
  /** Run on after this process exits (for `dpc-netlab up`); `down`/`gc` stop it. Default false. */
  detached?: boolean;
}

/** Starts a delay forwarder in a namespace and resolves once it is forwarding. */
export async function startForwarder(o: ForwarderOptions): Promise<ChildProcess> {
  const python = findPython();
  const args = ['netns', 'exec', o.namespace, python, '-c', FORWARDER_SOURCE, o.ifA, o.ifB, String(o.delayMs), String(o.jitterMs)];
  // Attached forwarders watch stdin: when this process dies, the pipe closes and they exit.
  const child = spawn('ip', [...args, o.detached ? '0' : '1'], {
    stdio: [o.detached ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    detached: !!o.detached,
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`delay forwarder in ${o.namespace} not ready: ${stderr}`)), FORWARDER_READY_TIMEOUT_MS);
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(err);
    };
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`delay forwarder in ${o.namespace} exited (${code}): ${stderr}`)));
    child.stdout?.once('data', () => {
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.removeAllListeners('error');
      resolve();
    });
  });
  if (o.detached) {
    child.stdout?.destroy();
    child.stderr?.destroy();
    child.unref();
  } else {
    child.on('error', () => {});
  }
  return child;
}
