/* Social Inbox: the Reports screen's "Attention" section, on GET /api/reports/attention: each
   platform's own analytics (reach, new followers, every configured metric, "no longer available"
   where the platform stopped serving one) next to the inbox's numbers per day and channel. Its own
   module (no build step): it reads the screen's filters, loads on the screen's "Show" and offers
   its own CSV. Values reach the page through textContent only (CSP with Trusted Types). */
(function () {
  'use strict';

  var BASE = new URL('..', document.currentScript.src);
  var TOKEN_KEY = 'socialinbox.token';
  var COLUMNS = [['day', 'Day'], ['channel', 'Channel'], ['reach', 'Reach'], ['followers', 'Followers'],
    ['new_followers', 'New followers'],
    ['new_conversations', 'New conversations'], ['customer_waits', 'Customer waits'],
    ['response_rate_pct', 'Response rate'], ['first_response_median_s', 'First response (median)'],
    ['first_response_p90_s', 'First response (p90)'], ['unanswered', 'Unanswered']];

  function $(id) { return document.getElementById(id); }

  function el(tag, text) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return '—';
    if (seconds < 90) return seconds + ' s';
    if (seconds < 5400) return Math.round(seconds / 60) + ' min';
    return (seconds / 3600).toFixed(1) + ' h';
  }

  function cell(name, value) {
    if (value === null || value === undefined) return '—';
    if (name === 'response_rate_pct') return value + ' %';
    if (name === 'first_response_median_s' || name === 'first_response_p90_s') return duration(value);
    return typeof value === 'number' ? value.toLocaleString() : value;
  }

  function params(format) {
    var query = new URLSearchParams({from: $('from').value, to: $('to').value, tz: $('tz').value.trim()});
    ['channel', 'team'].forEach(function (name) {
      var input = $(name);
      if (input && !input.disabled && input.value.trim()) query.set(name, input.value.trim());
    });
    if (format) query.set('format', format);
    return query;
  }

  async function request(format) {
    var token = sessionStorage.getItem(TOKEN_KEY);
    return fetch(new URL('api/reports/attention?' + params(format).toString(), BASE), {cache: 'no-store',
      headers: token ? {Authorization: 'Bearer ' + token} : {}});
  }

  function show(answer) {
    var head = el('tr');
    COLUMNS.forEach(function (column) { head.append(el('th', column[1])); });
    head.append(el('th', 'Platform metrics'));
    $('attention-head').replaceChildren(head);
    var body = $('attention-rows');
    body.replaceChildren();
    answer.rows.forEach(function (row) {
      var tr = el('tr');
      COLUMNS.forEach(function (column) { tr.append(el('td', cell(column[0], row[column[0]]))); });
      var details = el('td');
      Object.keys(row.platform).forEach(function (name) {
        var metric = row.platform[name];
        var line = el('div', metric.label + ': ' + (metric.status === 'no_longer_available' ? 'no longer available'
          : metric.value === null ? '—' : cell(name, metric.value)));
        if (metric.status === 'no_longer_available') line.className = 'muted';
        details.append(line);
      });
      tr.append(details);
      body.append(tr);
    });
    if (!answer.rows.length) {
      var empty = el('tr'), td = el('td', 'No platform data or inbox activity in this period.');
      td.colSpan = COLUMNS.length + 1;
      empty.append(td);
      body.append(empty);
    }
    var notes = $('attention-sources');
    notes.replaceChildren();
    Object.keys(answer.channels).forEach(function (channel) {
      var source = answer.channels[channel];
      var item = el('li');
      item.append(el('strong', channel + ': '), document.createTextNode(
        (source.available ? source.source + '. ' : 'no platform analytics. ') + source.note));
      notes.append(item);
    });
  }

  async function load() {
    var note = $('attention-note');
    note.textContent = 'Loading…';
    try {
      var response = await request('');
      var data = await response.json().catch(function () { return {}; });
      if (!response.ok) {
        note.textContent = response.status === 403 ? 'The attention report is for supervisors and admins.'
          : (data.Message || 'HTTP ' + response.status);
        $('attention-rows').replaceChildren();
        return;
      }
      show(data);
      note.textContent = 'Platform days are the platform\'s own dates (Meta: Pacific time); inbox numbers for the cycles that started that local day.';
    } catch (e) {
      note.textContent = e.message;
    }
  }

  async function downloadCsv() {
    var response = await request('csv');
    if (!response.ok) {
      var data = await response.json().catch(function () { return {}; });
      $('attention-note').textContent = data.Message || 'HTTP ' + response.status;
      return;
    }
    var url = URL.createObjectURL(await response.blob());
    var link = el('a');
    link.href = url;
    link.download = 'attention-' + $('from').value + '.csv';
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
  }

  function start() {
    $('filters').addEventListener('submit', function (event) { event.preventDefault(); load(); });
    $('attention-csv').addEventListener('click', downloadCsv);
    // The screen fills the filters once it knows who signed in; load when it is shown.
    var screen = $('reports');
    if (!screen.hidden) { load(); return; }
    new MutationObserver(function (changes, observer) {
      if (!screen.hidden) { observer.disconnect(); load(); }
    }).observe(screen, {attributes: true, attributeFilter: ['hidden']});
  }

  start();
})();
