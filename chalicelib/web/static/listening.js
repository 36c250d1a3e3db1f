/* The Listening view (its own module: app.js is not touched): mentions of our accounts and found
   posts from GET /api/listening/items, newest or most urgent first (negative, then reach), with
   source and sentiment filters; convert (opens the conversation), dismiss, open on the platform.
   Every platform text goes in with textContent (the page's Trusted Types policy allows no HTML). */
(function () {
  'use strict';
  var TOKEN_KEY = 'socialinbox.token';
  var SOURCES = ['', 'facebook_mention', 'instagram_mention', 'linkedin_mention', 'x_mention', 'x_search',
                 'instagram_hashtag'];
  var SENTIMENTS = ['', 'negative', 'neutral', 'positive', 'unscored'];
  var state = {items: [], source: '', sentiment: '', urgent: false};

  function el(tag, props, children) {
    var node = document.createElement(tag);
    Object.keys(props || {}).forEach(function (key) {
      if (key === 'text') node.textContent = props[key];
      else if (key === 'class') node.className = props[key];
      else node.setAttribute(key, props[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function call(path, method) {
    var token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) return Promise.reject(new Error('sign in first'));
    return fetch(path, {method: method || 'GET', cache: 'no-store',
                        headers: {Authorization: 'Bearer ' + token, 'Content-Type': 'application/json'},
                        body: method === 'POST' ? '{}' : undefined})
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (!response.ok) throw new Error(body.Message || ('HTTP ' + response.status));
          return body;
        });
      });
  }

  var RULE_RANK = {medium: 1, high: 2, urgent: 3};  // the admin's priority rules (item.priority)

  function urgency(item) {
    var negative = item.sentiment && item.sentiment.label === 'negative' ? 1 : 0;
    var reach = (item.author && item.author.followers) || 0;
    return [RULE_RANK[item.priority] || 0, negative, reach];
  }

  function ordered() {
    var items = state.items.slice();
    if (state.urgent) {
      items.sort(function (a, b) {
        var x = urgency(a), y = urgency(b);
        return (y[0] - x[0]) || (y[1] - x[1]) || (y[2] - x[2]);
      });
    }
    return items;
  }

  function row(item) {
    var author = item.author || {};
    var who = (author.name || author.handle || 'unknown') + (author.handle ? ' @' + author.handle : '') +
      (author.followers != null ? ' · ' + author.followers + ' followers' : '');
    var mood = item.sentiment ? item.sentiment.label : 'unscored';
    var actions = el('p', {class: 'listening-actions'});
    if (item.conversation_id) {
      actions.appendChild(el('a', {href: '#c=' + encodeURIComponent(item.conversation_id), text: 'Open conversation'}));
    }
    var convert = el('button', {type: 'button', text: item.conversation_id ? 'Take it' : 'Convert'});
    convert.addEventListener('click', function () { act(item, 'convert'); });
    var dismiss = el('button', {type: 'button', class: 'link', text: 'Dismiss'});
    dismiss.addEventListener('click', function () { act(item, 'dismiss'); });
    actions.appendChild(convert);
    actions.appendChild(dismiss);
    if (item.url && /^https:\/\//.test(item.url)) {
      actions.appendChild(el('a', {href: item.url, target: '_blank', rel: 'noopener noreferrer',
                                   text: 'Open on the platform'}));
    }
    return el('li', {class: 'listening-item', 'data-sentiment': mood}, [
      el('p', {class: 'meta', text: (RULE_RANK[item.priority] ? item.priority + ' priority · ' : '') +
               item.source + ' · ' + who + ' · ' + mood +
               (item.topics && item.topics.length ? ' · ' + item.topics.join(', ') : '') +
               (item.created_at ? ' · ' + item.created_at.slice(0, 16).replace('T', ' ') : '')}),
      el('p', {class: 'text', text: item.text || ''}),
      item.replyable ? null : el('p', {class: 'why', text: item.not_replyable_reason || 'cannot be answered here'}),
      actions,
    ]);
  }

  function render(panel, message) {
    var list = panel.querySelector('ul');
    while (list.firstChild) list.removeChild(list.firstChild);
    if (message) list.appendChild(el('li', {text: message}));
    ordered().forEach(function (item) { list.appendChild(row(item)); });
    if (!message && !state.items.length) list.appendChild(el('li', {text: 'Nothing heard yet.'}));
  }

  function load(panel) {
    var query = [];
    if (state.source) query.push('source=' + encodeURIComponent(state.source));
    if (state.sentiment) query.push('sentiment=' + encodeURIComponent(state.sentiment));
    query.push('limit=50');
    call('/api/listening/items?' + query.join('&')).then(function (body) {
      state.items = body.items || [];
      render(panel);
    }, function (error) { state.items = []; render(panel, error.message); });
  }

  function act(item, action) {
    var panel = document.getElementById('listening-panel');
    call('/api/listening/items/' + encodeURIComponent(item.id) + '/' + action, 'POST').then(function (body) {
      if (action === 'convert' && body.conversation_id) location.hash = '#c=' + encodeURIComponent(body.conversation_id);
      load(panel);
    }, function (error) { render(panel, error.message); });
  }

  function select(name, values, onChange) {
    var node = el('select', {'aria-label': name});
    values.forEach(function (value) { node.appendChild(el('option', {value: value, text: value || 'all ' + name})); });
    node.addEventListener('change', function () { onChange(node.value); });
    return node;
  }

  function start() {
    var header = document.querySelector('header.top');
    if (!header) return;
    var toggle = el('button', {id: 'listening-toggle', type: 'button', class: 'link', 'aria-controls': 'listening-panel',
                               'aria-expanded': 'false', text: 'Listening'});
    var panel = el('section', {id: 'listening-panel', class: 'popover listening', 'aria-label': 'Listening', hidden: ''});
    var urgent = el('button', {type: 'button', class: 'link', text: 'Most urgent first'});
    urgent.addEventListener('click', function () {
      state.urgent = !state.urgent;
      urgent.textContent = state.urgent ? 'Newest first' : 'Most urgent first';
      render(panel);
    });
    panel.appendChild(el('p', {class: 'listening-filters'}, [
      select('sources', SOURCES, function (value) { state.source = value; load(panel); }),
      select('sentiments', SENTIMENTS, function (value) { state.sentiment = value; load(panel); }),
      urgent]));
    panel.appendChild(el('ul'));
    toggle.addEventListener('click', function () {
      var opening = panel.hidden;
      panel.hidden = !opening;
      toggle.setAttribute('aria-expanded', String(opening));
      if (opening) load(panel);
    });
    header.insertBefore(toggle, document.getElementById('who'));
    document.body.insertBefore(panel, header.nextSibling);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
}());
