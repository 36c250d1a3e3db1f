/* Social Inbox: the Staffing screen for team leads and admins, on GET /api/staffing/plan and
   POST /api/staffing/calculate (no framework, no build step). Every value reaches the page
   through textContent only; the page's CSP (Trusted Types, no inline script) backs this up.
   The sign-in is the inbox's (same session key); the API decides what each role may read. */
(function () {
  'use strict';

  var BASE = new URL('..', document.currentScript.src);
  var TOKEN_KEY = 'socialinbox.token';
  var DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

  function $(id) { return document.getElementById(id); }

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function row(body, cells) {
    var tr = el('tr');
    cells.forEach(function (value) { tr.append(el('td', value)); });
    body.append(tr);
  }

  function fixed(value, digits) {
    return value === null || value === undefined ? '—' : Number(value).toFixed(digits);
  }

  function seconds(value) {
    if (value === null || value === undefined) return '—';
    if (value < 90) return Math.round(value) + ' s';
    if (value < 5400) return Math.round(value / 60) + ' min';
    return (value / 3600).toFixed(1) + ' h';
  }

  async function api(path, method, body) {
    var token = sessionStorage.getItem(TOKEN_KEY);
    var headers = token ? {Authorization: 'Bearer ' + token} : {};
    if (body) headers['Content-Type'] = 'application/json';
    var response = await fetch(new URL(path, BASE), {method: method || 'GET', cache: 'no-store', headers: headers,
      body: body ? JSON.stringify(body) : undefined});
    var data = await response.json().catch(function () { return {}; });
    if (!response.ok) {
      var error = new Error(response.status === 401 ? 'Sign in again in the inbox.' : (data.Message || 'HTTP ' + response.status));
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function showInputs(plan) {
    var body = $('inputs');
    body.replaceChildren();
    var handle = plan.handle_time, measured = handle.measured || {};
    row(body, ['Model', plan.model === 'erlang_c' ? 'Erlang C (live queue)' : 'Workload over the target window',
      'the reply target: under 15 minutes is a live queue']);
    row(body, ['Reply target', seconds(plan.targets.target_seconds) + ' for ' + plan.targets.target_pct + ' %',
      'SLA policy (or the staffing setting)']);
    row(body, ['Handle time', seconds(handle.seconds),
      handle.source === 'measured' ? 'measured: agents\' focus per cycle, ' + measured.cycles + ' cycles, spread ' +
        seconds(measured.stdev_seconds) : 'setting (measured so far: ' + (measured.cycles || 0) + ' cycles, too few)']);
    row(body, ['Concurrency', plan.targets.concurrency, (measured.concurrency ? 'measured: ' + measured.concurrency +
      ' conversations at once (working span ÷ focus); ' : '') + (handle.source === 'measured'
      ? 'handle time is focus time, so this is already in it' : 'setting')]);
    row(body, ['Max occupancy', plan.targets.max_occupancy_pct + ' %', 'setting']);
    row(body, ['Shrinkage', plan.shrinkage.setting_pct + ' %', plan.shrinkage.measured_away_pct === null
      ? 'setting (no presence samples yet)' : 'setting; measured away share of signed-in time: ' +
        plan.shrinkage.measured_away_pct + ' %']);
    var accuracy = plan.accuracy;
    row(body, ['Forecast accuracy', accuracy.interval_wape === null ? 'not enough history'
      : 'WAPE ' + fixed(100 * accuracy.interval_wape, 1) + ' % per interval, ' + fixed(100 * accuracy.day_wape, 1) +
        ' % per day', 'backtest over the last ' + accuracy.days + ' days']);
    row(body, ['Trend', fixed(plan.trend, 2) + '×', plan.holiday_days.length ? 'holidays ahead: ' +
      plan.holiday_days.join(', ') + (plan.holiday_unlearned ? ' (no past holiday to learn from)' : '') : 'no holidays ahead']);
  }

  function showNow(plan) {
    var now = Date.now() / 1000;
    var current = plan.intervals.find(function (i) { return i.kind === 'forecast' && i.start <= now && now < i.start + 1800; });
    var text = current ? 'This interval: ' + fixed(current.arrivals, 1) + ' arrivals expected, ' +
      fixed(current.required_raw, 1) + ' agents required' + (current.online === null || current.online === undefined
        ? '' : ', ' + fixed(current.online, 1) + ' online') + '.' : 'No forecast for this interval.';
    text += ' Last 7 days: ' + fixed(plan.understaffed_agent_hours, 1) + ' agent-hours short of the requirement';
    // what the agents who were online would have achieved, weighted by arrivals
    var weight = 0, share = 0;
    plan.intervals.forEach(function (i) {
      if (i.kind === 'history' && i.predicted_sla_pct !== null && i.predicted_sla_pct !== undefined) {
        weight += i.arrivals;
        share += i.arrivals * i.predicted_sla_pct;
      }
    });
    text += weight ? '; with the agents online, about ' + fixed(share / weight, 0) + ' % answered within target.' : '.';
    $('now').textContent = text;
  }

  // Live: the queue as the inbox sees it now (the same API the workspace uses; the team's views).
  async function showLive(team) {
    var params = team ? '?team=' + encodeURIComponent(team) : '';
    try {
      var counts = (await api('api/counts' + params)).counts || {};
      var list = await api('api/conversations?status=open&sort=due&limit=50' + (team ? '&team=' + encodeURIComponent(team) : ''));
      var now = Date.now(), hour = now + 3600 * 1000, oldest = null, dueSoon = 0;
      (list.items || []).forEach(function (c) {
        var since = c.awaiting_reply_since ? Date.parse(c.awaiting_reply_since) : null;
        if (since && (oldest === null || since < oldest)) oldest = since;
        var due = c.reply_due_at ? Date.parse(c.reply_due_at) : null;
        if (due && due >= now && due < hour) dueSoon += 1;
      });
      $('live').textContent = 'Backlog: ' + (counts.unassigned || 0) + ' unassigned, ' + (counts.team || 0) +
        ' open in the team; ' + (counts.at_risk || 0) + ' at risk, ' + (counts.breached || 0) + ' breached; oldest wait ' +
        (oldest === null ? '—' : seconds((now - oldest) / 1000)) + '; ' + dueSoon + ' reply deadlines in the next hour' +
        (list.next ? ' (of the first 50)' : '') + '.';
    } catch (error) {
      $('live').textContent = 'Live queue: ' + error.message;
    }
  }

  function showWeek(plan) {
    // Hour of week (local time): average required agents of the forecast and agents online of history.
    var cells = {};
    plan.intervals.forEach(function (i) {
      var at = new Date(i.start * 1000), day = (at.getDay() + 6) % 7, key = day + ':' + at.getHours();
      var c = cells[key] = cells[key] || {required: 0, n: 0, online: 0, m: 0};
      if (i.kind === 'forecast') { c.required += i.required_raw; c.n += 1; }
      if (i.kind === 'history' && i.online !== null && i.online !== undefined) { c.online += i.online; c.m += 1; }
    });
    var head = $('week-head'), body = $('week');
    head.replaceChildren();
    body.replaceChildren();
    var top = el('tr');
    top.append(el('th', ''));
    for (var h = 0; h < 24; h++) top.append(el('th', String(h)));
    head.append(top);
    var peak = 0;
    Object.keys(cells).forEach(function (k) { if (cells[k].n) peak = Math.max(peak, cells[k].required / cells[k].n); });
    DAYS.forEach(function (name, day) {
      var tr = el('tr');
      tr.append(el('th', name));
      for (var hour = 0; hour < 24; hour++) {
        var c = cells[day + ':' + hour];
        var required = c && c.n ? c.required / c.n : null, online = c && c.m ? c.online / c.m : null;
        var td = el('td', required === null ? '' : fixed(required, 1));
        if (required !== null) {
          td.title = 'required ' + fixed(required, 2) + (online === null ? '' : ', online ' + fixed(online, 1));
          var level = peak ? Math.min(4, Math.round(4 * required / peak)) : 0;
          if (level) td.classList.add('heat' + level);
          if (online !== null && online + 1e-9 < required) td.classList.add('short');
        }
        tr.append(td);
      }
      body.append(tr);
    });
  }

  function showIntervals(plan) {
    // Today (local time): what came and who was there so far, then the forecast for the rest.
    var body = $('intervals'), today = new Date().toDateString(), gap = 0;
    body.replaceChildren();
    plan.intervals.filter(function (i) { return new Date(i.start * 1000).toDateString() === today; }).forEach(function (i) {
      var online = i.online === null || i.online === undefined ? null : i.online;
      var short = online === null ? null : Math.max(0, i.required_raw - online) / 2;  // agent-hours
      if (short) gap += short;
      row(body, [new Date(i.start * 1000).toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'}),
        (i.kind === 'history' ? '' : '≈ ') + fixed(i.arrivals, 1), fixed(i.required_raw, 2), i.required,
        online === null ? '—' : fixed(online, 1),
        i.predicted_sla_pct === null || i.predicted_sla_pct === undefined ? '—' : i.predicted_sla_pct + ' %',
        short === null ? '—' : fixed(short, 1)]);
    });
    $('intervals-gap').textContent = 'Today so far: ' + fixed(gap, 1) + ' agent-hours short.';
  }

  async function load(event) {
    if (event) event.preventDefault();
    $('note').textContent = '';
    var params = new URLSearchParams({group: $('group').value, days: $('days').value});
    var team = $('team').value.trim();
    if (team) params.set('team', team);
    try {
      var plan = await api('api/staffing/plan?' + params.toString());
      showInputs(plan);
      showNow(plan);
      showWeek(plan);
      showIntervals(plan);
      showLive(team);
    } catch (error) {
      $('note').textContent = error.message;
    }
  }

  function number(id) { return Number($(id).value); }

  async function whatIf(event) {
    event.preventDefault();
    var model = $('w-model').value;
    var body = {arrivals: number('w-arrivals'), interval_seconds: Math.round(number('w-interval') * 60),
      handle_seconds: number('w-handle'), target_seconds: number('w-target'), target_pct: number('w-pct'),
      model: model, concurrency: number('w-concurrency'), shrinkage_pct: number('w-shrinkage'),
      max_occupancy_pct: number('w-occupancy')};
    if (model === 'erlang_a') body.patience_seconds = number('w-patience');
    try {
      var answer = await api('api/staffing/calculate', 'POST', body);
      var parts = [answer.agents + ' agents on the floor (' + fixed(answer.agents_raw, 2) + ' fractional), ' +
        answer.rostered + ' rostered with shrinkage', 'service level ' + answer.service_level_pct + ' %',
        'occupancy ' + answer.occupancy_pct + ' %'];
      if (answer.wait_probability_pct !== null) parts.push(answer.wait_probability_pct + ' % wait, average wait ' +
        seconds(answer.average_wait_seconds));
      if (answer.abandon_pct !== null) parts.push(answer.abandon_pct + ' % give up');
      $('whatif-answer').textContent = parts.join(' · ');
    } catch (error) {
      $('whatif-answer').textContent = error.message;
    }
  }

  async function start() {
    try {
      var me = await api('api/me');
      if (me.role !== 'admin' && me.role !== 'supervisor') {
        $('gate').textContent = 'Staffing is for team leads and admins.';
        return;
      }
      $('who').textContent = me.name + ' · ' + (me.role === 'admin' ? 'Admin' : 'Team lead');
      $('gate').hidden = true;
      $('staffing').hidden = false;
      $('filters').addEventListener('submit', load);
      $('whatif').addEventListener('submit', whatIf);
      await load();
    } catch (error) {
      $('gate').textContent = error.status === 401 || !sessionStorage.getItem(TOKEN_KEY)
        ? 'Sign in in the inbox first, then come back.' : error.message;
    }
  }

  start();
})();
