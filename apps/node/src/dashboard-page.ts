/**
 * The dashboard's three files, served by the API server. No external asset, no inline script or
 * style (the page's CSP allows only this server's own files); the script fills the page with
 * `textContent` only, so a peer's message can never become markup.
 */

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>dpc-node dashboard</title>
<link rel="stylesheet" href="/dashboard.css">
<script src="/dashboard.js" defer></script>
</head>
<body>
<header>
  <h1>dpc-node</h1>
  <span id="conn" class="badge">connecting…</span>
</header>
<main>
<section id="identity-box">
  <h2>Identity</h2>
  <dl>
    <dt>Node id</dt><dd><code id="node-id">…</code></dd>
    <dt>Up since</dt><dd id="started">…</dd>
    <dt>Tiers</dt><dd id="tiers">…</dd>
  </dl>
</section>
<section id="network-box">
  <h2>Network</h2>
  <dl>
    <dt>NAT type</dt><dd id="nat">…</dd>
    <dt>Listening (TCP)</dt><dd id="addr-tcp">…</dd>
    <dt>DHT (UDP)</dt><dd id="addr-dht">…</dd>
    <dt>Announced</dt><dd id="addr-announced">…</dd>
    <dt>DHT size</dt><dd id="dht-size">…</dd>
  </dl>
</section>
<section id="sessions-box" class="wide">
  <h2>Sessions <span id="session-count" class="muted"></span></h2>
  <table id="sessions">
    <thead><tr><th>Peer</th><th>Tier</th><th>State</th><th>Ack RTT</th><th>Connect</th><th>Unacked</th><th>Upgrades</th></tr></thead>
    <tbody></tbody>
  </table>
  <p id="no-sessions" class="muted">No sessions yet.</p>
</section>
<section id="stats-box">
  <h2>Connections</h2>
  <dl>
    <dt>Attempts</dt><dd id="stat-attempts">…</dd>
    <dt>Successful</dt><dd id="stat-ok">…</dd>
    <dt>Failed</dt><dd id="stat-failed">…</dd>
    <dt>Upgrades</dt><dd id="stat-upgrades">…</dd>
  </dl>
  <h3>strategy_usage</h3>
  <svg id="usage-chart" role="img" aria-label="connections per tier" viewBox="0 0 420 168" width="420" height="168"></svg>
</section>
<section id="relay-box">
  <h2>Relay</h2>
  <dl>
    <dt>Volunteering</dt><dd id="relay-volunteer">…</dd>
    <dt>Active sessions</dt><dd id="relay-active">…</dd>
    <dt>Sessions (total)</dt><dd id="relay-total">…</dd>
    <dt>Refused</dt><dd id="relay-refused">…</dd>
    <dt>Forwarded</dt><dd id="relay-bytes">…</dd>
  </dl>
</section>
<section id="send-box">
  <h2>Send a message</h2>
  <form id="send-form" autocomplete="off">
    <label>To <input id="send-to" name="to" placeholder="dpc-node-…" required spellcheck="false"></label>
    <label>Text <input id="send-text" name="text" required maxlength="16000"></label>
    <button id="send-button" type="submit">Send</button>
  </form>
  <p id="send-result" class="muted"></p>
</section>
<section id="events-box" class="wide">
  <h2>Events</h2>
  <ol id="events" reversed></ol>
