/* Social Inbox: the agents' web client for the JSON agent API (no framework, no build step).
   Every text from a social network is untrusted: it reaches the page only through
   textContent and attributes set as properties, never as markup; links are made only for
   http(s) URLs. The page's CSP (Trusted Types, no inline script) backs this up. */
(function () {
  'use strict';

  var BASE = new URL('..', document.currentScript.src); // the app root, also under a stage prefix
  var TOKEN_KEY = 'socialinbox.token';
  var REFRESH_MS = 10000;
  var SOON_MS = 15 * 60 * 1000;
  var PAGE = 25;
  var MAX_MESSAGE_PAGES = 20;
  var STATUSES = ['open', 'pending', 'snoozed', 'resolved'];
  var DIRECTIONS = ['in', 'out', 'note'];
  var CHANNELS = {messenger: 'Messenger', instagram: 'Instagram', whatsapp: 'WhatsApp', facebook: 'Facebook',
    x: 'X', telegram: 'Telegram', linkedin: 'LinkedIn'};

  var state = {
    token: sessionStorage.getItem(TOKEN_KEY),
    status: 'open', channel: '', mine: false, sort: 'recent',
    items: [], next: null, listKey: '', listGen: 0, listBusy: false,
    selected: null, threadKey: '', threadGen: 0, threadBusy: false,
    timer: null
  };

  function $(id) { return document.getElementById(id); }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // --- API -------------------------------------------------------------------------------------

  function ApiError(status, message) {
    this.status = status;
    this.message = message;
    this.handled = false;
  }

  async function api(path, body) {
    var init = {headers: {Accept: 'application/json'}, cache: 'no-store', credentials: 'omit'};
    if (state.token) init.headers.Authorization = 'Bearer ' + state.token;
    if (body !== undefined) {
      init.method = 'POST';
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    var response, data = null;
    try {
      response = await fetch(new URL(path, BASE), init);
    } catch (e) {
      throw new ApiError(0, 'Cannot reach the server; retrying shortly.');
    }
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      var message = data && typeof data.Message === 'string' && data.Message ? data.Message
        : 'The server answered ' + response.status + '.';
      var error = new ApiError(response.status, message);
      if (response.status === 401 && body === undefined) {
        signOut('Your session has ended. Please sign in again.');
        error.handled = true;
      }
      throw error;
    }
    return data || {};
  }

  // --- sign in / out ---------------------------------------------------------------------------

  function showLogin(message) {
    $('app').hidden = true;
    $('logout').hidden = true;
    $('who').textContent = '';
    $('login').hidden = false;
    $('login-error').textContent = message || '';
    $('email').focus();
  }

  function signOut(message) {
    clearInterval(state.timer);
    state.timer = null;
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    state.items = [];
    state.next = null;
    state.listKey = state.threadKey = '';
    state.listGen++;
    state.threadGen++;
    state.selected = null;
    $('app').classList.remove('reading');
    $('conversations').replaceChildren();
    $('more').hidden = true;
    $('list-note').textContent = '';
    $('messages').replaceChildren();
    $('thread-head').replaceChildren();
    $('thread-note').textContent = 'Select a conversation.';
    history.replaceState(null, '', location.pathname + location.search);
    showLogin(message);
  }

  async function onLogin(event) {
    event.preventDefault();
    var button = event.target.querySelector('button');
    button.disabled = true;
    $('login-error').textContent = '';
    try {
      var data = await api('api/auth/login', {email: $('email').value.trim(), password: $('password').value});
      state.token = data.token;
      sessionStorage.setItem(TOKEN_KEY, data.token);
      $('password').value = '';
      await start();
    } catch (e) {
      $('login-error').textContent = e.status === 401 ? 'Wrong email or password.' : e.message;
    } finally {
      button.disabled = false;
    }
  }

  async function start() {
    var me;
    try {
      me = await api('api/me');
    } catch (e) {
      if (!e.handled) showLogin(e.message);
      return;
    }
    $('who').textContent = (me.name || me.email || '') + (me.role === 'admin' ? ' (admin)' : '');
    $('login').hidden = true;
    $('logout').hidden = false;
    $('app').hidden = false;
    state.selected = selectedFromHash();
    $('app').classList.toggle('reading', Boolean(state.selected));
    syncControls();
    loadList('reset');
    if (state.selected) loadThread(true);
    clearInterval(state.timer);
    state.timer = setInterval(refresh, REFRESH_MS);
  }

  function refresh() {
    if (!state.token || document.hidden) return;
    loadList('refresh');
    if (state.selected) loadThread(false);
  }

  // --- filters ---------------------------------------------------------------------------------

  function syncControls() {
    var tabs = document.querySelectorAll('[data-status]');
    for (var i = 0; i < tabs.length; i++) {
      tabs[i].setAttribute('aria-selected', String(tabs[i].dataset.status === state.status));
    }
    // "Mine" is ordered by reply deadline (the API keeps an agent's queue by deadline only).
    if (state.mine) state.sort = 'due';
    $('channel').value = state.channel;
    $('mine').checked = state.mine;
    $('sort').disabled = state.mine;
    $('sort').title = state.mine ? 'Your conversations are ordered by reply deadline' : '';
    $('sort').value = state.sort;
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

  function listPath(extra) {
    var query = new URLSearchParams({status: state.status, sort: state.sort});
    if (state.channel) query.set('channel', state.channel);
    if (state.mine) query.set('assignee', 'me');
    Object.keys(extra).forEach(function (key) { query.set(key, extra[key]); });
    return 'api/conversations?' + query;
  }

  // --- conversation list -----------------------------------------------------------------------

  async function loadList(mode) {
    if (state.listBusy && mode !== 'reset') return;
    var gen = state.listGen;
    var note = $('list-note');
    state.listBusy = true;
    $('more').disabled = true;
    if (mode === 'reset') note.textContent = 'Loading…';
    var data;
    try {
      data = await api(listPath(mode === 'more' ? {limit: PAGE, cursor: state.next}
        : {limit: mode === 'refresh' ? Math.min(100, Math.max(PAGE, state.items.length)) : PAGE}));
    } catch (e) {
      if (gen === state.listGen) {
        state.listBusy = false;
        $('more').disabled = false;
        if (!e.handled) note.textContent = e.message;
      }
      return;
    }
    if (gen !== state.listGen) return;
    state.listBusy = false;
    $('more').disabled = false;
    var items = Array.isArray(data.items) ? data.items : [];
    var seen = new Set(items.map(function (c) { return c.id; }));
    if (mode === 'more') {
      state.items = state.items.filter(function (c) { return !seen.has(c.id); }).concat(items);
      state.next = data.next || null;
    } else if (mode === 'refresh' && data.next && state.items.length > items.length) {
      // more was loaded than one request returns: refresh the head, keep the tail and its cursor
      state.items = items.concat(state.items.slice(items.length).filter(function (c) { return !seen.has(c.id); }));
    } else {
      state.items = items;
      state.next = data.next || null;
    }
    note.textContent = state.items.length ? '' : 'No ' + state.status + ' conversations here.';
    renderList();
  }

  function renderList() {
    var list = $('conversations');
    var key = JSON.stringify(state.items) + state.selected + Math.floor(Date.now() / 60000);
    $('more').hidden = !state.next;
    if (key === state.listKey) return; // unchanged: leave scroll, focus and selection alone
    state.listKey = key;
    var focused = list.contains(document.activeElement) ? document.activeElement.dataset.id : null;
    var scroll = list.scrollTop;
    list.replaceChildren.apply(list, state.items.map(row));
    list.scrollTop = scroll;
    if (focused) {
      var rows = list.querySelectorAll('.row');
      for (var i = 0; i < rows.length; i++) {
        if (rows[i].dataset.id === focused) rows[i].focus({preventScroll: true});
      }
    }
  }

  function row(c) {
    var item = el('li');
    var button = el('button', 'row');
    button.type = 'button';
    button.dataset.id = c.id;
    if (c.id === state.selected) {
      button.classList.add('selected');
      button.setAttribute('aria-current', 'true');
    }
    var top = el('div', 'row-top');
    top.append(el('span', 'name', contactName(c)));
    var sla = slaBadge(c.reply_due_at);
    if (sla) top.append(sla);
    top.append(relativeTime(c.last_message_at));
    var bottom = el('div', 'row-bottom');
    var prefix = c.last_message_direction === 'out' ? 'You: ' : c.last_message_direction === 'note' ? 'Note: ' : '';
    bottom.append(channelBadge(c.channel), el('span', 'preview', prefix + (c.last_message_preview || '')));
    var unread = Number(c.unread_count) || 0;
    if (unread > 0) {
      var count = el('span', 'unread', unread > 99 ? '99+' : unread);
      count.title = unread + ' unread';
      bottom.append(count);
    }
    button.append(top, bottom);
    item.append(button);
    return item;
  }

  function contactName(c) {
    return (c.contact && c.contact.display_name) || 'Unknown contact';
  }

  function channelBadge(channel) {
    var known = Object.prototype.hasOwnProperty.call(CHANNELS, channel);
    return el('span', 'badge ch' + (known ? ' ch-' + channel : ''), known ? CHANNELS[channel] : String(channel || '?'));
  }

  function slaBadge(iso) {
    var due = Date.parse(iso || '');
    if (isNaN(due)) return null;
    var left = due - Date.now();
    if (left > SOON_MS) return null;
    var badge = el('span', 'badge ' + (left < 0 ? 'sla-overdue' : 'sla-soon'),
      left < 0 ? 'Overdue ' + duration(-left) : 'Due in ' + duration(left));
    badge.title = 'Reply due ' + new Date(due).toLocaleString();
    return badge;
  }

  function duration(ms) {
    var minutes = Math.round(ms / 60000);
    if (minutes < 60) return Math.max(minutes, 1) + ' min';
    if (minutes < 48 * 60) return Math.round(minutes / 60) + ' h';
    return Math.round(minutes / 1440) + ' d';
  }

  function relativeTime(iso) {
    var at = Date.parse(iso || '');
    var node = el('time', 'rel');
    if (isNaN(at)) return node;
    var ago = Date.now() - at;
    node.dateTime = iso;
    node.title = new Date(at).toLocaleString();
    node.textContent = ago < 45000 ? 'just now' : ago < 7 * 86400000 ? duration(ago) + ' ago'
      : new Date(at).toLocaleDateString();
    return node;
  }

  function selectedFromHash() {
    var match = /^#c=(.+)$/.exec(location.hash);
    if (!match) return null;
    try { return decodeURIComponent(match[1]); } catch (e) { return null; }
  }

  function select(id) {
    $('app').classList.add('reading');
    if (id === state.selected) return;
    state.selected = id;
    history.replaceState(null, '', '#c=' + encodeURIComponent(id));
    renderList();
    loadThread(true);
  }

  // --- thread ----------------------------------------------------------------------------------

  async function loadThread(fresh) {
    if (!fresh && state.threadBusy) return;
    var id = state.selected;
    var gen = fresh ? ++state.threadGen : state.threadGen;
    var note = $('thread-note');
    state.threadBusy = true;
    if (fresh) {
      state.threadKey = '';
      $('thread-head').replaceChildren();
      $('messages').replaceChildren();
      note.textContent = 'Loading…';
    }
    var path = 'api/conversations/' + encodeURIComponent(id);
    var conversation, thread;
    try {
      var results = await Promise.all([api(path), allMessages(path + '/messages')]);
      conversation = results[0];
      thread = results[1];
    } catch (e) {
      if (gen === state.threadGen) {
        state.threadBusy = false;
        if (!e.handled) note.textContent = e.status === 404 ? 'This conversation no longer exists.' : e.message;
      }
      return;
    }
    if (gen !== state.threadGen) return;
    state.threadBusy = false;
    var key = JSON.stringify([conversation, thread]);
    note.textContent = !thread.items.length ? 'No messages yet.'
      : thread.more ? 'Showing the first ' + thread.items.length + ' messages.' : '';
    if (key === state.threadKey) return; // unchanged: leave scroll and text selection alone
    state.threadKey = key;
    renderHead(conversation);
    var list = $('messages');
    var atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    var scroll = list.scrollTop;
    list.replaceChildren.apply(list, thread.items.map(messageItem));
    list.scrollTop = fresh || atBottom ? list.scrollHeight : scroll;
  }

  async function allMessages(path) {
    var items = [], cursor = null, pages = 0;
    do {
      var query = new URLSearchParams({limit: '100'});
      if (cursor) query.set('cursor', cursor);
      var data = await api(path + '?' + query);
      items = items.concat(Array.isArray(data.items) ? data.items : []);
      cursor = data.next;
      pages++;
    } while (cursor && pages < MAX_MESSAGE_PAGES);
    return {items: items, more: Boolean(cursor)};
  }

  function renderHead(c) {
    var back = el('button', 'link back', '‹ Conversations');
    back.type = 'button';
    back.addEventListener('click', function () { $('app').classList.remove('reading'); });
    var info = el('div', 'head-info');
    info.append(channelBadge(c.channel));
    var handle = c.contact && c.contact.handle;
    if (handle && handle !== contactName(c)) info.append(el('span', 'handle', handle));
    if (STATUSES.indexOf(c.status) >= 0) info.append(el('span', 'badge', c.status));
    if (c.kind && c.kind !== 'dm') info.append(el('span', 'badge', c.kind));
    var sla = slaBadge(c.reply_due_at);
    if (sla) info.append(sla);
    $('thread-head').replaceChildren(back, el('h2', null, contactName(c)), info);
    if (c.subject) $('thread-head').append(el('p', 'subject', (c.kind === 'comment' ? 'On post: ' : '') + c.subject));
  }

  function messageItem(m) {
    var direction = DIRECTIONS.indexOf(m.direction) >= 0 ? m.direction : 'in';
    var item = el('li', 'msg ' + direction + (m.removed ? ' removed' : ''));
    var text = el(m.removed ? 'del' : 'div', 'text');
    if (typeof m.text === 'string' && m.text !== '') {
      text.textContent = m.text;
    } else {
      text.textContent = '[' + (m.type || 'message') + ']';
      text.classList.add('placeholder');
    }
    item.append(text);
    if (Array.isArray(m.attachments) && m.attachments.length) item.append(attachmentList(m.attachments));
    var meta = el('div', 'meta');
    if (direction === 'note') meta.append(el('span', 'tag', 'Internal note'));
    if (m.type && m.type !== 'text') meta.append(el('span', 'tag', m.type));
    var at = Date.parse(m.sent_at || '');
    if (!isNaN(at)) {
      var time = el('time', null, new Date(at).toLocaleString());
      time.dateTime = m.sent_at;
      meta.append(time);
    }
    if (m.edited_at) {
      var edited = el('span', 'edited', 'edited');
      edited.tabIndex = 0;
      edited.title = editHistory(m);
      meta.append(edited);
    }
    if (m.removed) meta.append(el('span', 'tag', 'removed on the platform'));
    if (direction === 'out' && m.delivery_status) {
      var status = el('span', 'delivery' + (m.delivery_status === 'failed' ? ' delivery-failed' : ''),
        m.delivery_status);
      if (m.delivery_error) status.title = String(m.delivery_error);
      meta.append(status);
    }
    item.append(meta);
    return item;
  }

  function editHistory(m) {
    var lines = ['Edited ' + localTime(m.edited_at) + '. Earlier versions:'];
    (Array.isArray(m.edit_history) ? m.edit_history : []).forEach(function (h) {
      lines.push('• ' + (h.text || '(no text)') + (h.replaced_at ? '  (until ' + localTime(h.replaced_at) + ')' : ''));
    });
    return lines.join('\n');
  }

  function localTime(iso) {
    var at = Date.parse(iso || '');
    return isNaN(at) ? '?' : new Date(at).toLocaleString();
  }

  function attachmentList(attachments) {
    var list = el('ul', 'attachments');
    attachments.forEach(function (a) {
      if (!a || typeof a !== 'object') return;
      var label = attachmentLabel(a);
      var url = httpUrl(a.url);
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

  // --- wiring ----------------------------------------------------------------------------------

  $('login-form').addEventListener('submit', onLogin);
  $('logout').addEventListener('click', function () { signOut(''); });
  document.querySelector('.tabs').addEventListener('click', function (event) {
    var tab = event.target.closest('[data-status]');
    if (!tab || tab.dataset.status === state.status) return;
    state.status = tab.dataset.status;
    changeView();
  });
  $('channel').addEventListener('change', function () { state.channel = $('channel').value; changeView(); });
  $('mine').addEventListener('change', function () { state.mine = $('mine').checked; changeView(); });
  $('sort').addEventListener('change', function () { state.sort = $('sort').value; changeView(); });
  $('more').addEventListener('click', function () { loadList('more'); });
  $('conversations').addEventListener('click', function (event) {
    var button = event.target.closest('.row');
    if (button) select(button.dataset.id);
  });
  window.addEventListener('hashchange', function () {
    var id = selectedFromHash();
    if (id && state.token && id !== state.selected) select(id);
  });
  document.addEventListener('visibilitychange', function () { if (!document.hidden) refresh(); });

  if (state.token) start(); else showLogin('');
})();
