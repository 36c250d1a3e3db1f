/* WhatsApp templates in the composer (its own module; app.js only announces the open thread's
   window with an 'inbox:window' event and reloads the thread on 'inbox:reload'). On a WhatsApp
   thread the "Templates" button opens a picker of the account's approved templates (GET
   .../templates); outside the 24-hour window it opens by itself, a template being the only way
   to answer. The agent fills the placeholders, reads the preview, and sends: the server builds the
   template's components and stores the text the customer reads. Template and platform text go in
   with textContent only (the page's Trusted Types policy allows no HTML). */
(function () {
  'use strict';
  var TOKEN_KEY = 'socialinbox.token';
  var PLACEHOLDER = /\{\{\s*([A-Za-z0-9_]{1,64})\s*\}\}/g;
  var state = {conv: null, items: null, itemsFor: '', attempt: null, busy: false, offered: null};

  function $(id) { return document.getElementById(id); }

  function el(tag, props) {
    var node = document.createElement(tag);
    Object.keys(props || {}).forEach(function (key) {
      if (key === 'text') node.textContent = props[key];
      else node.setAttribute(key, props[key]);
    });
    return node;
  }

  function call(path, method, body) {
    var token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) return Promise.reject(new Error('sign in first'));
    return fetch(path, {method: method || 'GET', cache: 'no-store', credentials: 'omit',
                        headers: {Authorization: 'Bearer ' + token, 'Content-Type': 'application/json'},
                        body: body ? JSON.stringify(body) : undefined})
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (!response.ok) {
            throw new Error((data.Message || 'HTTP ' + response.status) + (data.reason ? ' (' + data.reason + ')' : ''));
          }
          return data;
        });
      });
  }

  function base() { return 'api/conversations/' + encodeURIComponent(state.conv); }

  function note(text) { $('tpl-note').textContent = text || ''; }

  function chosen() {
    var i = $('tpl-pick').value;
    return i === '' || !state.items ? null : state.items[Number(i)];
  }

  function values(part) {
    return Array.prototype.map.call(document.querySelectorAll('#tpl-fields input[data-part=' + part + ']'),
                                    function (input) { return input.value; });
  }

  function filled(text, names, given) {
    return (text || '').replace(PLACEHOLDER, function (all, name) {
      var value = given[names.indexOf(name)];
      return value && value.trim() ? value : all;
    });
  }

  function preview() {
    var t = chosen();
    $('tpl-send').disabled = !t || !t.sendable;
    if (!t) { $('tpl-preview').textContent = ''; return; }
    $('tpl-preview').textContent = t.sendable
      ? [filled(t.header, t.header_params, values('header')), filled(t.body, t.body_params, values('body')), t.footer]
        .filter(Boolean).join('\n\n')
      : 'Cannot be sent from here: ' + t.why_not;
  }

  function fields() {
    var t = chosen(), box = $('tpl-fields');
    box.textContent = '';
    state.attempt = null;
    if (t && t.sendable) {
      ['header', 'body'].forEach(function (part) {
        t[part + '_params'].forEach(function (name) {
          var label = el('label', {text: part + ' {{' + name + '}} '});
          var input = el('input', {'data-part': part, maxlength: '1024', autocomplete: 'off'});
          input.addEventListener('input', preview);
          label.appendChild(input);
          box.appendChild(label);
        });
      });
    }
    preview();
  }

  function load() {
    var conv = state.conv;
    if (state.items && state.itemsFor === conv) return;
    var pick = $('tpl-pick');
    pick.textContent = '';
    pick.appendChild(el('option', {value: '', text: 'Loading templates…'}));
    call(base() + '/templates').then(function (data) {
      if (conv !== state.conv) return;
      state.items = data.items || [];
      state.itemsFor = conv;
      pick.textContent = '';
      pick.appendChild(el('option', {value: '', text: state.items.length ? 'Choose a template' : 'No approved templates'}));
      state.items.forEach(function (t, i) {
        pick.appendChild(el('option', {value: String(i), text: t.name + ' · ' + t.language
          + (t.category ? ' · ' + t.category.toLowerCase() : '') + (t.sendable ? '' : ' (not sendable here)')}));
      });
      fields();
    }, function (e) {
      if (conv !== state.conv) return;
      pick.textContent = '';
      pick.appendChild(el('option', {value: '', text: 'Templates unavailable'}));
      note('Templates could not be loaded: ' + e.message);
    });
  }

  function toggle(open) {
    $('templates').hidden = !open;
    $('tpl-open').setAttribute('aria-expanded', String(open));
    if (open) load();
  }

  function send(event) {
    event.preventDefault();
    var t = chosen();
    if (!t || state.busy) return;
    var variables = {header: values('header'), body: values('body')};
    var key = JSON.stringify([state.conv, t.name, t.language, variables]);
    // one client_id per attempt: pressing Send again after an error sends it once
    if (!state.attempt || state.attempt.key !== key) state.attempt = {key: key, id: 'tpl-' + Date.now() + '-' + Math.random().toString(16).slice(2)};
    state.busy = true;
    note('');
    call(base() + '/messages', 'POST', {client_id: state.attempt.id,
                                         template: {name: t.name, language: t.language, variables: variables}})
      .then(function () {
        state.attempt = null;
        $('tpl-pick').value = '';
        fields();
        toggle(false);
        document.dispatchEvent(new CustomEvent('inbox:reload'));
      }, function (e) { note('Not sent: ' + e.message); })
      .then(function () { state.busy = false; });
  }

  document.addEventListener('inbox:window', function (event) {
    var d = event.detail || {}, whatsapp = d.channel === 'whatsapp';
    $('tpl-open').hidden = !whatsapp;
    if (d.id !== state.conv) {
      state.conv = d.id;
      state.items = null;
      note('');
      if (whatsapp && !$('templates').hidden) load();
    }
    if (!whatsapp) { toggle(false); return; }
    // outside the window a template is the only answer: offered first, once per thread
    if (d.window && d.window.code === 'template_required' && state.offered !== d.id) {
      state.offered = d.id;
      toggle(true);
    }
  });

  document.addEventListener('DOMContentLoaded', function () {
    $('tpl-open').addEventListener('click', function () { toggle($('templates').hidden); });
    $('tpl-pick').addEventListener('change', fields);
    $('tpl-send').addEventListener('click', send);
  });
})();
