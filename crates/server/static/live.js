// Live numbers for the overview: listens to the server-sent events named by the element
// with data-live-src and puts each value into the element with the same data-live key,
// as text (never as markup). The page is complete without this script.
(function () {
  'use strict';
  var src = document.querySelector('[data-live-src]');
  if (!src || !window.EventSource) { return; }
  var status = document.getElementById('live-status');
  var stream = new EventSource(src.getAttribute('data-live-src'));
  stream.onopen = function () {
    if (status) { status.textContent = 'live'; }
  };
  stream.onmessage = function (event) {
    var values;
    try { values = JSON.parse(event.data); } catch (e) { return; }
    var els = document.querySelectorAll('[data-live]');
    for (var i = 0; i < els.length; i++) {
      var key = els[i].getAttribute('data-live');
      if (Object.prototype.hasOwnProperty.call(values, key)) {
        els[i].textContent = values[key];
      } else if (els[i].hasAttribute('data-live-zero')) {
        els[i].textContent = '0';
      }
    }
    if (status) { status.textContent = 'live, updated ' + new Date().toLocaleTimeString(); }
  };
  stream.onerror = function () {
    if (status) { status.textContent = 'reconnecting…'; }
  };
}());
