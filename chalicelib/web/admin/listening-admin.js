/* Social Inbox admin screens: the Listening tab (topics, the X search budget, priority rules).
   A module of its own beside admin.js, using the helpers admin.js shares on window.SocialInboxAdmin
   (same session, same rules: every string from a person or a platform reaches the page through
   textContent or properties only). */
(function () {
  'use strict';

  var A = window.SocialInboxAdmin;
  if (!A) return;
  var $ = function (id) { return document.getElementById(id); };
  var SOURCE_NAMES = {x_search: 'X search', instagram_hashtag: 'Instagram hashtags'};
  var SENTIMENTS = ['negative', 'neutral', 'positive', 'unscored'];
  var PRIORITIES = ['medium', 'high', 'urgent'];
  var state = {topics: [], sources: [], editing: null, ready: false};

  function sourceName(s) { return SOURCE_NAMES[s] || A.CHANNELS[s] || s; }

  // Terms: comma-separated; a phrase may be written in double quotes (they are dropped).
  function terms(text) {
    return A.list(text).map(function (t) { return t.replace(/^"(.*)"$/, '$1').trim(); }).filter(Boolean);
  }

  function shown(t) { return /\s/.test(t) ? '"' + t + '"' : t; }

  // --- topics -------------------------------------------------------------------------------

  async function loadTopics() {
    var data;
    try { data = await A.api('api/listening/topics'); } catch (p) { return A.failed('topics-note')(p); }
    state.topics = data.items;
    if (!state.sources.length) {
      state.sources = data.sources;
      var box = $('topic-sources');
      data.sources.forEach(function (s) {
        var label = A.el('label', 'check');
        var tick = A.input('checkbox', s, 'Source ' + sourceName(s));
        tick.name = 'topic-source';
        label.append(tick, ' ' + sourceName(s));
        box.append(label);
      });
    }
    var body = $('topics');
    body.replaceChildren();
    data.items.forEach(function (t) {
      var row = A.el('tr');
      row.dataset.topic = t.id;
      A.cell(row, t.name);
      A.cell(row, t.include.map(shown).join(', '), 'preview');
      A.cell(row, t.exclude.length ? t.exclude.map(shown).join(', ') : '—', 'preview');
      A.cell(row, t.languages.length ? t.languages.join(', ') : 'any');
      A.cell(row, t.sources.length ? t.sources.map(sourceName).join(', ') : 'all');
      A.cell(row).append(A.button('Edit', function () { editTopic(t); }), deleteButton(t));
      body.append(row);
    });
    A.settle('topics-note', !data.items.length, 'No topics yet: messages are scored for sentiment but tagged with no topic.');
  }

  function deleteButton(t) {
    return A.confirmedDelete(async function () {
      try {
        await A.api('api/listening/topics/' + encodeURIComponent(t.id), 'DELETE');
        A.note('topics-note', 'Deleted ' + t.name + '.', 'ok');
        if (state.editing && state.editing.id === t.id) editTopic(null);
        loadTopics();
      } catch (problem) { A.failed('topics-note')(problem); }
    });
  }

  function ticks() { return Array.prototype.slice.call(document.querySelectorAll('#topic-sources input')); }

  function editTopic(t) {
    state.editing = t || null;
    $('topic-form-title').textContent = t ? 'Edit ' + t.name : 'New topic';
    $('topic-save').textContent = t ? 'Save' : 'Create';
    $('topic-cancel').hidden = !t;
    $('topic-name').value = t ? t.name : '';
    $('topic-include').value = t ? t.include.map(shown).join(', ') : '';
    $('topic-exclude').value = t ? t.exclude.map(shown).join(', ') : '';
    $('topic-languages').value = t ? t.languages.join(', ') : '';
    ticks().forEach(function (box) { box.checked = !!t && t.sources.indexOf(box.value) >= 0; });
    A.note('topic-form-note', '');
    if (t) $('topic-name').focus();
  }

  async function saveTopic(event) {
    event.preventDefault();
    var editing = state.editing;
    var body = {name: $('topic-name').value.trim(), include: terms($('topic-include').value),
      exclude: terms($('topic-exclude').value), languages: A.list($('topic-languages').value.toLowerCase()),
      sources: ticks().filter(function (b) { return b.checked; }).map(function (b) { return b.value; })};
    try {
      var saved = editing ? await A.api('api/listening/topics/' + encodeURIComponent(editing.id), 'PUT', body)
        : await A.api('api/listening/topics', 'POST', body);
      editTopic(null);
      A.note('topic-form-note', (editing ? 'Saved ' : 'Created ') + saved.name
        + '. New messages and found posts are tagged with it within a minute.', 'ok');
      loadTopics();
    } catch (p) { A.failed('topic-form-note')(p); }
  }

  // --- the X search budget ------------------------------------------------------------------

  function number(n) { return Number(n).toLocaleString('en-US'); }

  function showBudget(b) {
    var spent = '$' + (b.used * b.price_per_post_usd).toFixed(2);
    var node = $('budget-state');
    node.textContent = '';
    node.className = 'note';
    if (!b.monthly_posts) {
      node.textContent = 'X search is off (a budget of 0 posts). ' + number(b.used) + ' posts read in ' + b.month + '.';
    } else if (b.exhausted) {
      node.className = 'note error';
      node.textContent = 'Stopped: budget reached. ' + number(b.used) + ' of ' + number(b.monthly_posts)
        + ' posts read in ' + b.month + ' (' + spent + '); X search polls nothing until next month or a higher budget.';
    } else {
      node.textContent = number(b.used) + ' of ' + number(b.monthly_posts) + ' posts read in ' + b.month
        + ' (' + spent + ' at $' + b.price_per_post_usd + ' a post); ' + number(b.remaining) + ' left.';
    }
    node.dataset.state = !b.monthly_posts ? 'off' : b.exhausted ? 'stopped' : 'running';
    $('budget-posts').value = b.monthly_posts;
  }

  async function loadBudget() {
    try { showBudget(await A.api('api/listening/x-budget')); } catch (p) { A.failed('budget-state')(p); }
  }

  async function saveBudget(event) {
    event.preventDefault();
    var value = Number($('budget-posts').value);
    try {
      showBudget(await A.api('api/listening/x-budget', 'PUT', {monthly_posts: value}));
      A.note('budget-note', 'Saved: at most ' + number(value) + ' posts a month.', 'ok');
    } catch (p) { A.failed('budget-note')(p); }
  }

  // --- priority rules -----------------------------------------------------------------------

  function select(options, value, label, anyText) {
    var node = A.el('select');
    node.setAttribute('aria-label', label);
    (anyText ? [''] : []).concat(options).forEach(function (o) {
      var option = A.el('option', null, o || anyText);
      option.value = o;
      node.append(option);
    });
    node.value = value || '';
    return node;
  }

  function ruleRow(rule) {
    var row = A.el('tr');
    var n = $('rules').children.length + 1;
    A.cell(row).append(select(SENTIMENTS, rule.sentiment, 'Rule ' + n + ' sentiment', 'any'));
    [['min_followers', 'followers'], ['min_likes', 'likes']].forEach(function (f) {
      var box = A.input('number', rule[f[0]] === undefined ? '' : rule[f[0]], 'Rule ' + n + ' minimum ' + f[1]);
      box.min = '0';
      box.step = '1';
      box.placeholder = 'any';
      box.dataset.field = f[0];
      box.className = 'reach';
      A.cell(row).append(box);
    });
    A.cell(row).append(select(PRIORITIES, rule.priority || 'high', 'Rule ' + n + ' priority'));
    A.cell(row).append(A.button('Remove', function () { row.remove(); A.note('rules-note', 'Removed; save to keep it.'); }));
    $('rules').append(row);
    return row;
  }

  function rulesBody() {
    return {rules: Array.prototype.map.call($('rules').children, function (row) {
      var selects = row.querySelectorAll('select'), rule = {};
      if (selects[0].value) rule.sentiment = selects[0].value;
      row.querySelectorAll('input').forEach(function (box) {
        if (box.value !== '') rule[box.dataset.field] = Number(box.value);
      });
      rule.priority = selects[1].value;
      return rule;
    })};
  }

  async function loadRules() {
    var data;
    try { data = await A.api('api/listening/priority-rules'); } catch (p) { return A.failed('rules-note')(p); }
    $('rules').replaceChildren();
    data.rules.forEach(ruleRow);
    A.settle('rules-note', !data.rules.length, 'No rules: nothing jumps the queue on sentiment or reach.');
  }

  async function saveRules() {
    try {
      var saved = await A.api('api/listening/priority-rules', 'PUT', rulesBody());
      A.note('rules-note', 'Saved ' + saved.rules.length + (saved.rules.length === 1 ? ' rule.' : ' rules.'), 'ok');
      loadRules();
    } catch (p) { A.failed('rules-note')(p); }
  }

  // --- wiring -------------------------------------------------------------------------------

  function load() {
    if (!state.ready) {
      state.ready = true;
      $('topic-form').addEventListener('submit', saveTopic);
      $('topic-cancel').addEventListener('click', function () { editTopic(null); });
      $('budget-form').addEventListener('submit', saveBudget);
      $('rule-add').addEventListener('click', function () {
        ruleRow({sentiment: 'negative'}).querySelector('select').focus();
      });
      $('rules-save').addEventListener('click', saveRules);
    }
    loadTopics();
    loadBudget();
    loadRules();
  }

  A.addTab('listening', load);
})();
