/* The assign picker: type to filter the agents this user may assign to (their teams' agents;
   every team's for admins, as GET /api/teams answers), each with presence, load against capacity
   and teams; arrows and Enter, or the mouse. Whom the API refuses is said in the picker (the
   API's own message), which then stays open. Names are agents' own text: textContent only.
   app.js creates one picker and opens it for the open conversation and for the bulk selection. */
(function () {
  'use strict';

  // the team lists are read again after this long (presence and load move)
  var FRESH_MS = 20000;
  // teams read per opening (an admin of many teams filters by name)
  var MAX_TEAMS = 20;
  var SHOWN = 50;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // options: api(path) -> Promise of JSON; me() -> the signed-in agent ({id, name})
  function create(options) {
    var box = el('div', 'assign-picker');
    box.id = 'assign-picker';
    box.hidden = true;
    box.setAttribute('role', 'dialog');
    var title = el('p', 'assign-title');
    title.id = 'assign-title';
    box.setAttribute('aria-labelledby', title.id);
    var input = el('input');
    input.id = 'assign-q';
    input.type = 'text';
    input.autocomplete = 'off';
    input.placeholder = 'Type a name';
    input.setAttribute('role', 'combobox');
    input.setAttribute('aria-autocomplete', 'list');
    input.setAttribute('aria-expanded', 'true');
    input.setAttribute('aria-controls', 'assign-list');
    input.setAttribute('aria-label', 'Agent name');
    var list = el('ul', 'assign-list');
    list.id = 'assign-list';
    list.setAttribute('role', 'listbox');
    list.setAttribute('aria-label', 'Agents');
    var note = el('p', 'assign-note');
    note.id = 'assign-note';
    note.setAttribute('role', 'alert');
    box.append(title, input, list, note);
    document.body.append(box);

    var agents = null, readAt = 0, loading = null, shown = [], active = 0, current = null;

    // every agent of the teams this user may assign to: {agent_id, name, presence, online, load,
    // capacity, teams}, active agents only, the user first, then online ones, then by name
    function load(force) {
      if (agents && !force && Date.now() - readAt < FRESH_MS) return Promise.resolve(agents);
      if (!loading) {
        loading = options.api('api/teams').then(function (data) {
          var teams = (Array.isArray(data.items) ? data.items : []).slice(0, MAX_TEAMS);
          return Promise.all(teams.map(function (team) {
            return options.api('api/teams/' + encodeURIComponent(team) + '/agents')
              .then(function (answer) { return {team: team, agents: answer.agents || []}; })
              .catch(function () { return {team: team, agents: []}; });
          }));
        }).then(function (answers) {
          var byId = {};
          answers.forEach(function (answer) {
            answer.agents.forEach(function (a) {
              if (a.active === false || typeof a.agent_id !== 'string') return;
              var seen = byId[a.agent_id] || (byId[a.agent_id] = Object.assign({}, a, {teams: []}));
              seen.teams.push(answer.team);
            });
          });
          var me = options.me() || {};
          // you may always take a conversation you can see, in a team or not
          if (me.id && !byId[me.id]) byId[me.id] = {agent_id: me.id, name: me.name, online: true, teams: []};
          me = me.id;
          agents = Object.keys(byId).map(k => byId[k]).sort(function (a, b) {
            return (b.agent_id === me) - (a.agent_id === me) || Boolean(b.online) - Boolean(a.online)
              || String(a.name || '').localeCompare(String(b.name || ''));
          });
          readAt = Date.now();
          return agents;
        }).finally(function () { loading = null; });
      }
      return loading;
    }

    function label(a) {
      var me = options.me() || {};
      return a.agent_id === me.id ? 'You (' + (a.name || me.name || '') + ')' : String(a.name || 'an agent');
    }

    function presenceOf(a) {
      return a.online ? 'online' : a.presence === 'away' ? 'away' : 'offline';
    }

    function render() {
      var words = input.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
      shown = (agents || []).filter(function (a) {
        var text = (label(a) + ' ' + a.teams.join(' ')).toLowerCase();
        return words.every(w => text.indexOf(w) >= 0);
      }).slice(0, SHOWN);
      active = Math.min(active, Math.max(0, shown.length - 1));
      list.replaceChildren(...shown.map(function (a, i) {
        var item = el('li', 'assign-option');
        item.id = 'assign-option-' + i;
        item.dataset.index = String(i);
        item.setAttribute('role', 'option');
        item.setAttribute('aria-selected', String(i === active));
        var presence = presenceOf(a);
        var dot = el('span', 'presence presence-' + presence);
        dot.title = presence;
        var full = typeof a.capacity === 'number' && typeof a.load === 'number' && a.load >= a.capacity;
        // (yourself outside every team: no load or capacity to show)
        var load = el('span', 'assign-load' + (full ? ' full' : ''),
          typeof a.load === 'number' ? a.load + '/' + a.capacity : '');
        load.title = 'Open conversations / capacity';
        item.append(dot, el('span', 'assign-name', label(a)), el('span', 'assign-presence', presence), load,
          el('span', 'assign-teams', a.teams.join(', ')));
        return item;
      }));
      if (shown.length) input.setAttribute('aria-activedescendant', 'assign-option-' + active);
      else input.removeAttribute('aria-activedescendant');
      if (!shown.length && agents) {
        say(agents.length ? 'Nobody in your teams matches “' + input.value.trim() + '”.'
          : 'There is nobody in your teams to assign to.');
      } else if (!note.classList.contains('error')) {
        say('');
      }
    }

    function say(text, bad) {
      note.textContent = text || '';
      note.classList.toggle('error', Boolean(bad));
    }

    function move(step) {
      if (!shown.length) return;
      active = (active + step + shown.length) % shown.length;
      render();
      var option = document.getElementById('assign-option-' + active);
      if (option) option.scrollIntoView({block: 'nearest'});
    }

    // the caller's onChoose(agent) answers a refusal's message (the picker stays open) or nothing
    async function choose(index) {
      var a = shown[index];
      if (!a || !current) return;
      say('Assigning to ' + label(a) + '…');
      var opened = current;
      var refused = await opened.onChoose(a);
      if (opened !== current) return;
      if (refused) { say(refused, true); input.focus(); return; }
      close(true);
    }

    function open(anchor, what) {
      what.anchor = anchor;
      current = what;
      title.textContent = what.title;
      input.value = '';
      active = 0;
      say('Loading the team…');
      box.hidden = false;
      place(anchor);
      input.focus();
      render();
      load(false).then(function () { if (current === what) { say(''); render(); } }, function (e) {
        if (current === what) say('Could not read the team: ' + (e && e.message ? e.message : 'try again.'), true);
      });
    }

    function place(anchor) {
      var rect = anchor && anchor.getBoundingClientRect ? anchor.getBoundingClientRect() : null;
      var width = Math.min(360, window.innerWidth - 16);
      var left = rect ? Math.min(Math.max(8, rect.left), window.innerWidth - width - 8) : 8;
      var top = rect && rect.bottom + 320 < window.innerHeight ? rect.bottom + 4 : 8;
      box.style.left = left + 'px';
      box.style.top = top + 'px';
      box.style.width = width + 'px';
    }

    function close(done) {
      if (box.hidden) return;
      var what = current;
      box.hidden = true;
      current = null;
      say('');
      if (what && what.onClose) what.onClose(Boolean(done));
    }

    input.addEventListener('input', function () { active = 0; say(''); render(); });
    input.addEventListener('keydown', function (event) {
      if (event.key === 'ArrowDown') { event.preventDefault(); move(1); }
      else if (event.key === 'ArrowUp') { event.preventDefault(); move(-1); }
      else if (event.key === 'Enter') { event.preventDefault(); choose(active); }
      else if (event.key === 'Escape') { event.preventDefault(); event.stopPropagation(); close(false); }
    });
    // the mouse: a press keeps the focus in the box, a click chooses
    list.addEventListener('mousedown', function (event) { event.preventDefault(); });
    list.addEventListener('click', function (event) {
      var option = event.target.closest('[data-index]');
      if (option) choose(Number(option.dataset.index));
    });
    document.addEventListener('mousedown', function (event) {
      if (!box.hidden && !box.contains(event.target) && !(current && current.anchor && current.anchor.contains(event.target))) {
        close(false);
      }
    });

    return {open: open, close: close, load: load, isOpen: function () { return !box.hidden; }};
  }

  window.SocialInboxPicker = {create: create};
})();