</section>
</main>
</body>
</html>
`;

export const DASHBOARD_CSS = `:root { font-family: system-ui, sans-serif; color: #1d2430; background: #f4f6f9; }
body { margin: 0; }
header { display: flex; align-items: center; gap: 1em; padding: 0.6em 1.2em; background: #1d2430; color: #fff; }
header h1 { font-size: 1.3em; margin: 0; }
.badge { padding: 0.15em 0.6em; border-radius: 1em; background: #8a6d00; font-size: 0.85em; }
.badge.live { background: #1f7a3a; }
.badge.down { background: #a12a2a; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1em; padding: 1em; }
section { background: #fff; border-radius: 6px; padding: 0.8em 1.1em; box-shadow: 0 1px 3px rgba(0,0,0,0.12); overflow-x: auto; }
section.wide { grid-column: 1 / -1; }
h2 { font-size: 1.05em; margin: 0 0 0.6em; }
h3 { font-size: 0.95em; margin: 1em 0 0.4em; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.3em 1em; margin: 0; }
dt { color: #5a6372; }
dd { margin: 0; word-break: break-all; }
code, td.peer { font-family: ui-monospace, monospace; font-size: 0.9em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.3em 0.6em; border-bottom: 1px solid #e3e7ee; font-size: 0.92em; }
.muted { color: #6b7482; }
.ok { color: #1f7a3a; }
.bad { color: #a12a2a; }
form { display: flex; flex-wrap: wrap; gap: 0.6em; align-items: end; }
label { display: flex; flex-direction: column; font-size: 0.85em; color: #5a6372; gap: 0.2em; }
input { font: inherit; padding: 0.3em 0.5em; min-width: 16em; }
button { font: inherit; padding: 0.35em 1.2em; }
#events { font-family: ui-monospace, monospace; font-size: 0.85em; max-height: 16em; overflow-y: auto; margin: 0; }
svg text { font-size: 12px; fill: #1d2430; }
svg .bar { fill: #3b6fd4; }
svg .track { fill: #e8ecf3; }
`;

export const DASHBOARD_JS = `'use strict';
(function () {
  var TIERS = [
    ['ipv6_direct', '1 IPv6 direct'],
    ['ipv4_direct', '2 IPv4 direct'],
    ['hub_webrtc', '3 Hub WebRTC'],
    ['udp_hole_punch', '4 hole punch'],
    ['volunteer_relay', '5 relay'],
    ['gossip', '6 gossip']
  ];
  var EVENTS = ['listening', 'connected', 'accepted', 'message', 'resumed', 'upgraded', 'path-lost', 'disconnected', 'relay', 'tier-event', 'tier-not-installed', 'network', 'error'];
  var SVG = 'http://www.w3.org/2000/svg';
  var token = new URLSearchParams(location.search).get('token') || '';
  var ws = null;
  var nextId = 1;
  var waiting = new Map();
  var refreshTimer = null;
  var retryMs = 1000;

  function $(id) { return document.getElementById(id); }
  function text(id, value) { var el = $(id); if (el) el.textContent = value; }
  function ms(v) { return v === null || v === undefined ? '–' : Math.round(v) + ' ms'; }
  function bytes(n) {
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
    return (n / 1048576).toFixed(1) + ' MiB';
  }
  function status(state, label) { var el = $('conn'); el.className = 'badge ' + state; el.textContent = label; }

  function call(method, params) {
    return new Promise(function (resolve, reject) {
      if (!ws || ws.readyState !== WebSocket.OPEN) return reject(new Error('not connected to the node'));
      var id = nextId++;
      waiting.set(id, { resolve: resolve, reject: reject });
      ws.send(JSON.stringify({ id: id, method: method, params: params || {} }));
    });
  }

  function logEvent(line, cls) {
    var li = document.createElement('li');
    li.textContent = new Date().toLocaleTimeString() + '  ' + line;
    if (cls) li.className = cls;
    var list = $('events');
    list.insertBefore(li, list.firstChild);
    while (list.children.length > 100) list.removeChild(list.lastChild);
  }

  function describe(event, d) {
    switch (event) {
      case 'connected': return 'connected to ' + d.peerId + ' via ' + d.tier + ' in ' + Math.round(d.ms) + ' ms';
      case 'message': return 'message from ' + d.from + ' (' + d.tier + '): ' + d.text;
      case 'upgraded': return 'session with ' + d.peerId + ' moved from ' + d.from + ' to ' + d.to;
      case 'path-lost': return 'path to ' + d.peerId + ' over ' + d.tier + ' lost';
      case 'accepted': return 'connection from ' + d.peerId + ' via ' + d.tier;
      case 'disconnected': return d.peerId + ' closed the session over ' + d.tier + (d.reason ? ' (' + d.reason + ')' : '');
      case 'relay': return 'relay ' + d.kind + (Array.isArray(d.peers) ? ' ' + d.peers.join(', ') : '') + (d.reason ? ' (' + d.reason + ')' : '');
      default: return event + ' ' + JSON.stringify(d);
    }
  }

  function cell(tr, value, cls) {
    var td = document.createElement('td');
    td.textContent = value;
    if (cls) td.className = cls;
    tr.appendChild(td);
  }

  function renderSessions(sessions) {
    var body = $('sessions').tBodies[0];
    body.textContent = '';
    sessions.forEach(function (s) {
      var tr = document.createElement('tr');
      tr.dataset.peer = s.peerId;
      cell(tr, s.peerId, 'peer');
      cell(tr, s.tier || '–');
      cell(tr, s.connected ? 'connected' : s.deferred ? 'deferred' : s.unacked > 0 ? 'reconnecting' : 'disconnected', s.connected ? 'ok' : 'bad');
      cell(tr, ms(s.ackRttMs));
      cell(tr, ms(s.connectMs));
      cell(tr, String(s.unacked));
      cell(tr, s.upgrades.length ? s.upgrades.map(function (u) { return (u.from || '?') + ' → ' + u.to; }).join(', ') : '–');
      body.appendChild(tr);
    });
    $('no-sessions').hidden = sessions.length > 0;
    text('session-count', '(' + sessions.length + ')');
  }

  function svgEl(name, attrs, content) {
    var el = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { el.setAttribute(k, String(attrs[k])); });
    if (content !== undefined) el.textContent = content;
    return el;
  }

  function renderChart(usage) {
    var svg = $('usage-chart');
    svg.textContent = '';
    var total = TIERS.reduce(function (n, t) { return n + (usage[t[0]] || 0); }, 0);
    TIERS.forEach(function (t, i) {
      var n = usage[t[0]] || 0;
      var share = total ? n / total : 0;
      var y = 6 + i * 27;
      svg.appendChild(svgEl('text', { x: 0, y: y + 14 }, t[1]));
      svg.appendChild(svgEl('rect', { class: 'track', x: 110, y: y, width: 230, height: 18, rx: 3 }));
      var bar = svgEl('rect', { class: 'bar', x: 110, y: y, width: Math.max(0, Math.round(230 * share)), height: 18, rx: 3 });
      bar.dataset.tier = t[0];
      bar.dataset.count = String(n);
      svg.appendChild(bar);
      svg.appendChild(svgEl('text', { x: 348, y: y + 14 }, n + (total ? ' (' + Math.round(share * 100) + '%)' : '')));
    });
  }

  function render(o) {
    text('node-id', o.nodeId);
    text('started', new Date(o.startedAt).toLocaleString() + ' (' + o.uptimeS + ' s)');
    text('tiers', o.tiers.installed.join(', ') + (o.tiers.missing.length ? '; not installed: ' + o.tiers.missing.join(', ') : ''));
    text('nat', o.nat.type + (o.nat.externalIPv4.length ? ' (external ' + o.nat.externalIPv4.join(', ') + ')' : '') + (o.nat.hubConnected ? '; Hub connected' : ''));
    text('addr-tcp', o.addresses.tcp.join(', ') || '–');
    text('addr-dht', o.addresses.dht || '–');
    var a = o.addresses.announced;
    var parts = [];
    if (a.ipv6.length) parts.push('IPv6 ' + a.ipv6.join(', '));
    if (a.ipv4Local.length) parts.push('IPv4 local ' + a.ipv4Local.join(', '));
    if (a.ipv4External.length) parts.push('IPv4 external ' + a.ipv4External.join(', '));
    if (a.relays.length) parts.push('relays ' + a.relays.join(', '));
    text('addr-announced', parts.join('; ') || 'nothing yet');
    text('dht-size', o.dht.routingTableSize + ' nodes known, ' + o.dht.storedRecords + ' records stored, ' + o.dht.registrations + ' registered');
    renderSessions(o.sessions);
    text('stat-attempts', String(o.stats.total_attempts));
    text('stat-ok', String(o.stats.successful_connections));
    text('stat-failed', String(o.stats.failed_connections));
    text('stat-upgrades', String(o.stats.upgrades));
    renderChart(o.stats.strategy_usage);
    text('relay-volunteer', o.relay.volunteering ? 'yes' : 'no');
    text('relay-active', String(o.relay.activeSessions));
    text('relay-total', String(o.relay.sessionsTotal));
    text('relay-refused', String(o.relay.refused));
    text('relay-bytes', bytes(o.relay.bytesForwarded));
  }

  function refresh() {
    call('overview').then(function (r) {
      if (r.error) { if (r.error.code !== 'DPC_API_NOT_READY') logEvent('overview: ' + r.error.message, 'bad'); return; }
      render(r.result);
    }, function () {});
  }
  function refreshSoon() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(function () { refreshTimer = null; refresh(); }, 150);
  }

  function connect() {
    if (!token) { status('down', 'no token in the URL'); return; }
    status('', 'connecting…');
    var scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    ws = new WebSocket(scheme + location.host + '/?token=' + encodeURIComponent(token));
    ws.onopen = function () {
      retryMs = 1000;
      status('live', 'live');
      call('subscribe', { events: EVENTS }).catch(function () {});
      refresh();
    };
    ws.onmessage = function (m) {
      var msg;
      try { msg = JSON.parse(m.data); } catch (e) { return; }
      if (msg.event) {
        logEvent(describe(msg.event, msg.data || {}), msg.event === 'error' || msg.event === 'path-lost' ? 'bad' : '');
        refreshSoon();
        return;
      }
      var w = waiting.get(msg.id);
      if (w) { waiting.delete(msg.id); w.resolve(msg); }
    };
    ws.onclose = function () {
      waiting.forEach(function (w) { w.reject(new Error('connection to the node closed')); });
      waiting.clear();
      status('down', 'disconnected; retrying');
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 10000);
    };
  }

  function onSend(ev) {
    ev.preventDefault();
    var to = $('send-to').value.trim();
    var body = $('send-text').value;
    var out = $('send-result');
    out.className = 'muted';
    out.textContent = 'sending…';
    $('send-button').disabled = true;
    call('send', { to: to, text: body, timeout_ms: 60000 }).then(function (r) {
      if (r.error) { out.className = 'bad'; out.textContent = 'not sent: ' + r.error.message; return; }
      var res = r.result;
      if (res.delivered) {
        out.className = 'ok';
        out.textContent = 'delivered via ' + res.tier + ' in ' + Math.round(res.deliveredMs) + ' ms';
        $('send-text').value = '';
      } else {
        out.className = 'bad';
        out.textContent = 'accepted, not confirmed yet (' + res.reason + '): the node resends it';
      }
      refreshSoon();
    }, function (err) {
      out.className = 'bad';
      out.textContent = 'not sent: ' + err.message;
    }).then(function () { $('send-button').disabled = false; });
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('send-form').addEventListener('submit', onSend);
    setInterval(function () { if (ws && ws.readyState === WebSocket.OPEN) refresh(); }, 2000);
    connect();
  });
})();
`;
