/* Social Inbox Reports: the listening section (GET /api/reports/topics), a module of its own
   beside reports.js. It reads the screen's period (#from, #to, #tz), follows its Show button, and
   adds its own share-of-voice comparison and CSV download. Topic names and authors' handles are
   untrusted text: they reach the page through textContent only (the page's CSP backs this up).
   Team leads and admins only: for an agent the API says 403 and the section stays hidden. */
(function () {
  'use strict';

  var BASE = new URL('..', document.currentScript.src);
  var LABELS = ['positive', 'neutral', 'negative', 'unscored'];
  var PLATFORMS = {x: 'X', instagram: 'Instagram', facebook: 'Facebook', linkedin: 'LinkedIn'};
  var section, parts = {};

  function make(tag, text, attrs) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  function table(caption, heads) {
    var t = make('table', null, {'class': 'grid'});
    t.append(make('caption', caption, {'class': 'sr'}));
    var tr = make('tr');
    heads.forEach(function (h) { tr.append(make('th', h, {scope: 'col'})); });
    var head = make('thead');
    head.append(tr);
    var body = make('tbody');
    t.append(head, body);
    return {table: t, body: body};
  }

  function line(body, cells) {
    var tr = make('tr');
    cells.forEach(function (c) {
      var td = make('td');
      if (c instanceof Node) td.append(c); else td.textContent = c === null || c === undefined ? '—' : String(c);
      tr.append(td);
    });
    body.append(tr);
    return tr;
  }

  function share(value) {
    var wrap = make('span');
    if (value === null || value === undefined) { wrap.textContent = '—'; return wrap; }
    var meter = make('meter', null, {min: '0', max: '100', value: String(value), 'aria-hidden': 'true'});
    wrap.append(meter, ' ' + value + ' %');
    return wrap;
  }

  function params(csv) {
    var p = new URLSearchParams({from: document.getElementById('from').value,
      to: document.getElementById('to').value, tz: document.getElementById('tz').value.trim()});
    var names = parts.compare.value.split(',').map(function (s) { return s.trim(); }).filter(Boolean);
    if (names.length) p.set('compare', names.join(','));
    if (csv) p.set('format', 'csv');
    return p;
  }

  async function fetchReport(csv) {
    var token = sessionStorage.getItem('socialinbox.token');
    var response = await fetch(new URL('api/reports/topics?' + params(csv).toString(), BASE), {cache: 'no-store',
      headers: token ? {Authorization: 'Bearer ' + token} : {}});
    if (response.ok) return csv ? response.blob() : response.json();
    var data = await response.json().catch(function () { return {}; });
    var problem = new Error(data.Message || 'HTTP ' + response.status);
    problem.status = response.status;
    throw problem;
  }

  function show(data) {
    [parts.voice, parts.days, parts.authors].forEach(function (t) { t.body.replaceChildren(); });
    data.share_of_voice.forEach(function (t) {
      line(parts.voice.body, [t.name, t.posts, share(t.share), share(t.negative_share)]);
    });
    data.days.forEach(function (d) {
      var names = Object.keys(d.topics).sort().map(function (n) { return n + ': ' + d.topics[n].total; }).join(', ');
      line(parts.days.body, [d.date, d.all.total].concat(LABELS.map(function (l) { return d.all[l]; }), [names || '—']))
        .dataset.date = d.date;
    });
    data.top_authors.forEach(function (a) {
      line(parts.authors.body, ['@' + a.handle, a.name, PLATFORMS[a.platform] || a.platform, a.posts, a.negative,
        a.followers === null ? null : a.followers.toLocaleString('en-US')]);
    });
    parts.note.className = data.truncated ? 'note error' : 'note';
    parts.note.textContent = data.truncated
      ? 'Only the first ' + data.items_read + ' posts were counted (up to ' + data.counted_until + '): choose a shorter period.'
      : data.items_read + ' found posts and mentions in the period.';
  }

  async function load() {
    parts.note.className = 'note';
    parts.note.textContent = 'Loading…';
    try {
      show(await fetchReport(false));
      section.hidden = false;
    } catch (e) {
      if (e.status === 403) { section.hidden = true; return; }
      section.hidden = false;
      parts.note.className = 'note error';
      parts.note.textContent = e.message;
    }
  }

  async function download() {
    try {
      var url = URL.createObjectURL(await fetchReport(true));
      var link = make('a');
      link.href = url;
      link.download = 'topics-' + document.getElementById('from').value + '.csv';
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
    } catch (e) {
      parts.note.className = 'note error';
      parts.note.textContent = e.message;
    }
  }

  function build() {
    section = make('section', null, {'class': 'panel', id: 'topics-report', 'aria-labelledby': 'topics-title'});
    section.hidden = true;
    section.append(make('h2', 'Listening: topics, sentiment and share of voice', {id: 'topics-title'}),
      make('p', 'Found posts and mentions of our accounts made in the period, per local day. Share of voice '
        + 'compares the topics you name (ours against a competitor\'s); empty compares every topic.', {'class': 'help'}));
    var form = make('form', null, {'class': 'form', id: 'topics-form'});
    var label = make('label', 'Compare topics ');
    parts.compare = make('input', null, {id: 'topics-compare', size: '32', autocomplete: 'off',
      placeholder: 'all topics, e.g. Acme, Globex'});
    label.append(parts.compare);
    var go = make('button', 'Show topics', {type: 'submit'});
    var csv = make('button', 'Topics as CSV', {type: 'button', id: 'topics-csv'});
    parts.note = make('p', null, {'class': 'note', role: 'status', id: 'topics-note'});
    form.append(label, go, csv, parts.note);
    parts.voice = table('Share of voice', ['Topic', 'Posts', 'Share of voice', 'Negative']);
    parts.days = table('Posts per day by sentiment', ['Day', 'Posts'].concat(LABELS.map(function (l) {
      return l[0].toUpperCase() + l.slice(1);
    }), ['Topics']));
    parts.authors = table('Top authors', ['Handle', 'Name', 'Platform', 'Posts', 'Negative', 'Followers']);
    parts.voice.table.id = 'topics-voice';
    parts.days.table.id = 'topics-days';
    parts.authors.table.id = 'topics-authors';
    section.append(form, make('h3', 'Share of voice'), parts.voice.table, make('h3', 'Per day'), parts.days.table,
      make('h3', 'Top authors'), parts.authors.table);
    document.getElementById('reports').append(section);
    form.addEventListener('submit', function (event) { event.preventDefault(); load(); });
    csv.addEventListener('click', download);
    document.getElementById('filters').addEventListener('submit', load);  // the screen's Show
  }

  build();
  // The screen fills its period after /api/me answers (reports.js): load once it is shown, or at
  // once when it already is (this script came after that answer: a slow link, a busy server).
  var screen = document.getElementById('reports');
  if (!screen.hidden) { load(); return; }
  var watch = new MutationObserver(function () {
    if (!screen.hidden) { watch.disconnect(); load(); }
  });
  watch.observe(screen, {attributes: true, attributeFilter: ['hidden']});
})();
