// electd's live view: renders /v1/status, follows /v1/watch, shows
// /v1/history and, with --shards, the shard map (/v1/shards, then the
// stream's shards events), and sends the admin POSTs with a token kept in
// this tab.
// Plain DOM, no framework; every text from the election (ids, messages)
// goes in as text, never as markup.
'use strict';

(() => {
  const TOKEN_KEY = 'electd-admin-token';
  const HISTORY_LIMIT = 20;
  const byId = (id) => document.getElementById(id);

  /** The last /v1/status body shown. */
  let status = null;
  /** The leader shown, as "id@term"; undefined until the first answer. */
  let shownLeader;
  /** When the shown leader took over, as far as this page knows. */
  let leaderSince = null;
  /** /v1/history's entries, newest first; null when the node has none. */
  let history = null;
  let source = null;
  let reconnectDelay = 1000;
  let reconnectTimer = null;
  /** Whether the election has shards: the stream then asks for them. */
  let sharded = false;

  /** An element with attributes and children (strings become text). */
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value !== null && value !== undefined && value !== false) {
        node.setAttribute(name, value === true ? '' : String(value));
      }
    }
    for (const child of children) {
      if (child !== null && child !== undefined && child !== false) {
        node.append(child);
      }
    }
    return node;
  }

  /** The /ui page of the node whose base URL is `base`. */
  function pageOf(base) {
    return base.replace(/\/+$/, '') + '/ui';
  }

  /** A link to the page of the node at `base`; only http(s) URLs become
   * links, so an advertise URL from a value put by hand can't be a script. */
  function link(base, words) {
    if (!/^https?:\/\//i.test(base)) return el('span', {}, words);
    return el('a', { href: pageOf(base) }, words);
  }

  /** A span of time in words; `precise` gives tenths under 10 s. */
  function duration(ms, precise = false) {
    if (precise && ms < 10000) return `${(Math.max(0, ms) / 1000).toFixed(1)} s`;
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${s % 60} s`;
    const h = Math.floor(m / 60);
    if (h < 24) return `${h} h ${m % 60} min`;
    return `${Math.floor(h / 24)} d ${h % 24} h`;
  }

  function when(iso) {
    const at = new Date(iso);
    return el('time', { datetime: iso, title: iso }, at.toLocaleString());
  }

  const ROLE_WORDS = {
    leader: 'the leader',
    follower: 'a follower',
    candidate: 'a candidate (it knows no leader)',
    observer: 'an observer (it never leads)',
  };

  // ---- the leader ----

  function leaderName(leader) {
    if (!leader) return 'No leader';
    return leader.id ?? 'unknown (a value electd did not write)';
  }

  function showLeader(leader) {
    byId('leader').textContent = leaderName(leader);
    byId('leader-term').textContent = leader
      ? `term ${leader.term}${leader.verified ? '' : ', not verified: shown, not trusted'}`
      : '';
    const key = leader ? `${leader.id}@${leader.term}` : null;
    if (key !== shownLeader) {
      // Seen taking over only if the page showed something before.
      leaderSince = leader ? { at: Date.now(), seen: shownLeader !== undefined } : null;
      shownLeader = key;
      loadHistory(leader);
    }
    showSince();
  }

  /** How long the leader has led: history's word when it has the term. */
  function showSince() {
    const line = byId('leader-since');
    const leader = status && status.leader;
    if (!leader || !leaderSince) {
      line.textContent = '';
      return;
    }
    const entry = history && history.find((h) => h.term === leader.term && h.ended_at === null);
    if (entry && entry.acquired_at) {
      const at = Date.parse(entry.acquired_at);
      line.replaceChildren(`Has led for ${duration(Date.now() - at)}, since `, when(entry.acquired_at),
        ' (by its own clock).');
    } else if (leaderSince.seen) {
      line.textContent = `Has led for ${duration(Date.now() - leaderSince.at)} (since this page saw it take over).`;
    } else {
      line.textContent = `Has led for at least ${duration(Date.now() - leaderSince.at)} (since this page opened).`;
    }
  }

  // ---- the whole status ----

  function render(body) {
    status = body;
    byId('election').textContent = body.election;
    document.title = `electd: ${body.election}`;
    showLeader(body.leader);
    showServedBy(body);
    showObstacle(body.obstacle);
    showCandidates(body);
  }

  function showServedBy(body) {
    byId('served-by').textContent =
      `This page is served by ${body.id}, ${ROLE_WORDS[body.role] || body.role}` +
      `${body.drained ? ', drained' : ''} (etcd API ${body.api}).`;
    const where = byId('admin-where');
    where.replaceChildren();
    let admin = null;
    try {
      admin = new URL(body.admin).origin;
    } catch {
      admin = null;
    }
    if (admin && admin !== window.location.origin) {
      where.append("This node's admin endpoints listen at ", link(body.admin, pageOf(body.admin)), '.');
    }
    const leads = body.role === 'leader';
    byId('resign-here').hidden = !leads;
    const elsewhere = byId('resign-elsewhere');
    elsewhere.hidden = leads;
    if (leads) return;
    if (body.leader && body.leader.advertise && body.leader.id) {
      elsewhere.replaceChildren(
        'Resign and hand-over go to the leader, and this node does not lead: ',
        link(body.leader.advertise, `open ${body.leader.id}'s page`), '.');
    } else {
      elsewhere.textContent = 'Resign and hand-over go to the leader, and no leader is known now.';
    }
  }

  const OBSTACLE_TODO = {
    foreign_key: 'find out who wrote that key, then remove it as the message says; the election resumes by itself.',
    waiting: 'nothing: it ends by itself when that lease expires (revoke the lease to end it now).',
    regressed: 'restore etcd with --bump-revision, or write to it until its revision passes the old one, or restart electd to accept the new history, as the message says.',
  };

  function showObstacle(obstacle) {
    const section = byId('obstacle');
    section.hidden = !obstacle;
    if (!obstacle) return;
    section.classList.toggle('blocking', obstacle.blocking);
    byId('obstacle-message').textContent = obstacle.message;
    byId('obstacle-todo').textContent = OBSTACLE_TODO[obstacle.kind] || 'as the message says.';
  }

  /** Yes or no, marked when it keeps the node from leading. */
  function yesNo(value, bad) {
    if (value === null || value === undefined) return el('span', { class: 'unknown' }, 'not known');
    return el('span', { class: value === bad ? 'bad' : null }, value ? 'yes' : 'no');
  }

  function cell(label, ...children) {
    return el('td', { 'data-label': label }, ...children);
  }

  function showCandidates(body) {
    const rows = byId('candidates').tBodies[0];
    const note = byId('candidates-note');
    rows.replaceChildren();
    if (!body.candidates) {
      note.hidden = false;
      note.textContent = 'etcd could not be read: the succession order is not known right now.';
      return;
    }
    note.hidden = body.api !== 'v2';
    note.textContent = 'etcd v2 names the leader only: the other candidates are not listed.';
    const leads = body.role === 'leader';
    body.candidates.forEach((c, i) => {
      const own = c.id === body.id && c.advertise !== null;
      const actions = el('td', { 'data-label': 'Actions', class: 'actions' });
      if (leads && !c.leads && c.id && body.api === 'v3') {
        actions.append(button(`Hand over to ${c.id}`, () =>
          act(`v1/resign?to=${encodeURIComponent(c.id)}`, `handing over to ${c.id}`, c.id)));
      }
      if (own) {
        actions.append(body.drained
          ? button('Undrain this node', () => act('v1/undrain', 'undraining'))
          : button('Drain this node', () => act('v1/drain', 'draining')));
      } else if (c.advertise) {
        actions.append(link(c.advertise, c.id ? `Open ${c.id}'s page` : 'Open its page'));
      }
      const name = el('td', { 'data-label': 'Node' },
        el('span', { class: 'id' }, c.id ?? 'unknown'),
        c.leads ? el('span', { class: 'badge' }, 'leader') : null,
        own ? el('span', { class: 'badge own' }, 'this page') : null,
        c.verified ? null : el('span', { class: 'badge warn' }, 'not verified'),
        c.advertise ? el('div', { class: 'advertise' }, c.advertise) : null);
      rows.append(el('tr', { class: c.leads ? 'leads' : null },
        cell('#', String(i + 1)),
        name,
        cell('Term or queued at', c.leads ? `term ${c.term}` : `queued at ${c.term}`),
        cell('Priority', String(c.priority)),
        cell('Healthy', yesNo(c.healthy, false)),
        cell('Drained', yesNo(c.drained, true)),
        actions));
    });
  }

  function button(words, onClick) {
    const b = el('button', { type: 'button', class: 'action' }, words);
    b.addEventListener('click', onClick);
    return b;
  }

  // ---- admin actions ----

  function say(kind, ...parts) {
    const outcome = byId('outcome');
    outcome.className = kind;
    outcome.replaceChildren(el('p', {}, ...parts));
  }

  /** A refusal as a sentence that says what to do. */
  function refusal(code, body, target) {
    const now = body && body.leader !== undefined ? ` ${leaderName(body.leader)} leads now.` : '';
    switch (code) {
      case 'admin_off':
        return ['This node has no admin token, so its admin actions are off: start it with --admin-token-file or ELECTD_ADMIN_TOKEN.'];
      case 'unauthorized':
        return ['The token was refused: enter the token this node was started with (--admin-token-file or ELECTD_ADMIN_TOKEN) and try again.'];
      case 'not_leader':
        if (status && status.leader && status.leader.advertise && status.leader.id) {
          return ['This node does not lead (any more): resign and hand-over go to the leader, ',
            link(status.leader.advertise, `open ${status.leader.id}'s page`), '.'];
        }
        return ['This node does not lead (any more): resign and hand-over go to the leader, and no leader is known now.'];
      case 'no_such_candidate':
        return [`No live candidate is called ${target}: pick one from the list as it is now.`];
      case 'ambiguous_candidate':
        return [`Several live candidates are called ${target}: give each node its own --id, then try again.`];
      case 'candidate_is_self':
        return [`${target} leads already: pick another node.`];
      case 'candidate_unhealthy':
        return [`${target} fails its health check, so it may not lead: fix its application or pick another node.`];
      case 'candidate_drained':
        return [`${target} is drained: undrain it on its own page first, or pick another node.`];
      case 'old_releases_present':
        return ['Nodes of an old release, or etcd election clients, are in this election: upgrade them before handing over to a named node, or resign without naming one.'];
      case 'needs_v3':
        return ['Handing over to a named node needs --api v3: resign without naming one.'];
      case 'transfer_timed_out':
        return [`${target} did not take over in time: the hand-over was withdrawn and the ordinary succession goes on.${now} Look at ${target}'s health and its link to etcd.`];
      case 'transfer_failed':
        return [`The leader stepped down, but etcd failed the hand-over: the ordinary succession goes on.${now} Look at etcd's health.`];
      case 'shutting_down':
        return ['This node is shutting down: try again on its page once it runs again.'];
      case 'transfer_refused':
        return [`The hand-over was refused (${body.message}): pick another node, or resign without naming one.`];
      default:
        return [`Refused${body && body.message ? `: ${body.message}` : ''}.`];
    }
  }

  function done(path, body) {
    const leader = body && body.leader ? leaderName(body.leader) : null;
    if (path.startsWith('v1/resign')) {
      return leader ? `Done: ${leader} leads now.` : 'Done: this node stepped down; no successor is known yet.';
    }
    if (path === 'v1/drain') return 'Drained: this node withdrew its candidacy until undrained or restarted.';
    return 'Undrained: this node is a candidate again.';
  }

  async function act(path, doing, target) {
    const token = window.sessionStorage.getItem(TOKEN_KEY) || '';
    if (!token) {
      say('refused', 'Enter the admin token first (above), then try again.');
      byId('token').focus();
      return;
    }
    const buttons = document.querySelectorAll('button.action, #resign');
    buttons.forEach((b) => { b.disabled = true; });
    say('busy', `${doing[0].toUpperCase()}${doing.slice(1)}…`);
    try {
      let response;
      try {
        response = await fetch(path, {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}` },
          cache: 'no-store',
        });
      } catch {
        say('refused', 'No answer from this node: is it running? Try again once it answers.');
        return;
      }
      const body = await response.json().catch(() => null);
      if (response.ok) {
        if (body) render(body);
        say('done', done(path, body));
      } else if (response.status === 404) {
        const admin = status && status.admin;
        say('refused', 'Admin actions are not served on this port: this node takes them on its admin listener (--admin-listen)',
          admin ? ': ' : '.', admin ? link(admin, `open its page there (${pageOf(admin)})`) : null, admin ? '.' : null);
      } else {
        say('refused', ...refusal(body && body.error, body, target));
      }
    } finally {
      document.querySelectorAll('button.action, #resign').forEach((b) => { b.disabled = false; });
    }
  }

  function setUpToken() {
    const input = byId('token');
    input.value = window.sessionStorage.getItem(TOKEN_KEY) || '';
    input.addEventListener('input', () => {
      if (input.value) window.sessionStorage.setItem(TOKEN_KEY, input.value);
      else window.sessionStorage.removeItem(TOKEN_KEY);
    });
    byId('token-form').addEventListener('submit', (event) => event.preventDefault());
    byId('forget').addEventListener('click', () => {
      window.sessionStorage.removeItem(TOKEN_KEY);
      input.value = '';
      say('done', 'Token forgotten: this tab no longer holds it.');
    });
    byId('resign').addEventListener('click', () => act('v1/resign', 'resigning'));
  }

  // ---- history ----

  const ENDED = {
    resign: 'resigned',
    shutdown: 'shut down',
    deadline: 'missed its deadline (etcd unreachable or slow, or the process paused)',
    lost: 'lost its claim in etcd',
    unhealthy: 'stepped down: its health check failed',
    drain: 'was drained',
    transfer: 'handed over',
    preempted: 'was preempted by a candidate of higher priority',
    expired: 'its lease expired',
    released: 'was released by its guardian (electd died)',
    unknown: 'ended, for a reason not recorded',
  };

  let historyRetry = null;

  /** Reads the history; after a change, again until it has `leader`'s term. */
  async function loadHistory(leader, tries = 3) {
    clearTimeout(historyRetry);
    let response;
    try {
      response = await fetch(`v1/history?limit=${HISTORY_LIMIT}`, { cache: 'no-store' });
    } catch {
      return;
    }
    const section = byId('history-section');
    const note = byId('history-note');
    if (response.status === 404) {
      // A node without the history endpoint.
      history = null;
      section.hidden = true;
      return;
    }
    section.hidden = false;
    if (response.status === 501) {
      history = null;
      note.textContent = 'The history needs etcd v3: this election runs on --api v2.';
      byId('history').replaceChildren();
      return;
    }
    const body = response.ok ? await response.json().catch(() => null) : null;
    if (!body || !Array.isArray(body.history)) {
      note.textContent = `The history could not be read (HTTP ${response.status}).`;
      return;
    }
    history = body.history;
    showHistory(Array.isArray(body.skipped) ? body.skipped : []);
    showSince();
    if (leader && tries > 1 && !history.some((h) => h.term === leader.term)) {
      historyRetry = setTimeout(() => loadHistory(leader, tries - 1), 500);
    }
  }

  function showHistory(skipped) {
    const list = byId('history');
    const leader = status && status.leader;
    byId('history-note').textContent = history.length
      ? `Who led, newest first (the last ${HISTORY_LIMIT} at most). Times are by each leader's own clock.`
      : 'Nobody has led yet.';
    list.replaceChildren(...history.map((h) => {
      const open = h.ended_at === null && h.reason === null;
      const leads = open && leader && leader.term === h.term;
      const span = h.acquired_at ? [' from ', when(h.acquired_at)] : [];
      let end;
      if (leads) {
        end = el('span', { class: 'now' }, ': leads now');
      } else if (open) {
        end = ': its end is not recorded yet';
      } else {
        const lasted = h.acquired_at && h.ended_at
          ? ` after ${duration(Date.parse(h.ended_at) - Date.parse(h.acquired_at), true)}`
          : '';
        const how = ENDED[h.reason] || h.reason || 'ended';
        const handedTo = h.to && h.reason === 'transfer' ? ` to ${h.to}` : '';
        const next = h.to && h.reason !== 'transfer' ? `; ${h.to} took over` : '';
        end = `: ${how}${handedTo}${lasted}${next}`;
      }
      return el('li', { class: leads ? 'current' : null },
        el('span', { class: 'term' }, `term ${h.term}`), ' ', el('strong', {}, h.id), ...span, end);
    }));
    const foreign = byId('history-skipped');
    foreign.hidden = !skipped || skipped.length === 0;
    foreign.replaceChildren();
    if (!foreign.hidden) {
      foreign.append('Keys in the history that electd did not write, shown here and never trusted: ',
        ...skipped.flatMap((k, i) => [i ? '; ' : '', el('code', {}, k.key), ` (${k.why})`]), '.');
    }
  }

  // ---- shards ----

  /** The legend's colours (app.css's .lead-0 to .lead-11), then again. */
  const SHARD_COLOURS = 12;
  const MOVES_SHOWN = 20;
  /** Past this many shards, smaller cells. */
  const DENSE = 1000;
  /** Each shard's leader ({id, term} or null), the last leader seen of
   * each (kept while it has none: a move is from there), and its cell. */
  let shardMap = null;
  /** Each node's colour, given in the order the page first saw them. */
  const colours = new Map();
  /** Newest first, at most MOVES_SHOWN. */
  let moves = [];
  let shardDraw = null;

  function colour(id) {
    if (!colours.has(id)) colours.set(id, colours.size % SHARD_COLOURS);
    return colours.get(id);
  }

  /** Reads /v1/shards: whether this election has shards. */
  async function loadShards() {
    let response;
    try {
      response = await fetch('v1/shards', { cache: 'no-store' });
    } catch {
      return false;
    }
    const body = response.ok ? await response.json().catch(() => null) : null;
    if (!body || !Array.isArray(body.shards)) return false;
    byId('shards-section').hidden = false;
    setShards(body.count, body.shards, false);
    return true;
  }

  /** The whole map (the answer, or a `shards` event); with `seeMoves`, a
   * shard now led by another node than last seen is a move. */
  function setShards(count, shards, seeMoves) {
    if (!shardMap || shardMap.leaders.length !== count) {
      const cells = Array.from({ length: count }, () => el('div', { class: 'shard lead-none' }));
      const grid = byId('shard-grid');
      grid.classList.toggle('dense', count > DENSE);
      grid.replaceChildren(...cells);
      shardMap = { leaders: new Array(count).fill(null), lastSeen: new Array(count).fill(null), cells };
    }
    const given = new Array(count).fill(false);
    for (const shard of shards) {
      if (shard.shard >= 0 && shard.shard < count) given[shard.shard] = true;
      setShard(shard, seeMoves);
    }
    given.forEach((was, k) => { if (!was) setShard({ shard: k, leader: null, term: null }, seeMoves); });
  }

  /** One shard's leader and term (a `shard` event). */
  function setShard(shard, seeMoves) {
    const k = shard.shard;
    if (!shardMap || !Number.isInteger(k) || k < 0 || k >= shardMap.leaders.length) return;
    const now = shard.leader ? { id: String(shard.leader.id), term: shard.term } : null;
    const last = shardMap.lastSeen[k];
    if (now && last !== now.id) {
      if (seeMoves) {
        moves.unshift({ shard: k, from: last, to: now.id, term: now.term, at: new Date() });
        moves = moves.slice(0, MOVES_SHOWN);
      }
      shardMap.lastSeen[k] = now.id;
    }
    shardMap.leaders[k] = now;
    const cell = shardMap.cells[k];
    cell.className = `shard lead-${now ? colour(now.id) : 'none'}`;
    cell.title = now ? `shard ${k}: ${now.id}, term ${now.term}` : `shard ${k}: no leader`;
    // A move of many shards is one event each: one redraw for them all.
    if (!shardDraw) shardDraw = setTimeout(drawShards, 100);
  }

  /** The summary, the legend with each node's count, and the moves. */
  function drawShards() {
    shardDraw = null;
    const counts = new Map();
    let leaderless = 0;
    for (const leader of shardMap.leaders) {
      if (leader) counts.set(leader.id, (counts.get(leader.id) || 0) + 1);
      else leaderless += 1;
    }
    const count = shardMap.leaders.length;
    const summary = `${count} shards, ${leaderless} without a leader, over ${counts.size} nodes.`;
    byId('shards-summary').textContent =
      `${summary} Each cell is a shard, coloured by its leader (hover over one for its term).`;
    byId('shard-grid').setAttribute('aria-label', `Shard map: ${summary}`);
    const ids = [...counts.keys()].sort();
    byId('shard-nodes').tBodies[0].replaceChildren(...ids.map((id) => el('tr', { 'data-node': id },
      cell('Node', el('span', { class: `swatch lead-${colour(id)}`, 'aria-hidden': 'true' }),
        el('span', { class: 'id' }, id)),
      cell('Leads', String(counts.get(id))))));
    byId('shard-moves-note').hidden = moves.length > 0;
    byId('shard-moves').replaceChildren(...moves.map((m) => el('li', {},
      `shard ${m.shard}: ${m.from ?? 'no leader seen'} → ${m.to}, term ${m.term}, `,
      el('time', { datetime: m.at.toISOString() }, m.at.toLocaleTimeString()))));
  }

  // ---- the stream ----

  function showStream(live) {
    const line = byId('stream');
    line.textContent = live
      ? 'Live: changes show as they happen.'
      : 'Stream broken: this page is not updating; reconnecting…';
    line.classList.toggle('broken', !live);
    document.body.classList.toggle('stale', !live);
  }

  function parse(data) {
    try {
      return JSON.parse(data);
    } catch {
      return undefined;
    }
  }

  function connect() {
    clearTimeout(reconnectTimer);
    if (source) source.close();
    source = new EventSource(sharded ? 'v1/watch?events=leader,status,shards' : 'v1/watch');
    source.addEventListener('open', () => {
      reconnectDelay = 1000;
      showStream(true);
    });
    source.addEventListener('status', (event) => {
      const body = parse(event.data);
      if (body) render(body);
    });
    source.addEventListener('leader', (event) => {
      const leader = parse(event.data);
      if (leader === undefined || !status) return;
      status.leader = leader;
      showLeader(leader);
    });
    // On connect and after a reconnect: what changed meanwhile are moves too.
    source.addEventListener('shards', (event) => {
      const body = parse(event.data);
      if (body && Array.isArray(body.shards)) setShards(body.count, body.shards, true);
    });
    source.addEventListener('shard', (event) => {
      const shard = parse(event.data);
      if (shard) setShard(shard, true);
    });
    source.addEventListener('error', () => {
      showStream(false);
      // The browser reconnects by itself after a dropped stream, but gives
      // up on an answer that is not a stream (a 503 when too many are open).
      if (source.readyState === EventSource.CLOSED) {
        reconnectTimer = setTimeout(connect, reconnectDelay);
        reconnectDelay = Math.min(reconnectDelay * 2, 15000);
      }
    });
  }

  async function start() {
    setUpToken();
    try {
      const response = await fetch('v1/status', { cache: 'no-store' });
      if (response.ok) render(await response.json());
    } catch {
      showStream(false);
    }
    sharded = await loadShards();
    connect();
    setInterval(showSince, 1000);
  }

  start();
})();
