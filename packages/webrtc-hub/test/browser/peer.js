// A dpc browser peer: its own Ed25519 identity (WebCrypto), the tier-3 signed-fingerprint
// exchange over a WebSocket signaller, and a data channel speaking dpc-msg/1 (JSON frames).
// Written against the browser's own WebRTC stack only; nothing here comes from @dpc/*.
const TAG = 'dpc-rtc-binding/1';
const PROTO = 'dpc-msg/1';
const TTL_MS = 60_000;
const enc = new TextEncoder();

const b64url = (bytes) =>
  btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
const unb64url = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
const hex = (bytes) => [...new Uint8Array(bytes)].map((x) => x.toString(16).padStart(2, '0')).join('');

async function nodeIdOf(raw) {
  return `dpc-node-${hex(await crypto.subtle.digest('SHA-256', raw)).slice(0, 32)}`;
}

function sdpFingerprint(sdp) {
  const found = new Set();
  for (const line of sdp.split(/\r?\n/)) {
    const m = /^a=fingerprint:(\S+)\s+([0-9A-Fa-f:]+)\s*$/.exec(line);
    if (m) found.add(`${m[1].toLowerCase()} ${m[2].toUpperCase()}`);
  }
  if (found.size !== 1) throw new Error(`SDP declares ${found.size} fingerprints`);
  const fp = [...found][0];
  if (!fp.startsWith('sha-256 ')) throw new Error(`not sha-256: ${fp}`);
  return fp;
}

const bindingText = (f) => [TAG, f.kind, f.sid, f.from, f.to, f.fp, f.proto, String(f.exp)].join('\n');

export async function createBrowserPeer(relayUrl) {
  const keys = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
  const raw = await crypto.subtle.exportKey('raw', keys.publicKey);
  const nodeId = await nodeIdOf(raw);
  const ws = new WebSocket(`${relayUrl}/?id=${nodeId}`);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error('signalling socket failed'));
  });
  const sessions = new Map();
  const send = (to, payload) => ws.send(JSON.stringify({ to, payload }));
  let onOffer;

  async function sign(kind, sid, to, fp) {
    const exp = Date.now() + TTL_MS;
    const sig = await crypto.subtle.sign(
      'Ed25519',
      keys.privateKey,
      enc.encode(bindingText({ kind, sid, from: nodeId, to, fp, proto: PROTO, exp })),
    );
    return { fp, pk: b64url(raw), exp, sig: b64url(sig) };
  }

  /** Checks the other side's binding: its key is `expected`'s, the signature covers this SDP's fingerprint. */
  async function verify(kind, m, from, expected) {
    const pk = unb64url(m.pk);
    const signer = await nodeIdOf(pk);
    if (expected && signer !== expected) throw new Error(`binding signed by ${signer}, not ${expected}`);
    if (signer !== from) throw new Error(`binding from ${from} signed by ${signer}`);
    if (m.exp < Date.now() - 30_000) throw new Error('binding expired');
    const key = await crypto.subtle.importKey('raw', pk, { name: 'Ed25519' }, false, ['verify']);
    const text = bindingText({ kind, sid: m.sid, from: signer, to: nodeId, fp: m.fp, proto: PROTO, exp: m.exp });
    if (!(await crypto.subtle.verify('Ed25519', key, unb64url(m.sig), enc.encode(text)))) throw new Error('binding signature invalid');
    if (sdpFingerprint(m.sdp) !== m.fp) throw new Error('SDP fingerprint differs from the signed one');
  }

  function newPc(peer, sid) {
    const pc = new RTCPeerConnection({ iceServers: [] });
    pc.onicecandidate = (e) =>
      send(peer, { t: 'rtc-ice', sid, c: e.candidate?.candidate ?? '', ...(e.candidate?.sdpMid != null && { mid: e.candidate.sdpMid }) });
    const s = { pc, peer, answer: undefined, ended: undefined };
    sessions.set(sid, s);
    return s;
  }

  ws.onmessage = async (ev) => {
    const { from, payload: m } = JSON.parse(ev.data);
    if (m.t === 'rtc-offer') return onOffer?.(from, m);
    const s = sessions.get(m.sid);
    if (!s || s.peer !== from) return;
    if (m.t === 'rtc-answer') s.answer?.(m);
    else if (m.t === 'rtc-ice' && m.c) s.pc.addIceCandidate({ candidate: m.c, sdpMid: m.mid ?? '0' }).catch(() => {});
    else if (m.t === 'rtc-end') s.ended?.(new Error(`peer ended: ${m.reason}`));
  };

  /** A message channel over an open data channel (dpc-msg/1 frames). */
  function channel(dc, remote) {
    const inbox = [];
    const waiters = [];
    dc.onmessage = (e) => {
      const f = JSON.parse(e.data);
      if (f.t === 'ping') dc.send(JSON.stringify({ t: 'pong', n: f.n }));
      else if (f.t === 'data') {
        const w = waiters.shift();
        if (w) w(f.d);
        else inbox.push(f.d);
      }
    };
    return {
      remote,
      send: (d) => dc.send(JSON.stringify({ t: 'data', d })),
      next: () => (inbox.length ? Promise.resolve(inbox.shift()) : new Promise((r) => waiters.push(r))),
      close: () => dc.close(),
    };
  }

  const opened = (dc) =>
    new Promise((resolve, reject) => {
      if (dc.readyState === 'open') return resolve(dc);
      dc.onopen = () => resolve(dc);
      dc.onclose = () => reject(new Error('data channel closed'));
    });

  return {
    nodeId,
    /** Calls a dpc node: offer (signed), verified answer, data channel. */
    async call(target) {
      const sid = hex(crypto.getRandomValues(new Uint8Array(16)));
      const s = newPc(target, sid);
      const dc = s.pc.createDataChannel('dpc', { ordered: true });
      const answered = new Promise((resolve, reject) => {
        s.answer = resolve;
        s.ended = reject;
      });
      const offer = await s.pc.createOffer();
      send(target, { t: 'rtc-offer', sid, proto: PROTO, sdp: offer.sdp, ...(await sign('offer', sid, target, sdpFingerprint(offer.sdp))) });
      await s.pc.setLocalDescription(offer);
      const answer = await answered;
      await verify('answer', answer, target, target);
      await s.pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
      return channel(await opened(dc), target);
    },
    /** Waits for one call, checks its binding, answers. */
    accept() {
      return new Promise((resolve, reject) => {
        onOffer = async (from, m) => {
          try {
            if (m.proto !== PROTO) throw new Error(`protocol ${m.proto}`);
            await verify('offer', m, from);
            const s = newPc(from, m.sid);
            const dc = new Promise((r) => {
              s.pc.ondatachannel = (e) => r(e.channel);
            });
            await s.pc.setRemoteDescription({ type: 'offer', sdp: m.sdp });
            const answer = await s.pc.createAnswer();
            send(from, {
              t: 'rtc-answer',
              sid: m.sid,
              sdp: answer.sdp,
              ...(await sign('answer', m.sid, from, sdpFingerprint(answer.sdp))),
            });
            await s.pc.setLocalDescription(answer);
            resolve(channel(await opened(await dc), from));
          } catch (err) {
            send(from, { t: 'rtc-end', sid: m.sid, reason: String(err.message) });
            reject(err);
          }
        };
      });
    },
  };
}
