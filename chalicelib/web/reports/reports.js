/* Social Inbox: the Reports screen for team leads and admins, on GET /api/reports/* (no
   framework, no build step). Every value reaches the page through textContent only; the page's
   CSP (Trusted Types, no inline script) backs this up. The sign-in is the inbox's (same session
   key); the API decides what each role may read, the screen shows what it answers. */
(function () {
  'use strict';

  var BASE = new URL('..', document.currentScript.src);
  var TOKEN_KEY = 'socialinbox.token';
  var TIMES = [['first_response', 'First response'], ['next_response', 'Next response'], ['resolution', 'Resolution']];
  var IN_TARGET = {first_response: 'first_response_in'};
  var TARGETS = [['first', 'First response'], ['next', 'Next response'], ['resolution', 'Resolution']];
  var VOLUME = [['inbound', 'Inbound messages'], ['outbound', 'Outbound messages'],
    ['unique_authors', 'Unique authors'], ['new_conversations', 'New conversations', 'new'],
    ['cycles', 'Cycles (new + reopened)', ''], ['customer_waits', 'Customer waits'], ['replies', 'Replies ending a wait'],
    ['private_replies', 'Private replies', 'private_reply'], ['resolved', 'Resolved cycles', 'resolution'],
    ['breaches', 'Breaches', 'breached']];
  var KINDS = [['dm', 'Direct messages'], ['comment', 'Comments'], ['mention', 'Mentions']];
  var SVG = 'http://www.w3.org/2000/svg';
  var DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

  function $(id) { return document.getElementById(id); }

  function el(tag, text) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // A cell whose number has conversations behind it holds a button that opens them (reports.drill.js):
  // `drills[i]` are the query parameters that narrow the conversations to what cell i counts.
  function cell(value, drill) {
    var td = el('td');
    if (drill && value !== '—' && value !== 0 && value !== '') {
      var button = el('button', value);
      button.type = 'button';
      button.className = 'drill';
      button.dataset.drill = JSON.stringify(drill);
      td.append(button);
    } else {
      td.textContent = String(value);
    }
    return td;
  }

  function row(body, cells, drills) {
    var tr = el('tr');
    cells.forEach(function (value, i) { tr.append(cell(value, drills && drills[i])); });
    body.append(tr);
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return '—';
    if (seconds < 90) return seconds + ' s';
    if (seconds < 5400) return Math.round(seconds / 60) + ' min';
    if (seconds < 172800) return (seconds / 3600).toFixed(1) + ' h';
    return (seconds / 86400).toFixed(1) + ' d';
  }

  function pct(value) { return value === null || value === undefined ? '—' : value + ' %'; }

  async function api(path) {
    var token = sessionStorage.getItem(TOKEN_KEY);
    var response = await fetch(new URL(path, BASE), {cache: 'no-store',
      headers: token ? {Authorization: 'Bearer ' + token} : {}});
    var data = await response.json().catch(function () { return {}; });
    if (!response.ok) {
      var error = new Error(response.status === 401 ? 'Sign in again in the inbox.' : (data.Message || 'HTTP ' + response.status));
      error.status = response.status;
      throw error;
    }
    return data;
  }

  var FILTERS = ['channel', 'account', 'team', 'priority', 'tag', 'agent'];

  function query() {
    var params = new URLSearchParams({from: $('from').value, to: $('to').value, tz: $('tz').value.trim()});
    FILTERS.forEach(function (name) {
      var value = $(name).value.trim();
      if (value) params.set(name, value);
    });
    return params;
  }

  function showSummary(data) {
    var times = $('times'), sla = $('sla'), volume = $('volume');
    [times, sla, volume].forEach(function (body) { body.replaceChildren(); });
    TIMES.forEach(function (pair) {
      var m = data[pair[0]], business = m.business_hours || {};
      var before = data.previous ? data.previous[pair[0]].median_s : null;
      row(times, [pair[1], m.count, duration(m.median_s), duration(m.p90_s), pct(m.within_target_pct),
        duration(business.median_s), duration(business.p90_s), data.previous ? duration(before) : '—'],
      [null, {filter: pair[0]}, null, null, IN_TARGET[pair[0]] ? {filter: IN_TARGET[pair[0]]} : null]);
    });
    TARGETS.forEach(function (pair) {
      var s = data.sla[pair[0]];
      var drill = function (outcome) { return pair[0] === 'resolution' ? null : {filter: 'sla_' + pair[0] + '_' + outcome}; };
      row(sla, [pair[1], s.met === null ? '—' : s.met, s.missed === null ? '—' : s.missed,
        s.pending === null ? '—' : s.pending, pct(s.attainment_pct)], [null, drill('met'), drill('missed'), drill('pending')]);
    });
    var activity = (data.period && data.period.activity) || [];
    VOLUME.forEach(function (pair) {
      row(volume, [pair[1], data.volume[pair[0]], data.previous ? data.previous.volume[pair[0]] : '—',
        activity.indexOf('volume.' + pair[0]) >= 0 ? 'activity' : 'cohort'],
      [null, pair[2] === undefined ? null : (pair[2] ? {filter: pair[2]} : {})]);
    });
    showRates(data);
  }

  function showRates(data) {
    var rates = $('rates');
    rates.replaceChildren();
    $('unanswered').textContent = '';
    var rate = data.response_rate;
    if (!rate) return;
    // the answered, total and private cells open the cycles they count (reports.drill.js)
    var line = function (label, r, kind) {
      var narrow = function (extra) { return Object.assign(kind ? {kind: kind} : {}, extra); };
      row(rates, [label, pct(r.pct), r.answered, r.total, r.public, r.private, r.moderated],
        [null, null, narrow({filter: 'answered'}), narrow({}), null, narrow({filter: 'private_reply'}), null]);
    };
    line('All', rate);
    KINDS.forEach(function (pair) { line(pair[1], rate.by_type[pair[0]], pair[0]); });
    $('unanswered').textContent = 'Unanswered: ' + data.unanswered.count + ' · oldest wait: ' +
      duration(data.unanswered.oldest_wait_s);
  }

  // One metric over time as SVG bars: every bar's value is the API's (title and data-value).
  function showSeries(data) {
    var chart = $('series');
    chart.replaceChildren();
    var points = data.points, width = 720, height = 200, base = 170;
    var top = Math.max.apply(null, [1].concat(points.map(function (p) { return p.value || 0; })));
    var step = width / Math.max(1, points.length);
    points.forEach(function (point, index) {
      var value = point.value === null ? 0 : point.value;
      var bar = document.createElementNS(SVG, 'rect');
      var tall = Math.round((base - 10) * value / top);
      bar.setAttribute('x', String(Math.round(index * step + step * 0.1)));
      bar.setAttribute('y', String(base - tall));
      bar.setAttribute('width', String(Math.max(1, Math.round(step * 0.8))));
      bar.setAttribute('height', String(tall));
      bar.setAttribute('class', 'bar');
      bar.setAttribute('data-start', point.start);
      bar.setAttribute('data-value', point.value === null ? '' : String(point.value));
      var title = document.createElementNS(SVG, 'title');
      title.textContent = point.start.slice(0, 10) + ': ' + (point.value === null ? 'no data' : point.value);
      bar.append(title);
      chart.append(bar);
      if (points.length <= 31 || index % Math.ceil(points.length / 31) === 0) {
        var label = document.createElementNS(SVG, 'text');
        label.setAttribute('x', String(Math.round(index * step + step / 2)));
        label.setAttribute('y', String(base + 18));
        label.setAttribute('text-anchor', 'middle');
        label.setAttribute('font-size', '10');
        label.textContent = point.start.slice(5, 10);
        chart.append(label);
      }
    });
    $('series-note').textContent = data.metric + ' by ' + data.group_by + ' (' + data.period.counts +
      '), highest ' + top + '.';
  }

  // Answers come back in any order: a load the user has since replaced (a second Show, or Show
  // while the screen's first load still waits) must not paint its older period over the newer.
  var loads = 0;

  async function loadSeries(params, current) {
    current = current || function () { return true; };
    var series = new URLSearchParams(params);
    series.set('metric', $('series-metric').value);
    series.set('group_by', $('series-group').value);
    try {
      var answer = await api('api/reports/timeseries?' + series.toString());
      if (current()) showSeries(answer);
    } catch (e) {
      if (!current()) return;
      $('series').replaceChildren();
      $('series-note').textContent = e.message;
    }
  }

  function showHeatmap(data) {
    var head = $('heat-head'), body = $('heat');
    head.replaceChildren();
    body.replaceChildren();
    var tr = el('tr');
    tr.append(el('th', ''));
    for (var hour = 0; hour < 24; hour++) tr.append(el('th', hour));
    head.append(tr);
    var top = Math.max.apply(null, [1].concat(data.cells.map(function (r) { return Math.max.apply(null, r); })));
    data.cells.forEach(function (cells, day) {
      var line = el('tr');
      line.append(el('th', DAYS[day]));
      cells.forEach(function (count, hour) {
        var td = cell(count || '', {weekday: day, hour: hour});
        td.className = 'heat' + Math.min(4, Math.ceil(4 * count / top));
        line.append(td);
      });
      body.append(line);
    });
  }

  async function load() {
    var mine = ++loads;
    var current = function () { return mine === loads; };
    $('note').textContent = 'Loading…';
    var params = query();
    try {
      var summary = new URLSearchParams(params);
      if ($('compare').checked) summary.set('compare', 'previous');
      var answer = await api('api/reports/summary?' + summary.toString());
      if (!current()) return;
      showSummary(answer);
      await loadSeries(params, current);
      if (!current()) return;
      var heat = new URLSearchParams(params);
      heat.set('metric', 'waits');
      try {
        var heatmap = await api('api/reports/heatmap?' + heat.toString());
        if (!current()) return;
        showHeatmap(heatmap);
      } catch (e) {
        if (!current()) return;
        $('heat').replaceChildren();
        $('heat-head').replaceChildren();
        if (e.status !== 400) throw e;
      }
      var period = summary.get('from') + ' – ' + summary.get('to') + ' (' + params.get('tz') + ')';
      $('note').textContent = 'Cycles that started ' + period + '.';
    } catch (e) {
      if (current()) $('note').textContent = e.message;
    }
  }

  // The intervals as a spreadsheet: fetched with the token (a plain link cannot carry it), handed
  // to the browser as a download from a blob URL.
  async function downloadCsv() {
    var params = query();
    params.set('format', 'csv');
    var token = sessionStorage.getItem(TOKEN_KEY);
    var response = await fetch(new URL('api/reports/intervals?' + params.toString(), BASE), {cache: 'no-store',
      headers: token ? {Authorization: 'Bearer ' + token} : {}});
    if (!response.ok) {
      var data = await response.json().catch(function () { return {}; });
      $('note').textContent = data.Message || 'HTTP ' + response.status;
      return;
    }
    save(await response.blob(), 'intervals-' + params.get('from') + '.csv');
  }

  function save(blob, name) {
    var url = URL.createObjectURL(blob);
    var link = el('a');
    link.href = url;
    link.download = name;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
  }

  // What reports.drill.js reuses: the filters' query, the API call, the duration format, a download.
  window.SocialInboxReports = {query: query, api: api, duration: duration, save: save, el: el};

  async function start() {
    var me;
    try {
      me = await api('api/me');
    } catch (e) {
      $('gate').textContent = e.message;
      return;
    }
    $('who').textContent = me.name || me.email || '';
    $('gate').hidden = true;
    $('reports').hidden = false;
    var today = new Date(), first = new Date(today.getFullYear(), today.getMonth(), 1);
    var iso = function (d) { return d.getFullYear() + '-' + String(d.getMonth() + 1).padStart(2, '0') + '-' + String(d.getDate()).padStart(2, '0'); };
    $('from').value = iso(first);
    $('to').value = iso(new Date(today.getFullYear(), today.getMonth(), today.getDate() + 1));
    $('tz').value = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
    if (me.role === 'agent') {
      FILTERS.forEach(function (id) { $(id).disabled = true; });
    }
    $('filters').addEventListener('submit', function (event) { event.preventDefault(); load(); });
    $('csv').addEventListener('click', downloadCsv);
    $('series-form').addEventListener('submit', function (event) { event.preventDefault(); loadSeries(query()); });
    load();
  }

  start();
})();
