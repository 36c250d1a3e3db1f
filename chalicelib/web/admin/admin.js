/* Social Inbox: the team lead and admin screens on the JSON API (no framework, no build step).
   Same rules as the agents' page: every string from a platform or a person reaches the page
   only through textContent or properties, never as markup; the page's CSP (Trusted Types, no
   inline script or style) backs this up. The sign-in is the inbox's (same session keys). */
(function () {
  'use strict';

  var BASE = new URL('..', document.currentScript.src); // the app root, also under a stage prefix
  var TOKEN_KEY = 'socialinbox.token';
  var REFRESH_KEY = 'socialinbox.refresh';
  var CHANNELS = {messenger: 'Messenger', instagram: 'Instagram', whatsapp: 'WhatsApp', facebook: 'Facebook',
    x: 'X', telegram: 'Telegram', linkedin: 'LinkedIn'};
  var PLATFORMS = {meta: 'Meta', x: 'X', telegram: 'Telegram', linkedin: 'LinkedIn'};  // webhook adapters
  var DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
  var DAY_NAMES = {mon: 'Mon', tue: 'Tue', wed: 'Wed', thu: 'Thu', fri: 'Fri', sat: 'Sat', sun: 'Sun'};
  var ROLE_NAMES = {agent: 'Agent', supervisor: 'Team lead', admin: 'Admin'};
  var LOADERS = {accounts: loadAccounts, agents: loadAgents, teams: loadTeams, sla: loadPolicies,
    quarantine: function () { loadQuarantine(false); }, dlq: loadDeadLetters};
  var state = {me: null, admin: false, tab: null, agents: null, policies: [], editing: null, quarantineNext: null};
  var pendingTab = null;  // the address's tab when its module had not registered yet

  function $(id) { return document.getElementById(id); }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function cell(row, content, className) {
    var td = el('td', className);
    if (content instanceof Node) td.append(content); else if (content !== undefined) td.textContent = String(content);
    row.append(td);
    return td;
  }

  function button(text, onClick, className) {
    var b = el('button', className, text);
    b.type = 'button';
    b.addEventListener('click', onClick);
    return b;
  }

  function list(text) {
    return String(text || '').split(',').map(function (s) { return s.trim(); }).filter(Boolean);
  }

  function when(iso) { return iso ? new Date(iso).toLocaleString() : '—'; }

  function minutes(seconds) {
    if (seconds % 86400 === 0) return seconds / 86400 + ' d';
    if (seconds % 3600 === 0) return seconds / 3600 + ' h';
    return Math.round(seconds / 60) + ' min';
  }

  // --- API (the inbox's session: a 401 renews once with the refresh token) -------------------

  var refreshing = null;

  function renew() {
    var token = sessionStorage.getItem(REFRESH_KEY);
    if (!token) return Promise.resolve(false);
    refreshing = refreshing || fetch(new URL('api/auth/refresh', BASE), {method: 'POST', cache: 'no-store',
      credentials: 'omit', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({refresh_token: token})})
      .then(function (r) {
        if (!r.ok) return false;
        return r.json().then(function (data) {
          sessionStorage.setItem(TOKEN_KEY, data.token);
          if (data.refresh_token) sessionStorage.setItem(REFRESH_KEY, data.refresh_token);
          return true;
        });
      }).catch(function () { return false; }).finally(function () { refreshing = null; });
    return refreshing;
  }

  function Problem(status, message) { this.status = status; this.message = message; }

  async function api(path, method, body, retried) {
    var init = {method: method || 'GET', cache: 'no-store', credentials: 'omit',
      headers: {Accept: 'application/json', Authorization: 'Bearer ' + (sessionStorage.getItem(TOKEN_KEY) || '')}};
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    var response, data = null;
    try {
      response = await fetch(new URL(path, BASE), init);
    } catch (e) {
      throw new Problem(0, 'Cannot reach the server. Check the connection, then try again.');
    }
    try { data = await response.json(); } catch (e) { data = null; }
    if (response.ok) return data || {};
    if (response.status === 401 && !retried && await renew()) return api(path, method, body, true);
    if (response.status === 401) {
      gate('Your session has ended. ', 'Sign in again on the inbox');
      throw new Problem(401, 'Signed out.');
    }
    var message = data && typeof data.Message === 'string' && data.Message ? data.Message
      : 'The server answered ' + response.status + '.';
    if (response.status === 403) message += ' (your role may not do this; ask an admin)';
    if (response.status >= 500) message += ' Try again in a moment; if it keeps failing, check the logs.';
    throw new Problem(response.status, message);
  }

  function note(id, text, kind) {
    var node = $(id);
    node.textContent = text || '';
    node.className = 'note' + (kind ? ' ' + kind : '');
  }

  // After a list (re)loads: the answer of the action that caused the reload stays; otherwise say
  // when the list is empty, and drop an old error or empty-state text when it is not.
  function settle(id, empty, emptyText) {
    var node = $(id);
    if (node.classList.contains('ok')) return;
    if (empty) note(id, emptyText);
    else if (node.classList.contains('error') || node.textContent === emptyText) note(id, '');
  }

  function failed(id) {
    return function (problem) { if (problem.status !== 401) note(id, problem.message, 'error'); };
  }

  // --- who may be here ----------------------------------------------------------------------

  function gate(message, linkText) {
    $('admin').hidden = true;
    var g = $('gate');
    g.hidden = false;
    g.className = 'banner error';
    g.textContent = message;
    if (linkText) {
      var a = el('a', null, linkText);
      a.href = '.';
      g.append(a, '.');
    }
  }

  async function start() {
    if (!sessionStorage.getItem(TOKEN_KEY)) return gate('You are not signed in. ', 'Sign in on the inbox');
    try {
      state.me = await api('api/me');
    } catch (problem) {
      if (problem.status !== 401) gate(problem.message);
      return;
    }
    $('who').textContent = (state.me.name || state.me.email || '') + ' (' + (ROLE_NAMES[state.me.role] || state.me.role) + ')';
    if (state.me.role !== 'admin' && state.me.role !== 'supervisor') {
      return gate('These screens are for admins and team leads. Your conversations are in the inbox: ', 'open the inbox');
    }
    state.admin = state.me.role === 'admin';
    document.querySelectorAll('[data-admin]').forEach(function (node) { node.hidden = !state.admin; });
    $('gate').hidden = true;
    $('admin').hidden = false;
    setUpForms();
    var wanted = location.hash.slice(1);
    var tab = document.querySelector('[data-tab="' + (LOADERS[wanted] ? wanted : '') + '"]');
    pendingTab = LOADERS[wanted] ? null : wanted;
    select(tab && !tab.hidden ? wanted : state.admin ? 'accounts' : 'agents');
    if (state.admin) {
      if (state.tab !== 'accounts') loadAccounts();  // the re-authorisation banner shows on every tab
      if (state.tab !== 'dlq') loadDeadLetters();
    }
  }

  // --- tabs (ARIA tabs pattern: arrows, Home and End move; one tab in the Tab order) --------

  function tabs() { return Array.prototype.filter.call(document.querySelectorAll('[role=tab]'), function (t) { return !t.hidden; }); }

  function select(name, focus) {
    state.tab = name;
    tabs().forEach(function (t) {
      var on = t.dataset.tab === name;
      t.setAttribute('aria-selected', on ? 'true' : 'false');
      t.tabIndex = on ? 0 : -1;
      $('panel-' + t.dataset.tab).hidden = !on;
      if (on && focus) t.focus();
    });
    if (location.hash.slice(1) !== name) history.replaceState(null, '', '#' + name);
    LOADERS[name]();
  }

  $('tabs').addEventListener('click', function (event) {
    var tab = event.target.closest('[role=tab]');
    if (tab) { pendingTab = null; select(tab.dataset.tab); }
  });
  $('tabs').addEventListener('keydown', function (event) {
    var all = tabs(), at = all.indexOf(document.activeElement);
    if (at < 0) return;
    var to = {ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: all.length - 1}[event.key];
    if (to === undefined) return;
    event.preventDefault();
    select(all[(to + all.length) % all.length].dataset.tab, true);
  });

  // --- channel accounts ---------------------------------------------------------------------

  function accountPath(a) {
    return 'api/accounts/' + encodeURIComponent(a.channel) + '/' + encodeURIComponent(a.platform_account_id);
  }

  async function loadAccounts() {
    var items;
    try { items = (await api('api/accounts')).items; } catch (p) { return failed('accounts-note')(p); }
    items.sort(function (a, b) {
      return (b.needs_reauth - a.needs_reauth) || a.channel.localeCompare(b.channel) || a.name.localeCompare(b.name);
    });
    var body = $('accounts');
    body.replaceChildren();
    items.forEach(function (a) { body.append.apply(body, accountRows(a)); });
    settle('accounts-note', !items.length, 'No channel accounts yet: register one below (on a local stack, `make run` registers one per channel).');
    var stale = items.filter(function (a) { return a.needs_reauth; });
    $('reauth').hidden = !stale.length;
    $('reauth').textContent = stale.length ? stale.length + (stale.length === 1 ? ' channel account needs' : ' channel accounts need')
      + ' re-authorisation: ' + stale.map(function (a) { return a.name + ' (' + (CHANNELS[a.channel] || a.channel) + ')'; }).join(', ')
      + '. Replies on it fail until it is reconnected under Channel accounts.' : '';
    $('count-reauth').hidden = !stale.length;
    $('count-reauth').textContent = stale.length ? String(stale.length) : '';
  }

  function accountRows(a) {
    var row = el('tr', a.needs_reauth ? 'stale' : '');
    row.dataset.account = a.channel + '#' + a.platform_account_id;
    cell(row, CHANNELS[a.channel] || a.channel);
    cell(row, a.name);
    cell(row, a.platform_account_id, 'mono');
    var health = cell(row, undefined, 'health');
    if (a.needs_reauth) {
      health.append(el('span', 'badge bad', 'Needs re-authorisation'), el('div', 'reason', a.needs_reauth_reason || ''));
    } else {
      health.append(el('span', a.enabled ? 'badge ok' : 'badge off', a.enabled ? 'Healthy' : 'Disabled'));
    }
    var form = el('tr', 'reconnect');
    form.hidden = true;
    var actions = cell(row);
    actions.append(
      button(a.needs_reauth ? 'Reconnect…' : 'Credentials…', function () { form.hidden = !form.hidden; }),
      button(a.enabled ? 'Disable' : 'Enable', function () { changeAccount(a, {enabled: !a.enabled}, 'accounts-note'); }));
    var td = el('td');
    td.colSpan = 5;
    var refs = el('textarea');
    refs.rows = 2;
    refs.placeholder = 'SETTING=secret-name, one per line (e.g. META_PAGE_TOKEN=META_PAGE_TOKEN_2026)';
    refs.setAttribute('aria-label', 'New credentials for ' + a.name);
    var status = el('span', 'note');
    td.append(refs, button('Save credentials', function () {
      var map = {}, bad = [];
      refs.value.split('\n').map(function (l) { return l.trim(); }).filter(Boolean).forEach(function (line) {
        var at = line.indexOf('=');
        if (at < 1 || at === line.length - 1) bad.push(line); else map[line.slice(0, at).trim()] = line.slice(at + 1).trim();
      });
      if (bad.length || !Object.keys(map).length) {
        status.className = 'note error';
        status.textContent = 'Write one SETTING=secret-name per line' + (bad.length ? ' (not understood: ' + bad[0] + ')' : '') + '.';
        return;
      }
      changeAccount(a, {credential_refs: map}, 'accounts-note');
    }), status);
    form.append(td);
    return [row, form];
  }

  async function changeAccount(a, change, noteId) {
    try {
      var saved = await api(accountPath(a), 'PATCH', change);
      note(noteId, saved.name + ': ' + (change.credential_refs ? 'reconnected; replies are sent again.'
        : saved.enabled ? 'enabled.' : 'disabled; deliveries are still stored, replies are not sent.'), 'ok');
      loadAccounts();
    } catch (p) { failed(noteId)(p); }
  }

  // --- agents -------------------------------------------------------------------------------

  async function agentsById() {
    if (!state.agents) {
      var found = [], next = null, pages = 0;
      do {  // one Scan page per request; a contact centre's people fit in a few
        var page = await api('api/agents?limit=100' + (next ? '&cursor=' + encodeURIComponent(next) : ''));
        found = found.concat(page.items);
        next = page.next;
      } while (next && ++pages < 20);
      found.sort(function (a, b) { return a.name.localeCompare(b.name); });
      state.agents = found;
    }
    var map = {};
    state.agents.forEach(function (a) { map[a.id] = a; });
    return map;
  }

  async function loadAgents() {
    state.agents = null;
    try { await agentsById(); } catch (p) { return failed('agents-note')(p); }
    var body = $('agents');
    body.replaceChildren();
    state.agents.forEach(function (a) { body.append(agentRow(a)); });
    note('agents-note', state.admin ? '' : 'Only admins change agents; ask one to change a capacity or a team.');
  }

  function input(type, value, label) {
    var node = el('input');
    node.type = type;
    node.value = value;
    node.setAttribute('aria-label', label);
    return node;
  }

  function agentRow(a) {
    var row = el('tr', a.active ? '' : 'inactive');
    row.dataset.agent = a.id;
    cell(row, a.name);
    cell(row, a.email, 'mono');
    if (!state.admin) {
      [ROLE_NAMES[a.role] || a.role, a.teams.join(', '), a.capacity, a.active ? 'yes' : 'no'].forEach(function (v) { cell(row, v); });
      cell(row, '');
      return row;
    }
    var role = el('select');
    Object.keys(ROLE_NAMES).forEach(function (r) { var o = el('option', null, ROLE_NAMES[r]); o.value = r; role.append(o); });
    role.value = a.role;
    role.setAttribute('aria-label', 'Role of ' + a.name);
    var teams = input('text', a.teams.join(', '), 'Teams of ' + a.name);
    teams.size = 12;
    var capacity = input('number', a.capacity, 'Capacity of ' + a.name);
    capacity.min = 0;
    capacity.max = 1000;
    capacity.className = 'capacity';
    var active = input('checkbox', '', 'Active: ' + a.name);
    active.checked = a.active;
    [role, teams, capacity, active].forEach(function (c) { cell(row, c); });
    cell(row, button('Save', async function () {
      var change = {};
      if (role.value !== a.role) change.role = role.value;
      if (list(teams.value).join(',') !== a.teams.join(',')) change.teams = list(teams.value);
      if (Number(capacity.value) !== a.capacity) change.capacity = Number(capacity.value);
      if (active.checked !== a.active) change.active = active.checked;
      if (!Object.keys(change).length) return note('agents-note', 'Nothing changed for ' + a.name + '.');
      try {
        var saved = await api('api/agents/' + encodeURIComponent(a.id), 'PATCH', change);
        Object.assign(a, saved);
        note('agents-note', 'Saved ' + saved.name + ': ' + Object.keys(change).map(function (k) {
          return k + ' ' + (Array.isArray(saved[k]) ? saved[k].join(', ') : saved[k]);
        }).join('; ') + '.', 'ok');
      } catch (p) { failed('agents-note')(p); }
    }));
    return row;
  }

  async function addAgent(event) {
    event.preventDefault();
    var body = {email: $('agent-email').value.trim(), name: $('agent-name').value.trim(), role: $('agent-role').value,
      capacity: Number($('agent-capacity').value)};
    if (list($('agent-teams').value).length) body.teams = list($('agent-teams').value);
    try {
      var made = await api('api/agents', 'POST', body);
      $('agent-form').reset();
      note('agent-form-note', 'Added ' + made.name + '.' + (made.temporary_password
        ? ' Temporary password (shown once, they choose their own at first sign-in): ' + made.temporary_password : ''), 'ok');
      loadAgents();
    } catch (p) { failed('agent-form-note')(p); }
  }

  // --- teams --------------------------------------------------------------------------------

  async function loadTeams() {
    var data, agents, boxes = $('teams');
    try {
      data = await api('api/admin/teams');
      agents = await agentsById();
      var members = await Promise.all(data.items.map(function (t) { return api('api/teams/' + encodeURIComponent(t.team) + '/agents'); }));
    } catch (p) { return failed('teams-note')(p); }
    boxes.replaceChildren();
    data.items.forEach(function (t, i) { boxes.append(teamBox(t, members[i].agents, agents, data.modes)); });
    settle('teams-note', !data.items.length, 'No teams yet: give an agent a team under Agents.');
  }

  function teamBox(t, members, agents, modes) {
    var box = el('section', 'team');
    box.dataset.team = t.team;
    var head = el('h3', null, t.team + ' ');
    var online = members.filter(function (m) { return m.online; });
    head.append(el('span', 'muted', online.length + ' of ' + members.length + ' online, '
      + online.reduce(function (n, m) { return n + Math.max(0, m.capacity - m.load); }, 0) + ' free slots'));
    box.append(head);
    var mode = el('select');
    mode.setAttribute('aria-label', 'How ' + t.team + ' shares out conversations');
    modes.forEach(function (m) { var o = el('option', null, m === 'round_robin' ? 'Round robin' : 'Least loaded'); o.value = m; mode.append(o); });
    mode.value = t.mode;
    mode.disabled = !state.admin;
    var status = el('span', 'note');
    mode.addEventListener('change', async function () {
      try {
        await api('api/teams/' + encodeURIComponent(t.team), 'PUT', {mode: mode.value});
        status.className = 'note ok';
        status.textContent = 'Saved.';
      } catch (p) { status.className = 'note error'; status.textContent = p.message; }
    });
    var label = el('label', null, 'Assignment ');
    label.append(mode);
    box.append(label, status);
    var table = el('table', 'grid');
    var body = el('tbody');
    members.forEach(function (m) {
      var row = el('tr');
      cell(row, (agents[m.agent_id] || {}).name || m.agent_id);
      cell(row, el('span', 'badge presence-' + (m.online ? 'online' : m.presence === 'away' ? 'away' : 'offline'),
        m.online ? 'online' : m.presence === 'away' ? 'away' : 'offline'));
      cell(row, m.load + ' / ' + m.capacity + ' open', m.load >= m.capacity ? 'full' : '');
      body.append(row);
    });
    table.append(body);
    box.append(table);
    return box;
  }

  // --- SLA policies -------------------------------------------------------------------------

  function appliesTo(p) {
    var parts = [];
    if (p.channels) parts.push(p.channels.map(function (c) { return CHANNELS[c] || c; }).join(', '));
    if (p.priorities) parts.push('priority ' + p.priorities.join(', '));
    if (p.tags) parts.push('#' + p.tags.join(', #'));
    if (p.topics) parts.push('topic ' + p.topics.join(', '));
    if (p.sentiments) parts.push(p.sentiments.join(', ') + ' messages');
    return parts.join('; ') || 'everything';
  }

  function hoursText(h) {
    if (!h) return '24/7';
    var days = DAYS.filter(function (d) { return h.week[d]; }).map(function (d) {
      return DAY_NAMES[d] + ' ' + h.week[d].map(function (r) { return r[0] + '–' + r[1]; }).join(', ');
    });
    return days.join('; ') + ' (' + h.timezone + ')' + (h.holidays ? ', ' + h.holidays.country + ' holidays' : '')
      + (h.dates && h.dates.length ? ', ' + h.dates.length + ' closed date(s)' : '');
  }

  async function loadPolicies() {
    var data;
    try { data = await api('api/sla-policies'); } catch (p) { return failed('sla-note')(p); }
    state.policies = data.items;
    var body = $('policies');
    body.replaceChildren();
    data.items.concat([Object.assign({builtin: true}, data.default)]).forEach(function (p) {
      var row = el('tr', p.builtin ? 'builtin' : '');
      row.dataset.policy = p.id;
      cell(row, p.builtin ? 'Built-in default' : p.name);
      cell(row, p.builtin ? 'anything no policy matches' : appliesTo(p));
      cell(row, minutes(p.first_response_seconds));
      cell(row, minutes(p.next_response_seconds));
      cell(row, hoursText(p.business_hours));
      var actions = cell(row);
      if (!p.builtin) actions.append(button('Edit', function () { editPolicy(p); }), deleteButton(p));
      body.append(row);
    });
    settle('sla-note', !data.items.length, 'No policies yet: every conversation gets the built-in default.');
  }

  function confirmedDelete(action) {
    var armed = false;
    return button('Delete', function (event) {
      if (!armed) {  // a second click confirms (no blocking dialog)
        armed = true;
        event.target.textContent = 'Click again to delete';
        return;
      }
      action();
    }, 'danger');
  }

  function deleteButton(p) {
    return confirmedDelete(async function () {
      try {
        await api('api/sla-policies/' + encodeURIComponent(p.id), 'DELETE');
        note('sla-note', 'Deleted ' + p.name + '.', 'ok');
        loadPolicies();
      } catch (problem) { failed('sla-note')(problem); }
    });
  }

  function buildWeek() {
    var week = $('sla-week');
    DAYS.forEach(function (d, i) {
      var row = el('div', 'day');
      var on = input('checkbox', '', 'Open on ' + DAY_NAMES[d]);
      on.id = 'sla-' + d;
      on.checked = i < 5;
      var label = el('label', 'check');
      label.append(on, ' ' + DAY_NAMES[d]);
      var from = input('time', '09:00', DAY_NAMES[d] + ' opens');
      var to = input('time', '17:00', DAY_NAMES[d] + ' closes');
      from.id = 'sla-' + d + '-from';
      to.id = 'sla-' + d + '-to';
      row.append(label, from, '–', to);
      week.append(row);
    });
  }

  function setHours(h) {
    $('sla-hours-on').checked = !!h;
    $('sla-hours').hidden = !h;
    $('sla-tz').value = h ? h.timezone : 'UTC';
    $('sla-country').value = h && h.holidays ? h.holidays.country : '';
    $('sla-dates').value = h ? (h.dates || []).join(', ') : '';
    DAYS.forEach(function (d, i) {
      var range = h ? (h.week[d] || [])[0] : null;
      $('sla-' + d).checked = h ? !!range : i < 5;
      $('sla-' + d + '-from').value = range ? range[0] : '09:00';
      $('sla-' + d + '-to').value = range ? range[1] : '17:00';
    });
  }

  function editPolicy(p) {
    state.editing = p || null;
    $('sla-form-title').textContent = p ? 'Edit ' + p.name : 'New policy';
    $('sla-save').textContent = p ? 'Save' : 'Create';
    $('sla-cancel').hidden = !p;
    $('sla-name').value = p ? p.name : '';
    $('sla-channels').value = p && p.channels ? p.channels.join(', ') : '';
    $('sla-priorities').value = p && p.priorities ? p.priorities.join(', ') : '';
    $('sla-tags').value = p && p.tags ? p.tags.join(', ') : '';
    $('sla-topics').value = p && p.topics ? p.topics.join(', ') : '';
    $('sla-sentiments').value = p && p.sentiments ? p.sentiments.join(', ') : '';
    $('sla-first').value = p ? Math.round(p.first_response_seconds / 60) : 60;
    $('sla-next').value = p ? Math.round(p.next_response_seconds / 60) : 60;
    $('sla-warn').value = p ? p.warn_at_percent : 80;
    $('sla-pause').checked = p ? p.pause_on.length > 0 : true;
    setHours(p ? p.business_hours : null);
    note('sla-form-note', '');
    if (p) $('sla-name').focus();
  }

  function policyBody() {
    var body = {name: $('sla-name').value.trim(), first_response_seconds: Number($('sla-first').value) * 60,
      next_response_seconds: Number($('sla-next').value) * 60, warn_at_percent: Number($('sla-warn').value),
      pause_on: $('sla-pause').checked ? ['pending', 'snoozed'] : [], business_hours: null};
    [['channels', 'sla-channels'], ['priorities', 'sla-priorities'], ['tags', 'sla-tags']].forEach(function (f) {
      var names = list($(f[1]).value).map(function (n) { return n.toLowerCase(); });
      body[f[0]] = names.length ? names : null;
    });
    var topics = list($('sla-topics').value), moods = list($('sla-sentiments').value.toLowerCase());
    body.topics = topics.length ? topics : null;  // topic names as the admin wrote them
    body.sentiments = moods.length ? moods : null;
    if ($('sla-hours-on').checked) {
      var week = {};
      DAYS.forEach(function (d) {
        if ($('sla-' + d).checked) week[d] = [[$('sla-' + d + '-from').value, $('sla-' + d + '-to').value]];
      });
      var country = $('sla-country').value.trim().toUpperCase();
      body.business_hours = {timezone: $('sla-tz').value.trim(), week: week,
        holidays: country ? {country: country, subdivision: null} : null, dates: list($('sla-dates').value)};
    }
    return body;
  }

  async function savePolicy(event) {
    event.preventDefault();
    var editing = state.editing;
    try {
      var saved = editing ? await api('api/sla-policies/' + encodeURIComponent(editing.id), 'PUT', policyBody())
        : await api('api/sla-policies', 'POST', policyBody());
      editPolicy(null);
      note('sla-form-note', (editing ? 'Saved ' : 'Created ') + saved.name + '. It applies to turns that start from now on.', 'ok');
      loadPolicies();
    } catch (p) { failed('sla-form-note')(p); }
  }

  // --- quarantine ---------------------------------------------------------------------------

  async function loadQuarantine(more) {
    var data;
    try {
      data = await api('api/admin/quarantine?limit=50' + (more && state.quarantineNext ? '&cursor=' + encodeURIComponent(state.quarantineNext) : ''));
    } catch (p) { return failed('quarantine-note')(p); }
    var body = $('quarantine');
    if (!more) body.replaceChildren();
    data.items.forEach(function (q) {
      var row = el('tr', q.replayable ? 'replayable' : '');
      row.dataset.id = q.id;
      [when(q.created_at), CHANNELS[q.channel] || q.channel || '—', q.account_id || '—', q.reason, q.preview || ''].forEach(function (v, i) {
        cell(row, v, i === 4 ? 'preview' : i === 2 ? 'mono' : '');
      });
      body.append(row);
    });
    state.quarantineNext = data.next;
    $('quarantine-more').hidden = !data.next;
    if (!more) settle('quarantine-note', !data.items.length, 'Nothing in quarantine.');
  }

  async function replayQuarantine() {
    try {
      var r = await api('api/admin/quarantine/replay', 'POST', {});
      note('quarantine-note', 'Replayed ' + r.replayed + '; ' + r.still_unknown + ' still for unregistered accounts'
        + (r.failed ? '; ' + r.failed + ' failed (see the logs), try again later.' : '.'), r.failed ? 'error' : 'ok');
      loadQuarantine(false);
    } catch (p) { failed('quarantine-note')(p); }
  }

  // --- dead letters -------------------------------------------------------------------------

  function picked() {
    return Array.prototype.map.call(document.querySelectorAll('#dlq input:checked'), function (c) { return c.value; });
  }

  async function loadDeadLetters() {
    var items;
    try { items = (await api('api/admin/dlq')).items; } catch (p) { return failed('dlq-note')(p); }
    $('count-dlq').hidden = !items.length;
    $('count-dlq').textContent = items.length ? String(items.length) : '';
    if (state.tab !== 'dlq') return;
    var body = $('dlq');
    body.replaceChildren();
    items.forEach(function (d) {
      var row = el('tr');
      row.dataset.id = d.message_id;
      var box = input('checkbox', d.message_id, 'Select ' + d.message_id);
      box.addEventListener('change', function () { $('dlq-replay-selected').disabled = !picked().length; });
      cell(row, box);
      [when(d.received_at), PLATFORMS[d.adapter] || d.adapter || 'unreadable', d.error || '', d.attempts === null ? '—' : d.attempts,
        Math.ceil(d.bytes / 1024) + ' KB'].forEach(function (v, i) { cell(row, v, i === 2 ? 'error-text' : ''); });
      body.append(row);
    });
    $('dlq-replay-selected').disabled = true;
    $('dlq-replay-all').disabled = !items.length;
    settle('dlq-note', !items.length, 'Nothing parked: every delivery was processed.');
  }

  async function replayDeadLetters(ids) {
    try {
      var r = await api('api/admin/dlq/replay', 'POST', ids ? {message_ids: ids} : {});
      note('dlq-note', 'Replayed ' + r.replayed + (r.replayed === 1 ? ' delivery' : ' deliveries')
        + ' to the ingest queue; what already landed is skipped.'
        + (r.not_found.length ? ' ' + r.not_found.length + ' were no longer parked.' : ''), 'ok');
      loadDeadLetters();
    } catch (p) { failed('dlq-note')(p); }
  }

  // --- other modules' tabs (listening-admin.js): a loader per tab and the helpers they share ----

  window.SocialInboxAdmin = {api: api, el: el, cell: cell, button: button, confirmedDelete: confirmedDelete, input: input, note: note, settle: settle,
    failed: failed, list: list, when: when, CHANNELS: CHANNELS,
    // a module's tab may register after the page chose one (its script can arrive after /api/me):
    // the tab the address asked for is then opened as soon as it exists
    addTab: function (name, loader) {
      LOADERS[name] = loader;
      var tab = document.querySelector('[data-tab="' + name + '"]');
      if (pendingTab === name && tab && !tab.hidden) { pendingTab = null; select(name); }
    }};

  // --- wiring -------------------------------------------------------------------------------

  function setUpForms() {
    Object.keys(CHANNELS).forEach(function (c) { var o = el('option', null, CHANNELS[c]); o.value = c; $('account-channel').append(o); });
    buildWeek();
    $('account-form').addEventListener('submit', async function (event) {
      event.preventDefault();
      var body = {channel: $('account-channel').value, platform_account_id: $('account-id').value.trim(),
        name: $('account-name').value.trim()};
      if ($('account-team').value.trim()) body.team = $('account-team').value.trim();
      try {
        var made = await api('api/accounts', 'POST', body);
        $('account-form').reset();
        note('account-form-note', 'Registered ' + made.name + '. If deliveries for it were quarantined, replay them under Quarantine.', 'ok');
        loadAccounts();
      } catch (p) { failed('account-form-note')(p); }
    });
    $('agent-form').addEventListener('submit', addAgent);
    $('sla-form').addEventListener('submit', savePolicy);
    $('sla-cancel').addEventListener('click', function () { editPolicy(null); });
    $('sla-hours-on').addEventListener('change', function () { $('sla-hours').hidden = !$('sla-hours-on').checked; });
    $('quarantine-replay').addEventListener('click', replayQuarantine);
    $('quarantine-more').addEventListener('click', function () { loadQuarantine(true); });
    $('dlq-replay-selected').addEventListener('click', function () { replayDeadLetters(picked()); });
    $('dlq-replay-all').addEventListener('click', function () { replayDeadLetters(null); });
  }

  start();
})();
