/* Social Inbox: the agents' workspace on the JSON agent API (no framework, no build step).
   Every text from a social network is untrusted: it reaches the page only through
   textContent and attributes set as properties, never as markup; links are made only for
   http(s) URLs. The page's CSP (Trusted Types, no inline script) backs this up. */
(function () {
  'use strict';

  // the app root, also under a stage prefix
  var BASE = new URL('..', document.currentScript.src);
  var TOKEN_KEY = 'socialinbox.token';
  // rotates on every refresh; a reused one ends the sign-in
  var REFRESH_KEY = 'socialinbox.refresh';
  var SEEN_KEY = 'socialinbox.alerts-seen';
  // Without live updates an idle open inbox costs one small GET /api/changes per POLL_MS (list,
  // counts, the open thread and, every VIEWERS_MS, who else is in it), plus the heartbeats: about
  // 30 requests a minute. With them (the socket below) it polls nothing but a safety read.
  var POLL_MS = 2500;
  // who else is viewing/typing: asked in the poll this often
  var VIEWERS_MS = 10000;
  // 'viewing/typing' heartbeat while a thread is open (others see it 20 s)
  var VIEW_MS = 15000;
  // online heartbeat (routing's grace period is 90 s)
  var PRESENCE_MS = 45000;
  var ALERTS_MS = 60000;
  // Live updates (push): while the socket is up nothing is polled but this slow safety read; its
  // beats carry the presence and viewing heartbeats and keep the socket open (API Gateway closes
  // idle ones).
  var SAFETY_MS = 300000;
  var RETRY_MS = 1000;
  var RETRY_MAX_MS = 60000;
  var COUNTS_MS = 10000;
  // safety net: list and counts read again even if no change was stamped; with the socket up
  // (hints, and the SAFETY_MS read of what changed) a third net is needed less often
  var FULL_MS = 120000;
  var FULL_LIVE_MS = 900000;
  var PAGE = 25;
  var MAX_MESSAGE_PAGES = 20;
  var STATUSES = ['open', 'pending', 'snoozed', 'resolved'];
  var DIRECTIONS = ['in', 'out', 'note'];
  var CHANNELS = {messenger: 'Messenger', instagram: 'Instagram', whatsapp: 'WhatsApp', facebook: 'Facebook',
    x: 'X', telegram: 'Telegram', linkedin: 'LinkedIn'};
  var VIEWS = {
    mine: {assignee: 'me'}, unassigned: {assignee: 'none'}, team: {},
    at_risk: {sla: 'at_risk'}, breached: {sla: 'breached'}, all: {all: true}
  };
  var TICKS = {queued: '◷ queued', unknown: '? unknown', sent: '✓ sent', delivered: '✓✓ delivered',
    read: '✓✓ read', failed: '✕ failed'};
  var UNSETTLED = ['queued', 'unknown', 'sent'];

  var state = {
    token: sessionStorage.getItem(TOKEN_KEY), me: null,
    view: 'team', status: 'open', channel: '', assignee: '', tag: '', sort: 'due',
    items: [], next: null, listKey: '', listGen: 0, listBusy: false,
    selected: null, conv: null, convKey: '', thread: [], events: [], threadKey: '', threadGen: 0,
    threadBusy: false, pending: [], draft: null, typing: null, sending: false, sendNext: false, mode: 'reply', timers: [],
    checked: new Set(), since: '', viewersAt: 0, countsDue: false, countsAt: 0, window: null, contact: null, contactFor: '', contactLatest: ''
  };

  function $(id) { return document.getElementById(id); }

  // agent id -> the name the API answers beside it (assignee_name, the `agents` maps of event logs
  // and notifications, the picker's team lists): the page never shows an agent id
  var names = {};

  function learn(map) {
    Object.keys(map || {}).forEach(function (id) { if (typeof map[id] === 'string') names[id] = map[id]; });
  }

  function learnOwner(c) {
    if (c && c.assignee && typeof c.assignee_name === 'string') names[c.assignee] = c.assignee_name;
  }

  function nameOf(id) { return state.me && id === state.me.id ? 'You' : names[id] || 'another agent'; }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // --- API -------------------------------------------------------------------------------------

  function ApiError(status, message, data) {
    this.status = status;
    this.message = message;
    this.data = data || {};
    this.code = this.data.Code || '';
    this.handled = false;
  }

  // Access tokens live 15 min; the refresh token keeps the agent signed in through a shift. One
  // refresh at a time (a second use of the same refresh token would revoke the whole sign-in).
  var refreshing = null;

  function keepSession(data) {
    state.token = data.token;
    sessionStorage.setItem(TOKEN_KEY, data.token);
    if (data.refresh_token) sessionStorage.setItem(REFRESH_KEY, data.refresh_token);
  }

  function renew() {
    if (!refreshing) {
      var token = sessionStorage.getItem(REFRESH_KEY);
      refreshing = (token ? fetch(new URL('api/auth/refresh', BASE), {method: 'POST', cache: 'no-store',
        credentials: 'omit', headers: {'Content-Type': 'application/json', Accept: 'application/json'},
        body: JSON.stringify({refresh_token: token})}).then(function (response) {
          return response.ok ? response.json().then(function (data) { keepSession(data); return true; }) : false;
        }).catch(() => false) : askPeers().then(function (t) {
          if (t) keepSession({token: t});
          return Boolean(t);
        })).finally(function () { refreshing = null; });
    }
    return refreshing;
  }

  // Other tabs of this sign-in: a new tab asks them for an access token instead of the sign-in
  // form. Only the tab that signed in holds the refresh token (it is used once: two holders would
  // end the sign-in), so it answers with a fresh access token whenever another tab asks.
  var peers = window.BroadcastChannel ? new BroadcastChannel('socialinbox.session') : null;

  function askPeers() {
    if (!peers) return Promise.resolve(null);
    return new Promise(function (resolve) {
      var listen = function (e) { if (e.data && e.data.type === 'token' && typeof e.data.token === 'string') done(e.data.token); };
      var timer = setTimeout(function () { done(null); }, 800);
      var done = function (token) { peers.removeEventListener('message', listen); clearTimeout(timer); resolve(token); };
      peers.addEventListener('message', listen);
      peers.postMessage({type: 'ask'});
    });
  }

  function expiresSoon(token, within) {
    try {
      var claims = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
      return claims.exp * 1000 - Date.now() < (within || 60000);
    } catch (e) { return true; }
  }

  if (peers) {
    peers.addEventListener('message', async function (e) {
      var m = e.data || {};
      if (m.type === 'ask' && state.token && sessionStorage.getItem(REFRESH_KEY)) {
        if (!expiresSoon(state.token) || await renew()) peers.postMessage({type: 'token', token: state.token});
      } else if (m.type === 'signout' && state.token) {
        signOut('You signed out in another tab.', true);
      }
    });
  }

  async function api(path, method, body, retried) {
    var init = {method: method || 'GET', headers: {Accept: 'application/json'}, cache: 'no-store',
      credentials: 'omit'};
    if (state.token) init.headers.Authorization = 'Bearer ' + state.token;
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    var response, data = null;
    try {
      response = await fetch(new URL(path, BASE), init);
    } catch (e) {
      throw new ApiError(0, 'Cannot reach the server; check the connection and try again.');
    }
    if (response.status === 304) return {unchanged: true};
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      var message = data && typeof data.Message === 'string' && data.Message ? data.Message
        : 'The server answered ' + response.status + '.';
      var error = new ApiError(response.status, message, data);
      // a wrong password (sign-in, password change) is not an ended session
      var session = response.status === 401 && !/^api\/(auth\/login|me\/password)$/.test(path);
      if (session && !retried && state.token && await renew()) {
        return api(path, method, body, true);
      }
      if (session) {
        signOut('Your session has ended. Please sign in again.');
        error.handled = true;
      }
      throw error;
    }
    return data || {};
  }

  function convPath(id) { return 'api/conversations/' + encodeURIComponent(id || state.selected); }

  // --- sign in / out ---------------------------------------------------------------------------

  function showLogin(message) {
    $('app').hidden = true;
    ['logout', 'notif', 'help-toggle', 'notif-panel', 'help'].forEach(function (id) { $(id).hidden = true; });
    $('who').textContent = '';
    $('admin-link').hidden = $('password-form').hidden = true;
    $('login-form').hidden = $('login').hidden = false;
    $('login-error').textContent = message || '';
    $('email').focus();
  }

  function signOut(message, quiet) {
    if (message === '' && peers && !quiet) peers.postMessage({type: 'signout'});
    closeLive();
    state.timers.forEach(clearInterval);
    state.timers = [];
    if (state.token && message === '') api('api/me/presence', 'PUT', {status: 'offline'}).catch(function () {});
    var refreshToken = sessionStorage.getItem(REFRESH_KEY);
    if (refreshToken && message === '') {
      fetch(new URL('api/auth/logout', BASE), {method: 'POST', cache: 'no-store', credentials: 'omit',
        headers: {'Content-Type': 'application/json'}, body: JSON.stringify({refresh_token: refreshToken})})
        .catch(function () {});
    }
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(REFRESH_KEY);
    state.items = [];
    state.next = null;
    state.listKey = state.threadKey = state.convKey = '';
    state.listGen++;
    state.threadGen++;
    state.selected = state.conv = null;
    state.pending = [];
    $('app').classList.remove('reading');
    $('conversations').replaceChildren();
    $('more').hidden = true;
    $('list-note').textContent = '';
    clearThread('Select a conversation.');
    // an ended session keeps the address: signing in again lands on the same conversation
    if (message === '') history.replaceState(null, '', location.pathname + location.search);
    document.title = 'Social Inbox';
    showLogin(message);
  }

  async function onLogin(event) {
    event.preventDefault();
    var button = event.target.querySelector('button');
    button.disabled = true;
    $('login-error').textContent = '';
    try {
      var data = await api('api/auth/login', 'POST', {email: $('email').value.trim(), password: $('password').value});
      keepSession(data);
      $('password').value = '';
      await start();
    } catch (e) {
      $('login-error').textContent = e.status === 401 ? 'Wrong email or password.' : e.message;
    } finally {
      button.disabled = false;
    }
  }

  async function onPasswordChange(event) {
    event.preventDefault();
    $('password-error').textContent = '';
    try {
      keepSession(await api('api/me/password', 'POST',
        {current_password: $('pw-current').value, new_password: $('pw-new').value}));
      $('pw-current').value = $('pw-new').value = '';
      $('password-form').hidden = true;
      await start();
    } catch (e) {
      if (!e.handled) $('password-error').textContent = e.message;
    }
  }

  async function start() {
    try {
      state.me = await api('api/me');
    } catch (e) {
      if (!e.handled) showLogin(e.message);
      return;
    }
    var me = state.me;
    $('who').textContent = (me.name || me.email || '') + (me.role === 'admin' ? ' (admin)' : '');
    if (me.must_change_password) {  // the API answers nothing else until then
      $('login-form').hidden = $('app').hidden = true;
      $('login').hidden = $('password-form').hidden = false;
      $('logout').hidden = false;
      $('pw-current').focus();
      return;
    }
    $('admin-link').hidden = me.role !== 'admin' && me.role !== 'supervisor';
    $('login').hidden = true;
    ['logout', 'notif', 'help-toggle'].forEach(function (id) { $(id).hidden = false; });
    $('app').hidden = false;
    state.selected = selectedFromHash();
    $('app').classList.toggle('reading', Boolean(state.selected));
    syncControls();
    state.since = '';
    // the token first: what changes after it is seen by the next poll
    await poll(true);
    loadList('reset');
    if (state.selected) loadThread(true);
    presence('online');
    loadCounts();
    loadAlerts();
    loadAgents();
    state.timers.forEach(clearInterval);
    live.url = typeof state.me.push_url === 'string' ? state.me.push_url : '';
    live.at = {poll: Date.now(), alerts: Date.now(), full: Date.now()};
    connectLive();
    state.timers = [setInterval(function () { if (visible() && due('poll', POLL_MS)) poll(false); }, POLL_MS),
      setInterval(function () { if (visible()) presence('online', true); }, PRESENCE_MS),
      setInterval(function () { if (visible() && due('alerts', ALERTS_MS)) loadAlerts(); }, ALERTS_MS),
      setInterval(function () { if (visible() && due('full', FULL_MS, FULL_LIVE_MS)) { loadList('refresh'); loadCounts(); } }, FULL_MS),
      setInterval(function () { beat(false); }, VIEW_MS),
      // receipts (sent, delivered, read) change only the message, which the socket never hears
      // of: while a reply of the open thread is unsettled, its thread is re-read as polling did
      setInterval(function () { if (visible() && live.up && state.selected && unsettled()) loadThread(false); }, POLL_MS),
      setInterval(tick, 1000)];
  }

  function visible() { return Boolean(state.token) && !document.hidden; }

  // --- live updates: a socket tells which conversations changed; polling only without it --------

  // presenceAt: when presence was last sent; shown: the digest of the viewers the socket last
  // brought ({id, digest}), so it answers only when they changed
  var live = {url: '', socket: null, up: false, retry: RETRY_MS, timer: null, sentToken: '', at: {}, presenceAt: 0,
    shown: null};

  // a periodic read runs at its own pace without the socket, at SAFETY_MS (or `liveMs`) with it
  function due(what, ms, liveMs) {
    var now = Date.now(), every = live.up ? Math.max(ms, liveMs || SAFETY_MS) : ms;
    if (now - (live.at[what] || 0) < every - 500) return false;
    live.at[what] = now;
    return true;
  }

  async function connectLive() {
    if (!live.url || !state.token || live.socket || !window.WebSocket) return;
    if (expiresSoon(state.token) && !await renew()) return retryLive();
    var socket;
    try {
      socket = new WebSocket(live.url + '?' + new URLSearchParams({token: state.token}));
    } catch (e) {
      return retryLive();
    }
    live.socket = socket;
    live.sentToken = state.token;
    socket.onopen = function () {
      live.up = true;
      live.retry = RETRY_MS;
      // what changed while the socket was down
      if (visible()) poll(false);
    };
    socket.onmessage = function (e) {
      var data = null;
      try { data = JSON.parse(e.data); } catch (x) { return; }
      if (data && data.type === 'changed' && Array.isArray(data.conversations)) changedLive(data);
      if (data && data.type === 'viewers' && Array.isArray(data.viewers) && data.conversation_id === state.selected) {
        renderViewers(data.viewers, data.digest);
      }
    };
    socket.onclose = function () {
      if (live.socket !== socket) return;
      live.socket = null;
      live.up = false;
      // polling again at once, and a new socket after a growing pause
      live.at = {};
      if (state.token) retryLive();
    };
  }

  function retryLive() {
    clearTimeout(live.timer);
    live.timer = setTimeout(connectLive, live.retry);
    live.retry = Math.min(live.retry * 2, RETRY_MAX_MS);
  }

  function closeLive() {
    clearTimeout(live.timer);
    var socket = live.socket;
    live.socket = null;
    live.up = false;
    if (socket) socket.close();
  }

  // the beat: presence, viewing, keep-alive, and the token once it was renewed (the socket lives
  // with it); false when it could not be sent (the caller uses REST then)
  async function beatLive(fields) {
    if (!live.up) return false;
    if (expiresSoon(state.token, 120000)) await renew();
    var message = Object.assign({action: 'beat'}, fields);
    // an open thread's heartbeats carry presence too, once it is due before the next of them
    if (message.viewing && !message.presence && Date.now() - live.presenceAt >= PRESENCE_MS - VIEW_MS) {
      message.presence = 'online';
    }
    if (state.token !== live.sentToken) message.token = live.sentToken = state.token;
    if (!live.up || !live.socket) return false;
    try { live.socket.send(JSON.stringify(message)); } catch (e) { return false; }
    if (message.presence) live.presenceAt = Date.now();
    return true;
  }

  function changedLive(data) {
    if (document.hidden) return;
    var ids = data.conversations;
    loadList('refresh');
    state.countsDue = true;
    // a busy team changes all the time: its counts are read at most every COUNTS_MS
    var wait = COUNTS_MS - (Date.now() - state.countsAt);
    if (wait <= 0) loadCounts();
    else if (!live.countsTimer) live.countsTimer = setTimeout(function () { live.countsTimer = null; if (state.countsDue) loadCounts(); }, wait);
    if (state.selected && (data.more || ids.indexOf(state.selected) >= 0)) loadThread(false);
    // SLA warnings and breaches change conversations too: the alerts follow, at most every 10 s
    if (due('alertsLive', COUNTS_MS)) loadAlerts();
  }

  // --- what changed: one small request instead of re-reading list, counts and thread ------------

  var polling = false;

  async function poll(prime) {
    if (polling || !state.token) return;
    polling = true;
    live.at.poll = Date.now();
    var id = state.selected, q = {};
    if (id) q.conversation = id;
    // on live updates the viewing heartbeat brings who else is here (and only when it changed)
    if (id && !live.up && (prime || Date.now() - state.viewersAt >= VIEWERS_MS - 500)) {
      q.viewers = '1';
      state.viewersAt = Date.now();
    }
    if (state.since) q.since = state.since;
    var data;
    try {
      data = await api('api/changes?' + new URLSearchParams(q));
    } catch (e) {
      // the list and thread show their own errors when they next load
      data = null;
    } finally {
      polling = false;
    }
    if (!data || prime) {
      if (data && data.token) state.since = data.token;
      return;
    }
    var changed = data.unchanged ? [] : data.changed || [];
    if (data.token) state.since = data.token;
    // retried every poll
    var failed = note => $(note).classList.contains('error');
    if (changed.indexOf('list') >= 0 || failed('list-note')) loadList('refresh');
    if (changed.indexOf('counts') >= 0) state.countsDue = true;
    // a busy team changes all the time: its counts are read at most every COUNTS_MS
    if (state.countsDue && Date.now() - state.countsAt >= COUNTS_MS) loadCounts();
    if (id && id === state.selected) {
      if (changed.indexOf('thread') >= 0 || unsettled() || failed('thread-note')) loadThread(false);
      if (Array.isArray(data.viewers)) renderViewers(data.viewers);
    }
  }

  async function presence(status, timer) {
    if (!state.token) return;
    // the timer's heartbeat: an open thread's beats on the socket carry it (beatLive)
    if (timer && live.up && state.selected && Date.now() - live.presenceAt < PRESENCE_MS - 1000) return;
    if (await beatLive({presence: status})) return;
    live.presenceAt = Date.now();
    api('api/me/presence', 'PUT', {status: status}).catch(function () {});
  }

  // the Assignee filter's suggestions: the names of the agents the picker offers
  async function loadAgents() {
    try {
      var agents = await picker.load(false);
      agents.forEach(function (a) { names[a.agent_id] = a.name; });
      $('agents').replaceChildren(...agents.map(function (a) {
        var option = el('option');
        option.value = a.name;
        option.label = a.online ? 'online' : '';
        return option;
      }));
    } catch (e) { /* the datalist only helps typing */ }
  }

  // the one assign picker (picker.js), for the open conversation and for the bulk selection
  var picker = window.SocialInboxPicker.create({api: api, me: function () { return state.me; }});

  function openAssign() {
    var c = state.conv, id = state.selected;
    if (!c || !id || c.id !== id) return;
    picker.open($('act-assign'), {title: 'Assign ' + contactName(c) + ' to', onChoose: function (a) {
      if (id !== state.selected) return 'Another conversation is open now.';
      names[a.agent_id] = a.name;
      // yourself on an unassigned conversation: a claim (of two racing claims one wins)
      var mine = state.me && a.agent_id === state.me.id;
      return act(mine && !state.conv.assignee ? {assignee: 'me', claim: true} : {assignee: a.agent_id},
        'assign to ' + nameOf(a.agent_id));
    }});
  }

  function openBulkAssign() {
    if (!state.checked.size) return;
    picker.open($('bulk-assign'), {title: 'Assign ' + state.checked.size + ' selected to', onChoose: function (a) {
      names[a.agent_id] = a.name;
      return bulk({assignee: a.agent_id}, 'Assign to ' + nameOf(a.agent_id));
    }});
  }

  // --- alerts ----------------------------------------------------------------------------------

  var alerts = [];
  var LISTENING_ALERTS = {listening_spike: 'Spike', sentiment_dip: 'Sentiment dip'};  // chalicelib.listening.spikes

  async function loadAlerts() {
    try {
      var data = await api('api/me/notifications?limit=20');
      alerts = data.items || [];
      learn(data.agents);
    } catch (e) { return; }
    var seen = sessionStorage.getItem(SEEN_KEY) || '';
    var fresh = alerts.filter(n => String(n.at) > seen).length;
    $('notif-count').hidden = !fresh;
    $('notif-count').textContent = fresh;
    if (!$('notif-panel').hidden) renderAlerts();
  }

  function renderAlerts() {
    var list = $('notif-list');
    list.replaceChildren(...alerts.length ? alerts.map(function (n) {
      var d = n.data || {};
      if (String(n.kind).indexOf('staffing_') === 0) return staffingAlert(n, d);
      var item = el('li');
      if (LISTENING_ALERTS[n.kind]) {  // about a topic, not a conversation: text only, escaped by el()
        item.append(el('span', '', LISTENING_ALERTS[n.kind] + ' · ' + String(d.topic || '') + ' · ' + ago(n.at)));
        return item;
      }
      var known = Object.prototype.hasOwnProperty.call(CHANNELS, d.channel);
      var button = el('button', 'link', [(n.kind === 'sla_breached' ? 'Deadline breached' : n.kind === 'sla_warning'
        ? 'Deadline warning' : String(n.kind).replace(/_/g, ' ')) + (d.contact ? ': ' + d.contact : '')
        + (known ? ' (' + CHANNELS[d.channel] + ')' : ''),
      d.assignee ? 'assigned to ' + nameOf(d.assignee) : 'unassigned', ago(n.at)].join(' · '));
      button.type = 'button';
      button.dataset.id = n.conversation_id;
      item.append(button);
      return item;
    }) : [el('li', 'note', 'Nothing new.')]);
  }

  // the staffing checks' alerts (supervisors): a link to the Staffing screen, not a conversation
  function staffingAlert(n, d) {
    var text = n.kind === 'staffing_burst' ? 'Burst: ' + d.arrivals + ' new conversations so far, about ' + d.expected
      + ' expected' : 'Understaffed: ' + d.online + ' online, ' + d.required + ' needed';
    var link = el('a', 'link', [text, d.label, ago(n.at)].filter(Boolean).join(' · '));
    link.href = 'staffing';
    var item = el('li');
    item.append(link);
    return item;
  }

  function toggleAlerts() {
    var panel = $('notif-panel');
    panel.hidden = !panel.hidden;
    $('notif').setAttribute('aria-expanded', String(!panel.hidden));
    if (panel.hidden) return;
    renderAlerts();
    if (alerts.length) sessionStorage.setItem(SEEN_KEY, String(alerts[0].at));
    $('notif-count').hidden = true;
  }

  // --- views and filters -----------------------------------------------------------------------

  function syncControls() {
    var tabs = document.querySelectorAll('[data-view]');
    for (var i = 0; i < tabs.length; i++) {
      var on = tabs[i].dataset.view === state.view;
      tabs[i].setAttribute('aria-selected', String(on));
      tabs[i].tabIndex = on ? 0 : -1;
    }
    var view = VIEWS[state.view];
    var fixedOpen = Boolean(view.sla);
    $('status').disabled = fixedOpen || view.all;
    $('status').value = fixedOpen ? 'open' : state.status;
    $('status').title = view.all ? 'All statuses are shown' : fixedOpen ? 'Deadlines run on open conversations' : '';
    $('channel').value = state.channel;
    $('assignee').value = state.assignee;
    $('assignee').disabled = Boolean(view.assignee);
    $('tag').value = state.tag;
    // The API orders assignee and deadline views by reply deadline only.
    var dueOnly = Boolean(view.assignee || view.sla || (state.view === 'team' && state.assignee));
    $('sort').disabled = dueOnly;
    $('sort').value = dueOnly ? 'due' : state.sort;
    $('sort').title = dueOnly ? 'This view is ordered by reply deadline' : '';
  }

  function changeView() {
    syncControls();
    state.items = [];
    state.next = null;
    state.listKey = '';
    state.listGen++;
    state.listBusy = false;
    $('conversations').replaceChildren();
    $('more').hidden = true;
    loadList('reset');
  }

  function assigneeValue(raw) {
    var value = (raw || '').trim(), lower = value.toLowerCase();
    if (lower === 'me' || lower === 'you') return 'me';
    if (lower === 'none' || lower === 'unassigned') return 'none';
    var named = Object.keys(names).filter(id => String(names[id]).toLowerCase() === lower);
    return named.length === 1 ? named[0] : value;
  }

  function viewQueries(name) {
    var view = VIEWS[name];
    var base = {};
    if (state.channel) base.channel = state.channel;
    if (state.tag.trim()) base.tag = state.tag.trim();
    if (view.all) {
      return STATUSES.map(function (s) { return Object.assign({status: s, sort: state.sort}, base); });
    }
    var q = Object.assign({status: state.status, sort: 'due'}, base);
    if (view.sla) { q.status = 'open'; q.sla = view.sla; }
    else if (view.assignee) q.assignee = view.assignee;
    else if (state.assignee) q.assignee = assigneeValue(state.assignee);
    else q.sort = state.sort;
    return [q];
  }

  function query(params, extra) {
    return 'api/conversations?' + new URLSearchParams(Object.assign({}, params, extra));
  }

  // the one filter applied in the page: the assignee outside the Team view (the API filters the rest)
  function keep(c) {
    var view = VIEWS[state.view];
    var who = assigneeValue(state.assignee);
    if (who && !view.assignee && state.view !== 'team') {
      if (who === 'none' ? c.assignee : c.assignee !== (who === 'me' ? state.me.id : who)) return false;
    }
    return true;
  }

  // does a conversation (after an action) still belong in the shown view?
  function belongs(c) {
    var view = VIEWS[state.view];
    if (view.all) return keep(c);
    if (c.status !== (view.sla ? 'open' : state.status)) return false;
    if (view.sla && !(c.sla && (view.sla === 'breached' ? c.sla.state === 'breached' : c.sla.state !== 'ok'))) return false;
    if (view.assignee === 'me' && c.assignee !== state.me.id) return false;
    if (view.assignee === 'none' && c.assignee) return false;
    if (state.tag.trim() && (c.tags || []).indexOf(state.tag.trim().toLowerCase()) < 0) return false;
    return keep(c);
  }

  function dueOf(c) {
    var due = Date.parse((c.sla && c.sla.due_at) || c.reply_due_at || '');
    return isNaN(due) ? Infinity : due;
  }

  function byOrder(a, b) {
    if (state.sort === 'due' || VIEWS[state.view].sla) {
      var d = dueOf(a) - dueOf(b);
      if (d) return d;
    }
    return String(b.last_message_at || '').localeCompare(String(a.last_message_at || ''));
  }

  async function loadCounts() {
    state.countsDue = false;
    state.countsAt = Date.now();
    var data;
    try {
      data = await api('api/counts' + (state.channel ? '?' + new URLSearchParams({channel: state.channel}) : ''));
    // the counts come back with the next change
    } catch (e) { return; }
    ['mine', 'unassigned', 'team', 'at_risk', 'breached'].forEach(function (name) {
      var n = (data.counts || {})[name];
      document.querySelector('[data-count=' + name + ']').textContent = typeof n === 'number'
        ? n + ((data.capped || []).indexOf(name) >= 0 ? '+' : '') : '';
    });
  }

  // --- conversation list -----------------------------------------------------------------------

  async function loadList(mode) {
    if (state.listBusy && mode !== 'reset') return;
    var gen = state.listGen;
    var note = $('list-note');
    var queries = viewQueries(state.view);
    var merged = queries.length > 1;
    if (mode === 'more' && (merged || !state.next)) return;
    state.listBusy = true;
    $('more').disabled = true;
    if (mode === 'reset') { note.textContent = 'Loading…'; note.classList.remove('error'); }
    var results;
    try {
      results = await Promise.all(queries.map(function (q) {
        return api(query(q, mode === 'more' ? {limit: PAGE, cursor: state.next}
          : {limit: merged ? 50 : mode === 'refresh' ? Math.min(100, Math.max(PAGE, state.items.length)) : PAGE}));
      }));
    } catch (e) {
      if (gen === state.listGen) {
        state.listBusy = false;
        $('more').disabled = false;
        if (!e.handled) { note.textContent = e.message + ' Retrying every few seconds.'; note.classList.add('error'); }
      }
      return;
    }
    if (gen !== state.listGen) return;
    state.listBusy = false;
    $('more').disabled = false;
    note.classList.remove('error');
    var items = [];
    results.forEach(function (data) { items = items.concat(Array.isArray(data.items) ? data.items : []); });
    if (merged) items.sort(byOrder);
    var seen = new Set(items.map(c => c.id));
    var data = results[0];
    if (mode === 'more') {
      state.items = state.items.filter(c => !seen.has(c.id)).concat(items);
      state.next = data.next || null;
    } else if (mode === 'refresh' && !merged && data.next && state.items.length > items.length) {
      // more was loaded than one request returns: refresh the head, keep the tail and its cursor
      state.items = items.concat(state.items.slice(items.length).filter(c => !seen.has(c.id)));
    } else {
      state.items = items;
      state.next = merged ? null : data.next || null;
    }
    renderList();
  }

  function shown() { return state.items.filter(keep); }

  function renderList() {
    var list = $('conversations');
    var items = shown();
    var note = $('list-note');
    if (!note.classList.contains('error')) {
      note.textContent = items.length ? (state.assignee && state.view !== 'team')
        ? 'Filtered in the page: ' + items.length + ' of ' + state.items.length + ' loaded.' : ''
        : state.items.length ? 'None of the loaded conversations match the filters.'
        : VIEWS[state.view].all && !state.channel && !state.tag && !state.assignee
        ? 'No conversations yet. On a local stack, run `make demo` (or start with `make run DEMO=1`) to send demo traffic.'
        : 'Nothing here. Try another view or clear the filters.';
    }
    $('more').hidden = !state.next;
    var unread = state.items.reduce((n, c) => n + (Number(c.unread_count) || 0), 0);
    document.title = (unread ? '(' + unread + ') ' : '') + 'Social Inbox';
    var key = JSON.stringify(items) + state.selected + Array.from(state.checked) + Math.floor(Date.now() / 60000);
    // unchanged: leave scroll, focus and selection alone
    if (key === state.listKey) return;
    state.listKey = key;
    var focused = list.contains(document.activeElement) ? document.activeElement.dataset.id : null;
    var scroll = list.scrollTop;
    list.replaceChildren(...items.map(c => row(c)));
    list.scrollTop = scroll;
    if (focused) {
      var rows = list.querySelectorAll('.row');
      for (var i = 0; i < rows.length; i++) {
        if (rows[i].dataset.id === focused) rows[i].focus({preventScroll: true});
      }
    }
    tick();
  }

  function row(c, plain) {
    var item = el('li');
    if (!plain) {
      var pick = el('input', 'pick');
      pick.type = 'checkbox';
      pick.dataset.id = c.id;
      pick.checked = state.checked.has(c.id);
      pick.setAttribute('aria-label', 'Select ' + contactName(c));
      item.append(pick);
    }
    var button = el('button', 'row');
    button.type = 'button';
    button.dataset.id = c.id;
    if (c.id === state.selected) {
      button.classList.add('selected');
      button.setAttribute('aria-current', 'true');
    }
    var top = el('div', 'row-top');
    top.append(avatar(c), el('span', 'name', contactName(c)));
    var sub = contactSub(c);
    if (sub) top.append(el('span', 'cid', sub));
    var followers = c.contact && c.contact.followers;
    if (typeof followers === 'number') {  // textContent: escaped like every other value here
      var reach = el('span', 'cid followers', new Intl.NumberFormat(undefined, {notation: 'compact'}).format(followers));
      reach.title = followersText(followers);
      top.append(reach);
    }
    var sla = slaBadge(c.sla);
    if (sla) top.append(sla);
    top.append(relativeTime(c.last_message_at));
    var middle = el('div', 'row-mid');
    var prefix = c.last_message_direction === 'out' ? 'You: ' : c.last_message_direction === 'note' ? 'Note: ' : '';
    middle.append(el('span', 'preview', prefix + (c.last_message_preview || '')));
    var unread = Number(c.unread_count) || 0;
    if (unread > 0) {
      var count = el('span', 'unread', unread > 99 ? '99+' : unread);
      count.title = unread + ' unread';
      middle.append(count);
    }
    var bottom = el('div', 'row-bottom');
    bottom.append(channelBadge(c.channel));
    if (c.kind && c.kind !== 'dm') bottom.append(el('span', 'badge kind', c.kind + (c.subject && c.kind === 'group' ? ': ' + c.subject : '')));
    if (VIEWS[state.view].all) bottom.append(el('span', 'badge st-' + c.status, c.status));
    if (c.priority && c.priority !== 'none') bottom.append(el('span', 'badge pr-' + c.priority, c.priority));
    (c.tags || []).forEach(function (t) { bottom.append(el('span', 'badge tagb', '#' + t)); });
    learnOwner(c);
    bottom.append(el('span', 'owner', ownerLabel(c.assignee)));
    button.append(top, middle, bottom);
    item.append(button);
    return item;
  }

  function ownerLabel(id) {
    return !id ? 'Unassigned' : nameOf(id);
  }

  function contactName(c) {
    return (c.contact && c.contact.display_name) || 'Unknown contact';
  }

  // what tells two customers apart when their names match: the handle, else the platform id
  function contactSub(c) {
    var contact = c.contact || {};
    var name = contactName(c);
    if (contact.handle && name !== contact.handle) return '@' + String(contact.handle).replace(/^@/, '');
    var id = shownId(c.channel, contact.platform_id);
    if (!id) return '';
    return 'ID ' + (id.length > 10 ? '…' + id.slice(-10) : id);
  }

  function followersText(n) {
    return typeof n === 'number' ? n.toLocaleString() + (n === 1 ? ' follower' : ' followers') : '';
  }

  // a platform id shown to agents; a LinkedIn member's is an opaque URN that tells nobody anything
  function shownId(channel, id) {
    id = String(id || '');
    return channel === 'linkedin' || /^urn:/i.test(id) ? '' : id;
  }

  function avatar(c) {
    var key = String((c.contact && (c.contact.id || c.contact.platform_id)) || c.id || '');
    var hash = 0;
    for (var i = 0; i < key.length; i++) hash = (hash * 31 + key.charCodeAt(i)) >>> 0;
    var letters = contactName(c).replace(/[^\p{L}\p{N}]/gu, '').slice(0, 1).toUpperCase() || '?';
    var node = el('span', 'av av' + (hash % 8), letters);
    node.setAttribute('aria-hidden', 'true');
    if (c.id && PICTURED.indexOf(c.channel) >= 0) {  // the profile picture, through our own endpoint
      fetchMedia('api/conversations/' + encodeURIComponent(c.id) + '/contact/picture', true).then(function (b) {
        if (!/^image\//.test(b.type)) return;
        var img = el('img');
        img.alt = '';
        img.src = b.url;
        node.replaceChildren(img);
      }, function () {});  // none (404) or unavailable: the initial stays, asked once per page
    }
    return node;
  }

  // channels whose profiles carry a picture (Telegram and WhatsApp deliveries carry none)
  var PICTURED = ['messenger', 'instagram', 'x', 'facebook', 'linkedin'];

  function channelBadge(channel) {
    var known = Object.prototype.hasOwnProperty.call(CHANNELS, channel);
    return el('span', 'badge ch' + (known ? ' ch-' + channel : ''), known ? CHANNELS[channel] : String(channel || '?'));
  }

  // --- deadlines: the countdown follows the sla object's due_at and warn_at -------------------

  function slaBadge(sla) {
    if (!sla || typeof sla !== 'object') return null;
    var badge = el('span', 'badge sla');
    if (isNaN(Date.parse(sla.due_at || ''))) {
      badge.textContent = String(sla.state || '');
      return sla.state ? badge : null;
    }
    badge.dataset.due = sla.due_at;
    badge.dataset.warn = sla.warn_at || '';
    badge.dataset.state = sla.state || 'ok';
    badge.title = (sla.target === 'first_response' ? 'First reply' : 'Reply') + ' due ' + localTime(sla.due_at)
      + (sla.warn_at ? '; warning at ' + localTime(sla.warn_at) : '');
    paintSla(badge, Date.now());
    return badge;
  }

  function paintSla(badge, now) {
    var due = Date.parse(badge.dataset.due), warn = Date.parse(badge.dataset.warn);
    var recorded = badge.dataset.state;
    var level = recorded === 'breached' || now >= due ? 'breached'
      : recorded === 'at_risk' || (!isNaN(warn) && now >= warn) ? 'at_risk' : 'ok';
    badge.className = 'badge sla sla-' + level;
    badge.textContent = level === 'breached' ? 'Overdue ' + countdown(now - due) : countdown(due - now) + ' left';
  }

  function countdown(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 600) return Math.floor(s / 60) + 'm ' + String(s % 60).padStart(2, '0') + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm';
    if (s < 172800) return Math.floor(s / 3600) + 'h ' + String(Math.floor(s / 60) % 60).padStart(2, '0') + 'm';
    return Math.floor(s / 86400) + 'd';
  }

  function tick() {
    var now = Date.now();
    var badges = document.querySelectorAll('.sla[data-due]');
    for (var i = 0; i < badges.length; i++) paintSla(badges[i], now);
    if (state.window) paintWindow(now);
  }

  function duration(ms) {
    var minutes = Math.round(ms / 60000);
    if (minutes < 60) return Math.max(minutes, 1) + ' min';
    if (minutes < 48 * 60) return Math.round(minutes / 60) + ' h';
    return Math.round(minutes / 1440) + ' d';
  }

  function ago(at) {
    var ms = Date.now() - (typeof at === 'number' ? at : Date.parse(at || ''));
    return isNaN(ms) ? '' : ms < 45000 ? 'just now' : ms < 7 * 86400000 ? duration(ms) + ' ago'
      : new Date(Date.now() - ms).toLocaleDateString();
  }

  function relativeTime(iso) {
    var node = el('time', 'rel');
    var at = Date.parse(iso || '');
    if (isNaN(at)) return node;
    node.dateTime = iso;
    node.title = new Date(at).toLocaleString();
    node.textContent = ago(at);
    return node;
  }

  function localTime(iso) {
    var at = typeof iso === 'number' ? iso : Date.parse(iso || '');
    return isNaN(at) ? '?' : new Date(at).toLocaleString();
  }

  function selectedFromHash() {
    var match = /^#c=(.+)$/.exec(location.hash);
    if (!match) return null;
    try { return decodeURIComponent(match[1]); } catch (e) { return null; }
  }

  function select(id) {
    $('app').classList.add('reading');
    if (id === state.selected) return;
    leaveThread(state.selected);
    state.selected = id;
    state.pending = [];
    state.draft = state.typing = null;
    hideConfirm();
    $('composer-note').textContent = '';
    $('action-note').textContent = '';
    history.replaceState(null, '', '#c=' + encodeURIComponent(id));
    $('viewers').textContent = '';
    live.shown = null;
    $('canned').hidden = true;
    forgetMedia();
    renderList();
    loadThread(true);
    beat(true);
  }

  function move(step) {
    var items = shown();
    if (!items.length) return;
    var at = items.findIndex(c => c.id === state.selected);
    var next = items[Math.min(items.length - 1, Math.max(0, at < 0 ? 0 : at + step))];
    select(next.id);
    var button = document.querySelector('.row[data-id="' + CSS.escape(next.id) + '"]');
    if (button) button.scrollIntoView({block: 'nearest'});
  }

  // --- thread ----------------------------------------------------------------------------------

  function clearThread(message) {
    state.window = null;
    $('window').textContent = '';
    $('contact').hidden = true;
    $('thread-head').replaceChildren();
    $('messages').replaceChildren();
    $('actions').hidden = true;
    $('composer').hidden = true;
    $('thread-note').textContent = message;
  }

  function unsettled() {
    return state.pending.length > 0 || state.thread.some(function (m) {
      return m.direction === 'out' && UNSETTLED.indexOf(m.delivery_status) >= 0
        && Date.now() - Date.parse(m.sent_at || '') < 10 * 60000;
    });
  }

  async function loadThread(fresh) {
    if (!fresh && state.threadBusy) return;
    var id = state.selected;
    var gen = fresh ? ++state.threadGen : state.threadGen;
    var note = $('thread-note');
    state.threadBusy = true;
    if (fresh) {
      state.threadKey = state.convKey = '';
      state.thread = [];
      state.events = [];
      clearThread('Loading…');
    }
    var path = convPath(id);
    var conversation, thread, events;
    try {
      conversation = await api(path);
      if (gen !== state.threadGen) return;
      var convKey = JSON.stringify(conversation);
      if (!fresh && convKey === state.convKey && !unsettled()) {
        state.threadBusy = false;
        // nothing moved: one request per poll
        return;
      }
      var results = await Promise.all([allMessages(path + '/messages'), allEvents(path + '/events')]);
      thread = results[0];
      events = results[1];
    } catch (e) {
      if (gen === state.threadGen) {
        state.threadBusy = false;
        if (!e.handled) {
          note.textContent = e.status === 404 ? 'This conversation no longer exists.' : e.message + ' Retrying every few seconds.';
          note.classList.add('error');
        }
      }
      return;
    }
    if (gen !== state.threadGen) return;
    state.threadBusy = false;
    note.classList.remove('error');
    state.convKey = JSON.stringify(conversation);
    state.conv = conversation;
    state.thread = thread.items;
    state.events = events;
    var ids = new Set(thread.items.map(m => m.id));
    state.pending = state.pending.filter(p => !(p.message && ids.has(p.message.id)));
    note.textContent = !thread.items.length && !state.pending.length ? 'No messages yet.'
      : thread.more ? 'Showing the first ' + thread.items.length + ' messages.' : '';
    if (conversation.unread_count > 0 && !document.hidden) markRead(conversation);
    renderHead(conversation);
    renderWindow(conversation.reply_window);
    document.dispatchEvent(new CustomEvent('inbox:window', {detail: {id: conversation.id, channel: conversation.channel,
      kind: conversation.kind, window: state.window}}));  // static/templates.js, static/attach.js
    renderThread(fresh);
    var who = conversation.contact && conversation.contact.id;
    // the panel's history shows each conversation's latest message: read again when this one's moved
    var latest = who + '|' + (conversation.last_message_at || '');
    if (who && (fresh || who !== state.contactFor || latest !== state.contactLatest)) {
      state.contactLatest = latest;
      loadContact(who);
    }
  }

  // --- the messaging window: can a reply go out now, how, and for how long --------------------

  function renderWindow(w) {
    state.window = w && typeof w === 'object' ? w : null;
    paintWindow(Date.now());
  }

  function paintWindow(now) {
    var w = state.window, node = $('window');
    var until = Date.parse((w && w.until) || '');
    node.className = 'window' + (w && !w.can_reply ? ' closed' : w && w.mode === 'tagged' ? ' tagged' : '');
    if (!w || (w.can_reply && isNaN(until) && w.mode === 'open')) { node.textContent = ''; return; }
    if (!w.can_reply) {
      node.textContent = 'No reply possible now: ' + (w.reason || w.code || 'the window is closed')
        + (w.code ? ' (' + w.code + ')' : '') + '. Notes still work.';
      return;
    }
    var left = isNaN(until) ? '' : countdown(until - now) + ' left';
    var then = w.then || {};
    node.textContent = w.mode === 'tagged'
      ? 'Past 24 h: replies go out with the ' + w.tag + ' tag' + (left ? ' (' + left + ')' : '') + '.'
      : 'Reply window open' + (left ? ': ' + left : '') + (then.mode === 'tagged' ? ', then only with the '
        + then.tag + ' tag.' : then.code === 'template_required' ? ', then only an approved template.'
        : then.mode === 'closed' ? ', then closed.' : '.');
  }

  // --- contact panel: identities, history across conversations, notes -----------------------

  async function loadContact(id) {
    state.contactFor = id;
    var data;
    try { data = await api('api/contacts/' + encodeURIComponent(id)); } catch (e) {
      if (!e.handled && id === state.contactFor) contactNote(e.message, true);
      return;
    }
    if (id !== state.contactFor) return;
    state.contact = data;
    renderContact();
  }

  function contactNote(text, bad) {
    $('contact-note').textContent = text || '';
    $('contact-note').classList.toggle('error', Boolean(bad));
  }

  function identityLine(i) {
    var id = shownId(i.channel, i.platform_id);
    var label = [i.display_name || (i.handle || id ? '' : i.channel === 'linkedin' ? 'LinkedIn member' : 'Unknown contact'),
      i.handle ? '@' + String(i.handle).replace(/^@/, '') : '', id ? 'ID ' + id : '',
      followersText(i.followers)
    ].filter(Boolean).join(' · ');
    var item = el('li');
    item.append(channelBadge(i.channel), ' ', el('span', 'ident', label));
    return item;
  }

  function renderContact() {
    var c = state.contact, many = c.identities.length > 1;
    $('contact').hidden = false;
    var here = state.conv && state.conv.contact, counted = document.querySelector('#thread-head .followers');
    var mine = c.identities.find(function (i) { return here && i.platform_id === here.platform_id && typeof i.followers === 'number'; });
    if (counted) counted.textContent = followersText(mine ? mine.followers : here && here.followers);
    $('contact-name').textContent = c.display_name || contactName(state.conv || {});
    $('identities').replaceChildren(...c.identities.map(function (i) {
      var item = identityLine(i);
      if (many) {
        var out = el('button', 'link', 'Unlink');
        out.type = 'button';
        out.dataset.unlink = i.id;
        item.append(' ', out);
      }
      return item;
    }));
    $('history').replaceChildren(...c.conversations.map(function (h) {
      var b = el('button', 'link hist');
      b.type = 'button';
      b.dataset.id = h.id;
      if (h.id === state.selected) b.setAttribute('aria-current', 'true');
      b.append(channelBadge(h.channel), ' ', el('span', 'badge st-' + h.status, h.status), ' ',
        el('span', 'preview', h.last_message_preview || ''), ' ', relativeTime(h.last_message_at));
      var item = el('li');
      item.append(b);
      return item;
    }));
    $('contact-notes').replaceChildren(...c.notes.length ? c.notes.map(noteItem)
      : [el('li', 'note', 'No notes yet.')]);
  }

  function noteItem(n) {
    var item = el('li', 'cnote');
    item.dataset.id = n.id;
    item.append(el('div', 'text', n.text), el('div', 'meta', (n.author_name || 'an agent') + ' · ' + ago(n.created_at)
      + (n.updated_at ? ' · edited' : '')));
    var me = state.me || {};
    if (n.author_id === me.id || me.role === 'supervisor' || me.role === 'admin') {
      var edit = el('button', 'link', 'Edit');
      edit.type = 'button';
      edit.dataset.edit = n.id;
      item.lastChild.append(' ', edit);
    }
    return item;
  }

  // a change of the panel's person (under identity `id`), then the panel read again
  async function contactCall(id, path, method, body, done) {
    var shown = state.contactFor;
    contactNote('');
    try {
      await api('api/contacts/' + encodeURIComponent(id) + path, method, body);
      if (done) done();
      if (shown === state.contactFor) loadContact(shown);
    } catch (e) {
      if (!e.handled) contactNote(e.message, true);
    }
  }

  function editNote(id) {
    var n = state.contact.notes.find(x => x.id === id);
    var item = document.querySelector('.cnote[data-id="' + CSS.escape(id) + '"]');
    if (!n || !item) return;
    var box = el('textarea');
    box.value = n.text;
    box.rows = 3;
    box.setAttribute('aria-label', 'Edit note');
    var save = el('button', null, 'Save');
    save.type = 'button';
    save.addEventListener('click', function () {
      if (box.value.trim()) contactCall(n.contact_id, '/notes/' + encodeURIComponent(id), 'PATCH', {text: box.value, version: n.version});
    });
    item.replaceChildren(box, save);
    box.focus();
  }

  async function findIdentities(q) {
    var list = $('link-results');
    list.hidden = false;
    var known = new Set(state.contact.identities.map(i => i.id));
    var items;
    try { items = (await api('api/search?' + new URLSearchParams({q: q, limit: '10'}))).items || []; } catch (e) {
      if (!e.handled) contactNote(e.message, true);
      return;
    }
    var seen = new Set();
    var found = items.filter(function (r) {
      var id = r.contact && r.contact.id;
      if (!id || known.has(id) || seen.has(id)) return false;
      seen.add(id);
      return true;
    });
    list.replaceChildren(...found.length ? found.map(function (r) {
      var b = el('button', 'link', 'Same person: ' + contactName(r) + (contactSub(r) ? ' (' + contactSub(r) + ')' : ''));
      b.type = 'button';
      b.dataset.link = r.contact.id;
      var item = el('li');
      item.append(channelBadge(r.channel), ' ', b);
      return item;
    }) : [el('li', 'note', 'No other identity matches.')]);
  }

  async function markRead(conversation) {
    try {
      var after = await api(convPath(conversation.id) + '/read', 'POST', {});
      if (conversation.id === state.selected) { state.conv = after; state.convKey = JSON.stringify(after); }
      updateItem(after);
    } catch (e) { /* shown again on the next poll */ }
  }

  function updateItem(c) {
    var changed = false;
    state.items = state.items.map(function (item) {
      if (item.id !== c.id) return item;
      changed = true;
      return c;
    }).filter(item => item.id !== c.id || belongs(item));
    if (changed) renderList();
  }

  async function allMessages(path) {
    var items = [], cursor = null, pages = 0;
    do {
      var q = new URLSearchParams({limit: '100'});
      if (cursor) q.set('cursor', cursor);
      var data = await api(path + '?' + q);
      items = items.concat(Array.isArray(data.items) ? data.items : []);
      cursor = data.next;
      pages++;
    } while (cursor && pages < MAX_MESSAGE_PAGES);
    return {items: items, more: Boolean(cursor)};
  }

  async function allEvents(path) {
    var items = [], after = '0', pages = 0;
    do {
      var data = await api(path + '?' + new URLSearchParams({limit: '100', after: after}));
      learn(data.agents);
      items = items.concat(Array.isArray(data.items) ? data.items : []);
      after = data.next;
      pages++;
    } while (after && pages < 10);
    return items;
  }

  // the post behind a comment thread: its first lines (text only), its link and its picture
  // (through our own endpoint), asked once per conversation while the page is open
  var posts = {};
  async function showPost(c, line) {
    if (!posts[c.id]) posts[c.id] = api(convPath(c.id) + '/post').catch(function () { return null; });
    var found = await posts[c.id];
    if (!found || !line.isConnected || state.selected !== c.id) return;
    var box = el('div', 'post-preview');
    if (found.picture_url) {
      var img = el('img', 'post-picture');
      img.alt = 'The post\'s picture';
      fetchMedia(String(found.picture_url).replace(/^\//, '')).then(function (b) { img.src = b.url; box.prepend(img); },
        function () {});
    }
    if (found.text) box.append(el('p', 'post-text', found.text));
    if (/^https:\/\//.test(found.url || '') && !line.querySelector('a')) {
      var open = el('a', null, 'Open the post on ' + (CHANNELS[c.channel] || 'its platform') + ' ↗');
      open.href = found.url;
      open.target = '_blank';
      open.rel = 'noopener noreferrer';
      line.append(' · ', open);
    }
    if (found.text || found.picture_url) line.after(box);
  }

  function renderHead(c) {
    var back = el('button', 'link back', '‹ Conversations');
    back.type = 'button';
    back.addEventListener('click', function () { $('app').classList.remove('reading'); });
    var title = el('div', 'title');
    title.append(avatar(c), el('h2', null, contactName(c)));
    var sub = contactSub(c);
    if (sub) title.append(el('span', 'cid', sub));
    title.append(el('span', 'cid followers', followersText(c.contact && c.contact.followers)));  // then the identity's
    var info = el('div', 'head-info');
    info.append(channelBadge(c.channel));
    if (c.kind && c.kind !== 'dm') info.append(el('span', 'badge kind', c.kind));
    if (STATUSES.indexOf(c.status) >= 0) {
      info.append(el('span', 'badge st-' + c.status, c.status + (c.status === 'snoozed' && c.snoozed_until
        ? ' until ' + localTime(c.snoozed_until) : '')));
    }
    learnOwner(c);
    info.append(el('span', 'owner', c.assignee ? 'Assigned to ' + ownerLabel(c.assignee) : 'Unassigned'));
    if (c.priority && c.priority !== 'none') info.append(el('span', 'badge pr-' + c.priority, c.priority));
    (c.tags || []).forEach(function (t) { info.append(el('span', 'badge tagb', '#' + t)); });
    var sla = slaBadge(c.sla);
    if (sla) info.append(sla);
    // narrow screens: the contact panel opens over the thread
    var who = el('button', 'link who-toggle', 'Contact');
    who.type = 'button';
    who.addEventListener('click', () => $('app').classList.toggle('contact-open'));
    info.append(who);
    var head = $('thread-head');
    head.replaceChildren(back, title, info);
    // a comment's or mention's subject is the platform's post id: never shown as such
    if (c.kind === 'comment' || c.kind === 'mention') {
      var post = el('p', 'subject', c.kind === 'comment' ? 'Comment on a post' : 'Mention in a post');
      if (/^https:\/\//.test(c.post_url || '')) {
        var open = el('a', null, 'Open the post on ' + (CHANNELS[c.channel] || 'its platform') + ' ↗');
        open.href = c.post_url;
        open.target = '_blank';
        open.rel = 'noopener noreferrer';
        post.append(' · ', open);
      }
      head.append(post);
      showPost(c, post);
    } else if (c.subject) {
      head.append(el('p', 'subject', 'Subject: ' + c.subject));
    }
    // actions follow the conversation
    $('actions').hidden = false;
    $('composer').hidden = false;
    var mine = state.me && c.assignee === state.me.id;
    $('act-claim').hidden = mine;
    $('act-unassign').hidden = !c.assignee;
    $('act-resolve').hidden = c.status === 'resolved';
    $('act-reopen').hidden = c.status === 'open';
    $('act-pending').hidden = c.status === 'pending';
    $('act-priority').value = c.priority || 'none';
    if (document.activeElement !== $('act-tags')) $('act-tags').value = (c.tags || []).join(', ');
  }

  var SHOWN_EVENTS = ['assigned', 'status_changed', 'reopened', 'priority_changed', 'tags_changed', 'sla_warning',
    'sla_breached', 'escalated', 'reassigned'];

  var ACTORS = {flow: 'the deadline flow', routing: 'routing', customer: 'the customer'};

  function actorLabel(actor) {
    var a = String(actor || '');
    if (a.indexOf('agent:') === 0) return state.me && a.slice(6) === state.me.id ? 'you' : nameOf(a.slice(6));
    return Object.prototype.hasOwnProperty.call(ACTORS, a) ? ACTORS[a] : 'the system';
  }

  function eventText(e) {
    var d = e.data || {};
    var by = ' by ' + actorLabel(e.actor);
    switch (e.type) {
      case 'assigned': return (d.to ? 'Assigned to ' + ownerLabel(d.to) : 'Unassigned') + by;
      case 'status_changed': return 'Status ' + (d.from || '?') + ' → ' + (d.to || '?')
        + (d.until ? ' until ' + localTime(d.until) : '') + by;
      case 'reopened': return 'Reopened by a new customer message (was ' + (d.previous || '?') + ')';
      case 'priority_changed': return 'Priority ' + (d.from || 'none') + ' → ' + (d.to || 'none') + by;
      case 'tags_changed': return 'Tags ' + [].concat((d.added || []).map(t => '+' + t),
        (d.removed || []).map(t => '−' + t)).join(' ') + by;
      case 'sla_warning': return 'Reply deadline warning' + (d.due_at ? ': due ' + localTime(d.due_at) : '');
      case 'sla_breached': return 'Reply deadline breached' + (d.due_at ? ' (was due ' + localTime(d.due_at) + ')' : '');
      default: return String(e.type).replace(/_/g, ' ') + by;
    }
  }

  function renderThread(fresh) {
    var items = state.thread.map(function (m) { return {at: Date.parse(m.sent_at || ''), m: m}; });
    var events = state.events.filter(e => SHOWN_EVENTS.indexOf(e.type) >= 0)
      .map(function (e) { return {at: Date.parse(e.at || ''), e: e}; });
    // events go before the first message that is later than them (messages keep the API's order)
    var merged = [], j = 0;
    items.forEach(function (item) {
      while (j < events.length && events[j].at <= item.at) merged.push(events[j++]);
      merged.push(item);
    });
    merged = merged.concat(events.slice(j), state.pending.map(function (p) { return {at: p.at, p: p}; }));
    var key = JSON.stringify(merged) + (state.me && state.me.id);
    // unchanged: leave scroll and text selection alone
    if (!fresh && key === state.threadKey) return;
    state.threadKey = key;
    var list = $('messages');
    var atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    var scroll = list.scrollTop;
    var nodes = [], day = '';
    merged.forEach(function (x) {
      var d = isNaN(x.at) ? day : new Date(x.at).toDateString();
      if (d && d !== day) { nodes.push(daySeparator(x.at)); day = d; }
      nodes.push(x.m ? messageItem(x.m) : x.e ? eventItem(x.e) : pendingItem(x.p));
    });
    list.replaceChildren(...nodes);
    list.scrollTop = fresh || atBottom ? list.scrollHeight : scroll;
  }

  function daySeparator(at) {
    var date = new Date(at), today = new Date();
    var yesterday = new Date(Date.now() - 86400000);
    var label = date.toDateString() === today.toDateString() ? 'Today'
      : date.toDateString() === yesterday.toDateString() ? 'Yesterday'
      : date.toLocaleDateString(undefined, {weekday: 'short', year: 'numeric', month: 'short', day: 'numeric'});
    return el('li', 'day', label);
  }

  function eventItem(e) {
    var item = el('li', 'event ev-' + e.type, eventText(e));
    item.title = localTime(e.at);
    return item;
  }

  // text with its http(s) links made clickable; everything else stays a text node
  function linkify(parent, text) {
    var re = /\bhttps?:\/\/[^\s<>"']+/gi, last = 0, match;
    while ((match = re.exec(text))) {
      var raw = match[0].replace(/[.,;:!?)\]}]+$/, '');
      var url = httpUrl(raw);
      if (!url) continue;
      parent.append(text.slice(last, match.index));
      var link = el('a', null, raw);
      link.href = url;
      link.target = '_blank';
      link.rel = 'noopener noreferrer';
      parent.append(link);
      last = match.index + raw.length;
      re.lastIndex = last;
    }
    parent.append(text.slice(last));
  }

  function messageItem(m) {
    var direction = DIRECTIONS.indexOf(m.direction) >= 0 ? m.direction : 'in';
    var item = el('li', 'msg ' + direction + (m.removed ? ' removed' : ''));
    item.dataset.id = m.id;
    if (direction === 'note') item.append(el('div', 'label', 'Private note · only agents see this'));
    var text = el(m.removed ? 'del' : 'div', 'text');
    if (typeof m.text === 'string' && m.text !== '') {
      linkify(text, m.text);
    } else {
      text.textContent = '[' + (m.type || 'message') + ']';
      text.classList.add('placeholder');
    }
    item.append(text);
    if (Array.isArray(m.attachments) && m.attachments.length) item.append(attachmentList(m.attachments, m));
    if (m.edited_at) item.append(editHistory(m));
    var meta = el('div', 'meta');
    if (m.type && m.type !== 'text') meta.append(el('span', 'tag', m.type));
    if (direction !== 'in' && m.author_id) meta.append(el('span', null, ownerLabel(m.author_id)));
    meta.append(relativeTime(m.sent_at));
    if (m.removed) meta.append(el('span', 'tag', 'removed on the platform'));
    if (direction === 'out' && m.delivery_status) meta.append(tickOf(m.delivery_status));
    item.append(meta);
    if (direction === 'out' && m.delivery_status === 'failed') {
      item.classList.add('failed');
      item.append(el('div', 'delivery-error', 'Not delivered: ' + (m.delivery_error || 'no reason given')));
    }
    return item;
  }

  function tickOf(status) {
    var known = Object.prototype.hasOwnProperty.call(TICKS, status);
    var node = el('span', 'delivery d-' + (known ? status : 'unknown'), known ? TICKS[status] : String(status));
    node.title = 'Delivery: ' + status;
    return node;
  }

  function pendingItem(p) {
    var m = p.message;
    var item = m ? messageItem(m) : el('li', 'msg ' + (p.kind === 'note' ? 'note' : 'out'));
    item.classList.add('pending');
    if (!m) {
      if (p.kind === 'note') item.append(el('div', 'label', 'Private note · only agents see this'));
      item.append(el('div', 'text', p.text));
      var meta = el('div', 'meta');
      meta.append(el('span', 'delivery d-queued', p.kind === 'note' ? 'saving…' : '◷ queued'));
      item.append(meta);
    }
    return item;
  }

  function editHistory(m) {
    var box = el('div', 'history');
    box.append(el('div', 'edited', 'Edited ' + ago(m.edited_at) + '; earlier versions:'));
    var list = el('ul');
    (Array.isArray(m.edit_history) ? m.edit_history : []).forEach(function (h) {
      var item = el('li', null, h.text || '(no text)');
      if (h.replaced_at) item.title = 'until ' + localTime(h.replaced_at);
      list.append(item);
    });
    box.append(list);
    return box;
  }

  function attachmentList(attachments, m) {
    var list = el('ul', 'attachments');
    attachments.forEach(function (a, i) {
      if (!a || typeof a !== 'object') return;
      var label = attachmentLabel(a);
      var url = httpUrl(a.url);
      if (!url && typeof a.latitude === 'number' && typeof a.longitude === 'number') {
        url = httpUrl('https://www.openstreetmap.org/?mlat=' + a.latitude + '&mlon=' + a.longitude);
      }
      var item = el('li');
      if (url) {
        var link = el('a', null, label);
        link.href = url;
        link.target = '_blank';
        link.rel = 'noopener noreferrer';
        link.title = url;
        item.append(link);
      } else {
        item.append(el('span', 'label', label));
      }
      if (m && m.id && state.selected) media(item, a, 'api/media/' + [state.selected, m.id, i].map(encodeURIComponent).join('/'));
      list.append(item);
    });
    return list;
  }

  function attachmentLabel(a) {
    var type = String(a.type || 'file');
    var detail = [a.filename, a.title, a.name, a.address].filter(function (v) {
      return typeof v === 'string' && v;
    }).join(', ');
    if (typeof a.latitude === 'number' && typeof a.longitude === 'number') {
      detail += (detail ? ' ' : '') + '(' + a.latitude.toFixed(4) + ', ' + a.longitude.toFixed(4) + ')';
    }
    return type + (detail ? ': ' + detail : '');
  }

  function httpUrl(value) {
    if (typeof value !== 'string') return null;
    var url;
    try { url = new URL(value); } catch (e) { return null; }
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
  }

  // --- media: fetched with the token from our own endpoint, shown from a blob: URL -------------

  var blobs = {};

  function forgetMedia() {
    Object.keys(blobs).forEach(function (k) { blobs[k].then(function (b) { URL.revokeObjectURL(b.url); }, function () {}); });
    blobs = {};
  }

  // contact pictures are small and shown on every list render: kept for the page's life
  var kept = {};

  function fetchMedia(path, keep) {
    var cache = keep ? kept : blobs;
    if (!cache[path]) {
      cache[path] = (async function () {
        var get = function () {
          return fetch(new URL(path, BASE), {headers: {Authorization: 'Bearer ' + state.token, Accept: 'image/*,video/*,*/*'}, cache: 'no-store',
            credentials: 'omit'});
        };
        var r = await get();
        if (r.status === 401 && await renew()) r = await get();
        if (!r.ok) throw new Error(r.status === 413 ? 'too large to show here' : 'no longer available');
        var blob = await r.blob();
        return {url: URL.createObjectURL(blob), type: blob.type};
      })();
    }
    return cache[path];
  }

  var INLINE = /^(image|photo|sticker|gif|animated|video)/;

  function media(item, a, path) {
    var inline = INLINE.test(String(a.type || ''));
    if (inline && !a.url && !a.file_id && !a.media_id) return;
    if (inline) {
      fetchMedia(path).then(function (b) {
        var kind = /^image\//.test(b.type) ? 'img' : /^video\//.test(b.type) ? 'video' : null;
        if (!kind) return;
        var node = el(kind, 'media');
        if (kind === 'video') node.controls = true; else node.alt = attachmentLabel(a);
        var list = $('messages'), end = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
        node.addEventListener(kind === 'img' ? 'load' : 'loadedmetadata', function () {
          // the thread stays at its newest message
          if (end) list.scrollTop = list.scrollHeight;
        });
        node.src = b.url;
        item.append(node);
      }, function (e) { item.append(el('span', 'gone', ' (' + e.message + ')')); });
      return;
    }
    var url = httpUrl(a.url);
    if (!a.file_id && !a.media_id && !(url && /^https:/.test(url) && /^(file|document|audio|voice)/.test(String(a.type)))) return;
    var get = el('button', 'link save', 'Download');
    get.type = 'button';
    get.addEventListener('click', function () {
      fetchMedia(path).then(function (b) {
        var save = el('a');
        // a blob: URL of our own endpoint's answer, never a platform URL
        var url = b.url;
        save.href = url;
        save.download = String(a.filename || a.file_name || a.name || 'attachment').replace(/[\\/]/g, '_');
        save.click();
      }, function (e) { get.textContent = 'Download (' + e.message + ')'; });
    });
    item.append(' ', get);
  }

  // --- search ----------------------------------------------------------------------------------

  var searchTimer = 0, searchGen = 0;

  async function runSearch() {
    var q = $('search').value.trim(), gen = ++searchGen, list = $('search-results'), note = $('search-note');
    list.hidden = !q;
    note.classList.remove('error');
    if (!q) { list.replaceChildren(); note.textContent = ''; return; }
    note.textContent = 'Searching…';
    try {
      var items = (await api('api/search?' + new URLSearchParams({q: q, limit: '20'}))).items || [];
      if (gen !== searchGen) return;
      list.replaceChildren(...items.map(c => row(c, true)));
      note.textContent = items.length ? items.length + (items.length > 1 ? ' conversations' : ' conversation')
        + ' found; Esc closes.' : 'No contact or message matches "' + q + '".';
    } catch (e) {
      if (gen !== searchGen || e.handled) return;
      note.textContent = 'Search failed: ' + e.message;
      note.classList.add('error');
    }
  }

  // --- canned replies --------------------------------------------------------------------------

  var canned = null;

  async function openCanned(filter) {
    var box = $('canned');
    if (!canned) {
      try { canned = (await api('api/canned-replies?limit=100')).items || []; } catch (e) {
        if (!e.handled) $('composer-note').textContent = 'Canned replies: ' + e.message;
        return;
      }
    }
    var f = filter.toLowerCase();
    var hits = canned.filter(r => (r.shortcut + ' ' + r.title).toLowerCase().indexOf(f) >= 0);
    box.replaceChildren(...hits.length ? hits.map(function (r) {
      var b = el('button', 'link', '/' + r.shortcut + ' · ' + r.title);
      b.type = 'button';
      b.dataset.id = r.id;
      b.title = r.text;
      var li = el('li');
      li.append(b);
      return li;
    }) : [el('li', 'note', canned.length ? 'No canned reply matches.' : 'No canned replies yet.')]);
    box.hidden = false;
  }

  async function useCanned(id) {
    var conv = state.selected;
    $('canned').hidden = true;
    try {
      var r = await api('api/canned-replies/' + encodeURIComponent(id) + '/render?'
        + new URLSearchParams({conversation_id: conv}));
      if (conv !== state.selected) return;
      var d = $('draft');
      d.value = /^\/\S*$/.test(d.value) ? r.text : d.value + (d.value ? '\n' : '') + r.text;
      d.dispatchEvent(new Event('input'));
      d.focus();
    } catch (e) {
      if (!e.handled) $('composer-note').textContent = 'Canned reply not inserted: ' + e.message;
    }
  }

  // --- who else is viewing or typing -----------------------------------------------------------

  var beaten = {};
  // Handle time for staffing: how long a thread was open in a visible page, reported with the
  // next heartbeat (the server bounds it by the time it saw between two heartbeats).
  var focus = {id: null, from: 0, banked: 0};

  function focusSince(id) {
    var now = Date.now();
    var ms = focus.id === id ? focus.banked + (focus.from ? now - focus.from : 0) : 0;
    focus = {id: id, from: visible() ? now : 0, banked: 0};
    return Math.max(0, Math.min(Math.round(ms), 3600000));
  }

  function pauseFocus() {
    if (focus.from) { focus.banked += Date.now() - focus.from; focus.from = 0; }
  }

  function leaveThread(id) {
    // the last stretch on a thread the agent moves away from still counts
    var ms = focusSince(id);
    focus = {id: null, from: 0, banked: 0};
    if (!id || ms <= 0) return;
    beatLive({viewing: {conversation_id: id, typing: false, focus_ms: ms}}).then(function (sent) {
      if (!sent) api(convPath(id) + '/viewing', 'PUT', {typing: false, focus_ms: ms}).catch(function () {});
    });
  }

  async function beat(force) {
    var id = state.selected;
    if (!id || !visible()) return;
    var typing = document.activeElement === $('draft') && $('draft').value.trim() !== '';
    if (!force && beaten.id === id && beaten.typing === typing && Date.now() - beaten.at < VIEW_MS - 1000) return;
    beaten = {id: id, typing: typing, at: Date.now()};
    var body = {typing: typing, focus_ms: focusSince(id)};
    // on live updates the socket carries it and brings who else is here, when that changed
    var viewing = Object.assign({conversation_id: id, viewers: true}, body);
    if (live.shown && live.shown.id === id) viewing.shown = live.shown.digest;
    if (await beatLive({viewing: viewing})) return;
    try {
      // on live updates nothing polls: the heartbeat brings who else is here
      if (live.up) body.viewers = true;
      var seen = await api(convPath(id) + '/viewing', 'PUT', body);
      if (Array.isArray(seen.viewers) && id === state.selected) renderViewers(seen.viewers);
      // the next poll brings who else is here
      state.viewersAt = 0;
    } catch (e) { /* a hint only */ }
  }

  // `digest`: the socket's name for what is shown (its beats send it back: answered only on change)
  function renderViewers(items, digest) {
    live.shown = digest ? {id: state.selected, digest: digest} : null;
    var others = items.filter(v => !v.me);
    var names = function (typing) {
      return others.filter(v => Boolean(v.typing) === typing)
        .map(v => v.name || 'another agent');
    };
    var typing = names(true), viewing = names(false);
    $('viewers').textContent = [typing.length ? typing.join(', ') + (typing.length > 1 ? ' are' : ' is') + ' typing…' : '',
      viewing.length ? viewing.join(', ') + (viewing.length > 1 ? ' are' : ' is') + ' also viewing' : '']
      .filter(Boolean).join(' · ');
  }

  // --- bulk select -----------------------------------------------------------------------------

  function toggleCheck(id, on) {
    if (on === undefined ? !state.checked.has(id) : on) state.checked.add(id); else state.checked.delete(id);
    renderBulk();
  }

  function renderBulk() {
    $('bulk').hidden = !state.checked.size && !$('bulk-note').childElementCount;
    $('bulk-count').textContent = state.checked.size + ' selected';
  }

  async function bulk(body, what) {
    var ids = Array.from(state.checked), note = $('bulk-note');
    if (!ids.length) return '';
    // who each one was when chosen (a conversation that vanished meanwhile leaves the list)
    var who = new Map(state.items.filter(c => state.checked.has(c.id)).map(c => [c.id, contactName(c)]));
    note.replaceChildren();
    var data;
    try {
      data = await api('api/conversations/bulk', 'POST', Object.assign({ids: ids}, body));
    } catch (e) {
      if (!e.handled) note.replaceChildren(el('li', 'error', 'Could not ' + what.toLowerCase() + ': ' + e.message));
      renderBulk();
      return e.handled ? '' : e.message;
    }
    var results = data.results || [];
    var failed = results.filter(r => r.status !== 200);
    state.checked = new Set(failed.map(r => r.id));
    results.forEach(function (r) { if (r.conversation) updateItem(r.conversation); });
    note.replaceChildren(...[el('li', failed.length ? 'error' : null, what + ': ' + (data.ok || 0) + ' done'
      + (failed.length ? ', ' + failed.length + ' failed (still selected):' : '.'))].concat(failed.map(function (r) {
      return el('li', 'error', (who.get(r.id) || 'A conversation') + ': ' + ((r.error && r.error.Message) || r.status));
    })));
    state.listKey = '';
    renderList();
    renderBulk();
    loadCounts();
    if (state.selected && state.checked.has(state.selected) === false) loadThread(false);
    return '';
  }

  // --- composer --------------------------------------------------------------------------------

  function setMode(mode) {
    state.mode = mode;
    var tabs = document.querySelectorAll('[data-mode]');
    for (var i = 0; i < tabs.length; i++) tabs[i].setAttribute('aria-selected', String(tabs[i].dataset.mode === mode));
    $('composer').classList.toggle('note-mode', mode === 'note');
    $('draft').placeholder = mode === 'note' ? 'Private note for agents (never sent to the customer)'
      : 'Reply to the customer (Enter sends, Shift+Enter new line)';
    $('send').textContent = mode === 'note' ? 'Save note' : 'Send';
  }

  function newId() {
    return crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2);
  }

  function lastMessageId() {
    for (var i = state.thread.length - 1; i >= 0; i--) {
      if (state.thread[i].direction !== 'note') return state.thread[i].id;
    }
    return null;
  }

  function hideConfirm() { $('confirm').hidden = true; }

  async function send(confirmed) {
    var text = $('draft').value;
    // a second click after the text left: nothing
    if (!text.trim() || !state.selected) return;
    // a new text: sent once the one on its way is answered
    if (state.sending) { state.sendNext = true; return; }
    var kind = state.mode, id = state.selected;
    var d = state.draft;
    // one client_id per attempt: a retry of the same text (after an error or a double click) reuses it
    if (!d || d.text !== text || d.kind !== kind || d.conv !== id) {
      var seen = state.typing && state.typing.conv === id ? state.typing.after : lastMessageId();
      d = state.draft = {text: text, kind: kind, conv: id, clientId: newId(), after: seen};
    }
    state.sending = true;
    hideConfirm();
    var note = $('composer-note');
    note.textContent = '';
    // optimistic: the text moves into the thread, and comes back if not sent
    $('draft').value = '';
    var pending = state.pending.find(p => p.clientId === d.clientId);
    if (!pending) {
      pending = {clientId: d.clientId, text: text, kind: kind, at: Date.now(), message: null};
      state.pending.push(pending);
      renderThread(false);
    }
    var body = {text: text, kind: kind, client_id: d.clientId};
    if (kind === 'reply' && d.after) body.after_message_id = d.after;
    if (confirmed) body.confirm = true;
    try {
      pending.message = await api(convPath(id) + '/messages', 'POST', body);
      state.draft = state.typing = null;
      if (id === state.selected) { renderThread(false); loadThread(false); }
    } catch (e) {
      if (e.handled) return;
      if (id === state.selected) $('draft').value = text + ($('draft').value ? '\n' + $('draft').value : '');
      if (e.status === 409 && e.code === 'OutdatedThread') {
        removePending(pending);
        $('confirm-text').textContent = 'The thread changed: ' + e.message.split(';')[0] + '.';
        $('confirm').hidden = false;
        $('confirm-send').focus();
      } else if (e.status === 422 || e.status === 400 || e.status === 409) {
        removePending(pending);
        state.draft = null;
        note.textContent = (kind === 'note' ? 'Note not saved: ' : 'Not sent: ') + e.message
          + (e.data.reason ? ' (' + e.data.reason + ')' : '');
      } else {
        removePending(pending);
        note.textContent = 'Not sent yet: ' + e.message + ' Press Send again; it will be sent once.';
      }
    } finally {
      state.sending = false;
      if (state.sendNext) {
        state.sendNext = false;
        if ($('confirm').hidden && !$('composer-note').textContent) send(false);
      }
    }
  }

  function removePending(p) {
    state.pending = state.pending.filter(x => x !== p);
    renderThread(false);
  }

  // --- actions ---------------------------------------------------------------------------------

  async function act(body, what) {
    var id = state.selected;
    if (!id) return;
    var note = $('action-note');
    note.textContent = '';
    try {
      var c = await api(convPath(id), 'PATCH', body);
      if (id !== state.selected) return '';
      state.conv = c;
      renderHead(c);
      updateItem(c);
      loadThread(false);
      loadCounts();
      return '';
    } catch (e) {
      if (e.handled || id !== state.selected) return '';
      if (e.status === 409 && e.data.current) {
        learnOwner(e.data.current);
        note.textContent = 'Already assigned to ' + ownerLabel(e.data.current.assignee) + '.';
        loadThread(false);
      } else {
        note.textContent = 'Could not ' + what + ': ' + e.message;
      }
      return note.textContent;
    }
  }

  function snoozeTime(preset) {
    var at = new Date();
    if (preset === '1h') return new Date(at.getTime() + 3600000);
    if (preset === '4h') return new Date(at.getTime() + 4 * 3600000);
    at.setHours(9, 0, 0, 0);
    if (preset === 'tomorrow') at.setDate(at.getDate() + 1);
    if (preset === 'monday') at.setDate(at.getDate() + ((8 - at.getDay()) % 7 || 7));
    return at;
  }

  function snooze(at) {
    if (!at || isNaN(at.getTime())) return;
    act({status: 'snoozed', snoozed_until: at.toISOString()}, 'snooze');
    $('act-snooze').value = '';
    $('snooze-at').hidden = $('snooze-go').hidden = true;
  }

  function saveTags() {
    var tags = $('act-tags').value.split(',').map(t => t.trim())
      .filter((t, i, all) => t && all.indexOf(t) === i);
    act({tags: tags}, 'change the tags');
  }

  // --- keyboard --------------------------------------------------------------------------------

  function onKey(event) {
    if (!state.token || event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target.closest && target.closest('input, textarea, select')) {
      if (event.key === 'Escape') target.blur();
      return;
    }
    var keys = {
      j: function () { move(1); }, k: function () { move(-1); },
      e: function () { if (state.conv && state.conv.status !== 'resolved') act({status: 'resolved'}, 'resolve'); },
      a: function () { if (state.selected) openAssign(); },
      r: function () { if (state.selected) { setMode('reply'); $('draft').focus(); } },
      n: function () { if (state.selected) { setMode('note'); $('draft').focus(); } },
      s: function () { if (state.selected) $('act-snooze').focus(); },
      '/': function () { $('search').focus(); },
      x: function () { if (state.selected) { toggleCheck(state.selected); state.listKey = ''; renderList(); } },
      '?': function () { $('help').hidden = !$('help').hidden; }
    };
    if (Object.prototype.hasOwnProperty.call(keys, event.key)) {
      event.preventDefault();
      keys[event.key]();
    }
  }

  // --- wiring ----------------------------------------------------------------------------------

  function on(id, type, handler) { $(id).addEventListener(type, handler); }

  on('login-form', 'submit', onLogin);
  on('password-form', 'submit', onPasswordChange);
  on('logout', 'click', function () { signOut(''); });
  on('notif', 'click', toggleAlerts);
  on('help-toggle', 'click', function () { $('help').hidden = !$('help').hidden; });
  on('notif-list', 'click', function (event) {
    var button = event.target.closest('[data-id]');
    if (!button) return;
    toggleAlerts();
    select(button.dataset.id);
  });
  on('views', 'click', function (event) {
    var tab = event.target.closest('[data-view]');
    if (!tab || tab.dataset.view === state.view) return;
    state.view = tab.dataset.view;
    changeView();
  });
  // ARIA tabs: arrows move between views
  on('views', 'keydown', function (event) {
    if (event.key !== 'ArrowRight' && event.key !== 'ArrowLeft') return;
    var names = Object.keys(VIEWS);
    var at = names.indexOf(state.view) + (event.key === 'ArrowRight' ? 1 : -1);
    state.view = names[(at + names.length) % names.length];
    changeView();
    document.querySelector('[data-view=' + state.view + ']').focus();
  });
  on('status', 'change', function () { state.status = $('status').value; changeView(); });
  on('channel', 'change', function () { state.channel = $('channel').value; changeView(); loadCounts(); });
  on('sort', 'change', function () { state.sort = $('sort').value; changeView(); });
  on('assignee', 'change', function () { state.assignee = $('assignee').value.trim(); changeView(); });
  on('tag', 'change', function () { state.tag = $('tag').value; changeView(); });
  on('more', 'click', function () { loadList('more'); });
  on('conversations', 'click', function (event) {
    var button = event.target.closest('.row');
    if (button) select(button.dataset.id);
  });
  on('composer', 'submit', function (event) { event.preventDefault(); send(false); });
  document.addEventListener('inbox:reload', function () { if (state.selected) loadThread(false); });
  on('draft', 'keydown', function (event) {
    var first = $('canned').hidden ? null : $('canned').querySelector('[data-id]');
    if (event.key === 'Escape' && !$('canned').hidden) { $('canned').hidden = true; event.stopPropagation(); return; }
    if (event.key !== 'Enter' || event.shiftKey || event.isComposing) return;
    event.preventDefault();
    if (first && /^\/\S*$/.test($('draft').value)) useCanned(first.dataset.id); else send(false);
  });
  on('draft', 'focus', function () { beat(false); });
  on('draft', 'blur', function () { beat(false); });
  on('draft', 'input', function () {
    hideConfirm();
    var slash = /^\/(\S*)$/.exec($('draft').value);
    if (slash) openCanned(slash[1]); else $('canned').hidden = true;
    beat(false);
    // what the agent saw when they began writing: a reply to an older thread asks to confirm
    if (!state.typing || state.typing.conv !== state.selected) state.typing = {conv: state.selected, after: lastMessageId()};
  });
  document.querySelector('.modes').addEventListener('click', function (event) {
    var tab = event.target.closest('[data-mode]');
    if (tab) { setMode(tab.dataset.mode); $('draft').focus(); }
  });
  on('confirm-send', 'click', function () { send(true); });
  on('canned-open', 'click', function () {
    if (!$('canned').hidden) { $('canned').hidden = true; return; }
    canned = null;
    openCanned('');
  });
  on('canned', 'click', function (event) {
    var b = event.target.closest('[data-id]');
    if (b) useCanned(b.dataset.id);
  });
  on('search', 'input', function () { clearTimeout(searchTimer); searchTimer = setTimeout(runSearch, 250); });
  on('search', 'keydown', function (event) {
    if (event.key === 'Escape') { $('search').value = ''; runSearch(); }
    if (event.key === 'Enter') { clearTimeout(searchTimer); runSearch(); }
  });
  on('search-results', 'click', function (event) {
    var b = event.target.closest('.row');
    if (!b) return;
    $('search').value = '';
    runSearch();
    select(b.dataset.id);
  });
  on('conversations', 'change', function (event) {
    var box = event.target.closest('.pick');
    if (!box) return;
    toggleCheck(box.dataset.id, box.checked);
  });
  on('bulk-resolve', 'click', function () { bulk({status: 'resolved'}, 'Resolve'); });
  on('bulk-assign', 'click', openBulkAssign);
  on('bulk-tagit', 'click', function () {
    var tag = $('bulk-tag').value.trim();
    if (tag) bulk({tags_add: [tag]}, 'Tag #' + tag);
  });
  on('bulk-clear', 'click', function () {
    state.checked.clear();
    $('bulk-note').replaceChildren();
    state.listKey = '';
    renderList();
    renderBulk();
  });
  on('confirm-cancel', 'click', function () { hideConfirm(); loadThread(false); });
  on('history', 'click', function (event) {
    var b = event.target.closest('[data-id]');
    if (b) select(b.dataset.id);
  });
  on('identities', 'click', function (event) {
    var b = event.target.closest('[data-unlink]');
    if (b) contactCall(b.dataset.unlink, '/links', 'DELETE');
  });
  on('contact-notes', 'click', function (event) {
    var b = event.target.closest('[data-edit]');
    if (b) editNote(b.dataset.edit);
  });
  on('note-form', 'submit', function (event) {
    event.preventDefault();
    var text = $('note-text').value;
    if (text.trim() && state.contactFor) {
      contactCall(state.contactFor, '/notes', 'POST', {text: text}, function () { $('note-text').value = ''; });
    }
  });
  on('link-form', 'submit', function (event) {
    event.preventDefault();
    var q = $('link-q').value.trim();
    if (q && state.contact) findIdentities(q);
  });
  on('link-results', 'click', function (event) {
    var b = event.target.closest('[data-link]');
    if (!b) return;
    $('link-results').hidden = true;
    $('link-q').value = '';
    contactCall(state.contactFor, '/links', 'POST', {contact_id: b.dataset.link});
  });
  on('act-claim', 'click', function () { act({assignee: 'me', claim: true}, 'claim'); });
  on('act-assign', 'click', openAssign);
  on('act-unassign', 'click', function () { act({assignee: null}, 'unassign'); });
  on('act-resolve', 'click', function () { act({status: 'resolved'}, 'resolve'); });
  on('act-reopen', 'click', function () { act({status: 'open'}, 'reopen'); });
  on('act-pending', 'click', function () { act({status: 'pending'}, 'set pending'); });
  on('act-snooze', 'change', function () {
    var preset = $('act-snooze').value;
    if (preset === 'custom') {
      $('snooze-at').hidden = $('snooze-go').hidden = false;
      $('snooze-at').focus();
    } else if (preset) {
      snooze(snoozeTime(preset));
    }
  });
  on('snooze-go', 'click', function () { snooze(new Date($('snooze-at').value)); });
  on('act-priority', 'change', function () { act({priority: $('act-priority').value}, 'change the priority'); });
  on('act-tags', 'keydown', function (event) { if (event.key === 'Enter') { event.preventDefault(); saveTags(); } });
  window.addEventListener('hashchange', function () {
    var id = selectedFromHash();
    if (id && state.token && id !== state.selected) select(id);
  });
  document.addEventListener('keydown', onKey);
  document.addEventListener('visibilitychange', function () {
    if (!state.token) return;
    if (document.hidden) { pauseFocus(); presence('away'); return; }
    if (focus.id && !focus.from) focus.from = Date.now();
    // back: read everything again (changes made while away were not polled)
    presence('online');
    loadList('refresh');
    loadCounts();
    if (state.selected) { loadThread(false); beat(true); }
  });

  setMode('reply');
  if (state.token) {
    start();
  } else {
    // another open tab of this sign-in: no form
    askPeers().then(function (token) {
      if (token) { keepSession({token: token}); start(); } else showLogin('');
    });
  }
})();
