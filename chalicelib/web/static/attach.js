/* Files out from the composer (its own module; app.js only announces the open thread with
   'inbox:window' and reloads it on 'inbox:reload'). "Attach file" uploads a JPEG, PNG or PDF to
   POST .../attachments (the server checks the type by content and hands it to the platform), then
   "Send file" sends it with the draft as its caption (WhatsApp; a Messenger file goes alone). On channels that cannot take a file the
   button says so before any upload. Names go in with textContent only. */
(function () {
  'use strict';
  var TOKEN_KEY = 'socialinbox.token';
  var CHANNELS = ['whatsapp', 'messenger'];  // chalicelib/outbound/attachments.py SUPPORTED
  var CAPTIONED = ['whatsapp'];  // a Messenger file goes without text (the draft stays)
  var MAX_BYTES = 4 * 1024 * 1024;
  var state = {conv: null, channel: '', file: null, busy: false, attempt: null};

  function $(id) { return document.getElementById(id); }

  function call(path, body, type) {
    var token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) return Promise.reject(new Error('sign in first'));
    return fetch(path, {method: 'POST', cache: 'no-store', credentials: 'omit', body: body,
                        headers: {Authorization: 'Bearer ' + token, 'Content-Type': type}})
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (!response.ok) throw new Error(data.Message || 'HTTP ' + response.status);
          return data;
        });
      });
  }

  function base() { return 'api/conversations/' + encodeURIComponent(state.conv); }

  function show(text) {
    $('attach-chip').hidden = !state.file;
    $('attach-name').textContent = state.file ? state.file.filename + ' (' + Math.ceil(state.file.size / 1024) + ' KB)' : '';
    $('attach-note').textContent = text || '';
  }

  function pick() {
    var file = $('attach-input').files[0];
    $('attach-input').value = '';
    if (!file || state.busy) return;
    if (file.size > MAX_BYTES) { show('Not attached: ' + file.name + ' is larger than 4 MB.'); return; }
    state.busy = true;
    show('Uploading ' + file.name + '…');
    var conv = state.conv;
    file.arrayBuffer().then(function (bytes) {
      return call(base() + '/attachments?filename=' + encodeURIComponent(file.name), bytes, 'application/octet-stream');
    }).then(function (found) {
      if (conv === state.conv) { state.file = found; show(''); }
    }, function (e) { show('Not attached: ' + e.message); })
      .then(function () { state.busy = false; });
  }

  function send() {
    if (!state.file || state.busy) return;
    var draft = $('draft'), caption = CAPTIONED.indexOf(state.channel) >= 0 ? draft.value.trim() : '';
    state.busy = true;
    // one client_id per file and caption: pressing Send again after an error sends it once
    var key = state.file.token + '|' + caption;
    if (!state.attempt || state.attempt.key !== key) state.attempt = {key: key, id: 'file-' + Date.now() + '-' + Math.random().toString(16).slice(2)};
    var body = {client_id: state.attempt.id, attachment: state.file.token};
    if (caption) body.text = caption;
    call(base() + '/messages', JSON.stringify(body), 'application/json').then(function () {
      state.file = null;
      if (caption && draft.value.trim() === caption) draft.value = '';
      show('');
      document.dispatchEvent(new CustomEvent('inbox:reload'));
    }, function (e) { show('Not sent: ' + e.message); })
      .then(function () { state.busy = false; });
  }

  document.addEventListener('inbox:window', function (event) {
    var d = event.detail || {};
    if (d.id !== state.conv) { state.conv = d.id; state.file = null; show(''); }
    state.channel = d.channel || '';
    var can = CHANNELS.indexOf(state.channel) >= 0;
    $('attach-open').disabled = !can;
    $('attach-open').title = can ? 'Attach a JPEG, PNG or PDF (up to 4 MB)'
      : 'Files cannot be sent on ' + (state.channel || 'this channel') + ' from the inbox';
  });

  document.addEventListener('DOMContentLoaded', function () {
    $('attach-open').addEventListener('click', function () { $('attach-input').click(); });
    $('attach-input').addEventListener('change', pick);
    $('attach-send').addEventListener('click', send);
    $('attach-drop').addEventListener('click', function () { state.file = null; show(''); });
  });
})();
