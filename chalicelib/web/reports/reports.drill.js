/* Social Inbox: the Reports screen's drill-down and conversation export, on
   GET /api/reports/conversations. Every number with conversations behind it is a button
   (reports.js marks it with the query parameters that narrow the list to what it counts); a
   click lists those conversation cycles here, each opening in the inbox. The CSV buttons fetch
   every page of the same rows (the API pages with a cursor) into one download. Values reach the
   page through textContent only. */
(function () {
  'use strict';

  var BASE = new URL('..', document.currentScript.src);
  var TOKEN_KEY = 'socialinbox.token';
  var PAGE = 200;
  var current = null;  // {params, cursor, shown}

  function $(id) { return document.getElementById(id); }
  function R() { return window.SocialInboxReports; }

  function label(button) {
    var td = button.closest('td'), tr = button.closest('tr'), table = button.closest('table');
    var column = table.querySelectorAll('thead th')[td.cellIndex];
    var head = tr.querySelector('th') || tr.cells[0];
    var name = (head ? head.textContent : '') + (column && td.cellIndex > 0 && column.textContent ? ' · ' + column.textContent : '');
    return name + ': ' + button.textContent;
  }

  function show(item) {
    var el = R().el, duration = R().duration, tr = el('tr');
    var started = (item.cycle_started || '').slice(0, 16).replace('T', ' ');
    [started, item.channel, item.team, (item.agents || []).join(', '), (item.tags || []).join(', '),
      item.priority || '—', duration(item.first_response_s), duration(item.resolution_s), item.sla_first || '—']
      .forEach(function (value) { tr.append(el('td', value)); });
    var open = el('a', 'Open');
    open.href = './#c=' + encodeURIComponent(item.conversation_id);
    var td = el('td');
    td.append(open);
    tr.append(td);
    $('drill-rows').append(tr);
  }

  // A filtered page of a long period may hold few rows (the API bounds what each page reads): keep
  // reading until a screenful is shown or the period ends.
  async function more() {
    $('drill-more').hidden = true;
    $('drill-count').textContent = 'Loading…';
    try {
      var pages = 0, before = current.shown;
      do {
        var params = new URLSearchParams(current.params);
        params.set('limit', String(PAGE));
        if (current.cursor) params.set('cursor', current.cursor);
        var data = await R().api('api/reports/conversations?' + params.toString());
        data.items.forEach(show);
        current.shown += data.items.length;
        current.cursor = data.next_cursor;
        pages += 1;
      } while (current.cursor && current.shown - before < PAGE && pages < 20);
      $('drill-count').textContent = current.shown + (current.shown === 1 ? ' conversation cycle' : ' conversation cycles') +
        (current.cursor ? ' so far' : '');
      $('drill-more').hidden = !current.cursor;
    } catch (e) {
      $('drill-count').textContent = e.message;
    }
  }

  function open(params, title) {
    current = {params: params, cursor: null, shown: 0};
    $('drill-rows').replaceChildren();
    $('drill-title').textContent = 'Conversations behind ' + title;
    $('drill').hidden = false;
    $('drill').scrollIntoView({block: 'nearest'});
    return more();
  }

  // Every page as CSV into one file (later pages come without a header row).
  async function downloadAll(params, name) {
    var token = sessionStorage.getItem(TOKEN_KEY), parts = [], cursor = null;
    params = new URLSearchParams(params);
    params.set('format', 'csv');
    params.set('limit', '1000');
    $('drill-count').textContent = 'Preparing the CSV…';
    do {
      if (cursor) params.set('cursor', cursor);
      var response = await fetch(new URL('api/reports/conversations?' + params.toString(), BASE), {cache: 'no-store',
        headers: token ? {Authorization: 'Bearer ' + token} : {}});
      if (!response.ok) {
        var data = await response.json().catch(function () { return {}; });
        $('drill-count').textContent = data.Message || 'HTTP ' + response.status;
        return;
      }
      parts.push(await response.text());
      cursor = response.headers.get('X-Next-Cursor');
    } while (cursor);
    $('drill-count').textContent = '';
    R().save(new Blob(parts, {type: 'text/csv'}), name);
  }

  document.addEventListener('click', function (event) {
    var button = event.target.closest && event.target.closest('button.drill');
    if (!button) return;
    var params = R().query(), extra = JSON.parse(button.dataset.drill || '{}');
    Object.keys(extra).forEach(function (key) { params.set(key, String(extra[key])); });
    open(params, label(button));
  });

  document.addEventListener('DOMContentLoaded', function () {
    $('drill-more').addEventListener('click', more);
    $('drill-close').addEventListener('click', function () { $('drill').hidden = true; current = null; });
    $('drill-csv').addEventListener('click', function () {
      if (current) downloadAll(current.params, 'conversations-' + current.params.get('from') + '.csv');
    });
    $('conversations-csv').addEventListener('click', function () {
      var params = R().query();
      downloadAll(params, 'conversations-' + params.get('from') + '.csv');
    });
  });
})();
