// The inbox, live: the sidebar's unread count over /ws/notifications/, and a browser
// notification (the Notification API) for each new one while this tab is in the background.
// Nothing runs inline (Content-Security-Policy: default-src 'self').
(function () {
  "use strict";

  var retryMs = 1000;
  var MAX_RETRY_MS = 30000;
  var baseTitle = document.title;

  function setUnread(count) {
    var badge = document.getElementById("inbox-unread");
    if (badge) {
      badge.textContent = String(count);
      badge.setAttribute("data-unread", String(count));
      badge.hidden = count === 0;
    }
    document.title = count > 0 ? "(" + count + ") " + baseTitle : baseTitle;
  }

  function showBrowserNotification(item) {
    if (!document.hidden || !("Notification" in window)) return;
    if (Notification.permission !== "granted") return;
    var note = new Notification(item.title, { tag: "ozweb-notification-" + item.id });
    note.onclick = function () {
      window.focus();
      if (item.url && item.url.charAt(0) === "/" && item.url.charAt(1) !== "/") {
        window.location.href = item.url;
      }
      note.close();
    };
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/ws/notifications/");
    socket.onopen = function () { retryMs = 1000; };
    socket.onmessage = function (evt) {
      var event;
      try { event = JSON.parse(evt.data); } catch (e) { return; }
      if (typeof event.unread === "number") setUnread(event.unread);
      if (event.type === "notifications.new" && event.notification) {
        showBrowserNotification(event.notification);
      }
    };
    socket.onclose = function (evt) {
      if (evt.code === 4401) return; // signed out: nothing to listen to
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
    };
  }

  function offerPermission() {
    var button = document.getElementById("browser-notifications");
    if (!button || !("Notification" in window) || Notification.permission !== "default") return;
    button.hidden = false;
    button.addEventListener("click", function () {
      Notification.requestPermission().then(function () { button.hidden = true; });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!document.getElementById("inbox-unread")) return;
    offerPermission();
    connect();
  });
})();
