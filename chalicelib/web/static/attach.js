/* Files out from the composer (its own module; app.js only announces the open thread with
   'inbox:window' and reloads it on 'inbox:reload'). "Attach file" uploads a JPEG, PNG or PDF to
   POST .../attachments (the server checks the type by content, keeps our copy and hands it to the
   platform), then "Send file" sends it with the draft as its caption where the platform takes one
   (a Messenger or Instagram file goes alone). RULES are the server's
   (chalicelib/outbound/attachments.py composer_rules, compared by a test): a conversation that
   cannot carry a file (a comment thread, a channel without file sends) or a file of a type the
   platform does not take (a PDF on X, by its first bytes) is refused here, before any upload,
   with the reason. Names go in with textContent only. */
(function () {
  'use strict';
  var TOKEN_KEY = 'socialinbox.token';
  var RULES = {"whatsapp": {"kinds": ["dm"], "types": ["application/pdf", "image/jpeg", "image/png"], "max_bytes": 4194304, "caption": true}, "messenger": {"kinds": ["dm"], "types": ["application/pdf", "image/jpeg", "image/png"], "max_bytes": 4194304, "caption": false}, "instagram": {"kinds": ["dm"], "types": ["application/pdf", "image/jpeg", "image/png"], "max_bytes": 4194304, "caption": false}, "telegram": {"kinds": ["dm", "group"], "types": ["application/pdf", "image/jpeg", "image/png"], "max_bytes": 4194304, "caption": true}, "x": {"kinds": ["dm", "mention"], "types": ["image/jpeg", "image/png"], "max_bytes": 4194304, "caption": true}};  // RULES
  var NAMES = {whatsapp: 'WhatsApp', messenger: 'Messenger', instagram: 'Instagram', telegram: 'Telegram', x: 'X',
               facebook: 'Facebook', linkedin: 'LinkedIn'};
  var state = {conv: null, channel: '', kind: 'dm', file: null, busy: false, attempt: null};

  function brand(channel) { return NAMES[channel] || channel || 'this channel'; }

  // why this conversation cannot carry a file (null when it can): the server's refusal, said first
  function refusal() {
    var rule = RULES[state.channel];
    if (!rule) return brand(state.channel) + ' replies cannot carry files (files go out on: ' + Object.keys(RULES).map(brand).join(', ') + ').';
    if (rule.kinds.indexOf(state.kind) < 0) return brand(state.channel) + ' ' + state.kind + ' replies cannot carry a file (only ' + rule.kinds.join(' and ') + ' replies can).';
    return null;
  }

  // the type by the first bytes, as the server checks it
  function sniff(bytes) {
    var b = new Uint8Array(bytes.slice(0, 8));
    if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg';
    if (b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return 'image/png';
    if (b[0] === 0x25 && b[1] === 0x50 && b[2] === 0x44 && b[3] === 0x46 && b[4] === 0x2d) return 'application/pdf';
    return null;
  }

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
    var rule = RULES[state.channel], why = refusal();
    if (why) { show('Not attached: ' + why); return; }
    if (file.size > rule.max_bytes) { show('Not attached: ' + file.name + ' is larger than ' + Math.floor(rule.max_bytes / 1048576) + ' MB.'); return; }
    state.busy = true;
    var conv = state.conv;
    file.arrayBuffer().then(function (bytes) {
      var type = sniff(bytes);
      if (!type) throw new Error('only JPEG and PNG images and PDF documents can be sent');
      if (rule.types.indexOf(type) < 0) throw new Error(brand(state.channel) + ' takes only ' + (rule.types.indexOf('application/pdf') < 0 ? 'images' : 'images and PDF documents') + '; ' + file.name + ' is ' + type);
      show('Uploading ' + file.name + '…');
      return call(base() + '/attachments?filename=' + encodeURIComponent(file.name), bytes, 'application/octet-stream');
    }).then(function (found) {
      if (conv === state.conv) { state.file = found; show(''); }
    }, function (e) { show('Not attached: ' + e.message); })
      .then(function () { state.busy = false; });
  }

  function send() {
    if (!state.file || state.busy) return;
    var rule = RULES[state.channel] || {};
    var draft = $('draft'), caption = rule.caption ? draft.value.trim() : '';
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
    state.kind = d.kind || 'dm';
    var why = refusal(), rule = RULES[state.channel];
    // not disabled: pressing it where files cannot go says why instead of opening the file picker
    $('attach-open').setAttribute('aria-disabled', why ? 'true' : 'false');
    $('attach-open').title = why || ('Attach ' + (rule.types.indexOf('application/pdf') < 0 ? 'a JPEG or PNG image' : 'a JPEG, PNG or PDF')
      + ' (up to ' + Math.floor(rule.max_bytes / 1048576) + ' MB)');
  });

  document.addEventListener('DOMContentLoaded', function () {
    $('attach-open').addEventListener('click', function () {
      var why = refusal();
      if (why) show('Not attached: ' + why); else $('attach-input').click();
    });
    $('attach-input').addEventListener('change', pick);
    $('attach-send').addEventListener('click', send);
    $('attach-drop').addEventListener('click', function () { state.file = null; show(''); });
  });
})();
