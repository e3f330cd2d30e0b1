/** Defaults of the lab, with units in the names. */

/** Prefix of every namespace the lab creates: `dl<runid>-<name>`. */
export const NAMESPACE_PREFIX = 'dl';
/** Length of the random run id in namespace names (lowercase letters and digits). */
export const RUN_ID_LENGTH = 6;
/** Where `up` (and every live lab) records its state, so `exec`, `down` and `gc` can find it. */
export const DEFAULT_STATE_DIR = '/run/dpc-netlab';

/** The "internet" segment: TEST-NET-2 and the IPv6 documentation prefix. */
export const INTERNET_IPV4_PREFIX = '198.51.100';
export const INTERNET_IPV6_PREFIX = '2001:db8:';
/** The internet namespace's own address: the default gateway that silently drops what it gets. */
export const SINK_HOST_NUMBER = 1;
/** First host number handed out on the internet segment. */
export const FIRST_INTERNET_HOST_NUMBER = 10;
/** Carrier-grade NAT links (RFC 6598 shared address space): 100.64.<router>.0/24. */
export const CGNAT_IPV4_PREFIX = '100.64';

/** Default deadline of `lab.exec` in ms. */
export const DEFAULT_EXEC_TIMEOUT_MS = 60_000;
/** Grace between SIGTERM and SIGKILL when stopping lab processes, in ms. */
export const KILL_GRACE_MS = 1_000;
/** How long to wait for a delay forwarder to report ready, in ms. */
export const FORWARDER_READY_TIMEOUT_MS = 30_000;
