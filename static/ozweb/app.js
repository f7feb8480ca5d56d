// ozweb client glue: resume the thread stream, @mention autocomplete, local times, and what
// pages ask for in data- attributes. Nothing runs inline (Content-Security-Policy).
(function () {
  "use strict";

  function newestSeq() {
    var seq = 0;
    document.querySelectorAll("#feed-messages [data-seq]").forEach(function (el) {
      var n = parseInt(el.getAttribute("data-seq"), 10);
      if (n > seq) seq = n;
    });
    return seq;
  }

  function setLive(text, ok) {
    var el = document.getElementById("live-state");
    if (!el) return;
    el.textContent = text;
    el.classList.toggle("ok", !!ok);
  }

  // On every (re)connect the feed socket is told the newest seq this page holds, so the server
  // sends exactly the messages missed while disconnected, in order.
  document.addEventListener("htmx:wsOpen", function (evt) {
    if (evt.target.id !== "feed") return;
    evt.detail.socketWrapper.sendImmediately(JSON.stringify({ type: "resume", since: newestSeq() }));
    setLive("live", true);
  });
  document.addEventListener("htmx:wsClose", function (evt) {
    if (evt.target.id === "feed") setLive("reconnecting…", false);
  });

  function localiseTimes(root) {
    (root || document).querySelectorAll("time[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) el.textContent = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    });
  }

  function markCurrentThread() {
    var thread = document.querySelector(".thread[data-thread]");
    if (!thread) return;
    var row = document.getElementById("thread-row-" + thread.getAttribute("data-thread"));
    if (row) row.classList.add("current");
  }

  function scrollFeedIfNearBottom(feed, wasNear) {
    if (wasNear) feed.scrollTop = feed.scrollHeight;
  }

  var feedWasNearBottom = true;
  document.addEventListener("htmx:wsBeforeMessage", function () {
    var feed = document.getElementById("feed");
    if (feed) feedWasNearBottom = feed.scrollHeight - feed.scrollTop - feed.clientHeight < 120;
  });
  document.addEventListener("htmx:wsAfterMessage", function () {
    var feed = document.getElementById("feed");
    var empty = document.getElementById("feed-empty");
    if (empty && newestSeq() > 0) empty.remove();
    localiseTimes(document);
    markCurrentThread();
    if (feed) scrollFeedIfNearBottom(feed, feedWasNearBottom);
  });
  document.addEventListener("htmx:afterSwap", function (evt) {
    localiseTimes(evt.target);
    var body = document.getElementById("composer-body");
    if (evt.target.id === "composer" && body && !document.getElementById("composer-errors")) body.focus();
  });

  // @mention autocomplete over the team's agents and members.
  function setupMentions() {
    var source = document.getElementById("mention-candidates");
    if (!source) return;
    var candidates = JSON.parse(source.textContent);

    document.addEventListener("input", function (evt) {
      if (!evt.target.matches("textarea[data-mentions]")) return;
      suggest(evt.target);
    });
    document.addEventListener("keydown", function (evt) {
      var box = document.getElementById("mention-suggestions");
      if (!evt.target.matches("textarea[data-mentions]")) return;
      if (box && !box.hidden) {
        var items = Array.prototype.slice.call(box.querySelectorAll("li"));
        var active = box.querySelector("li.active");
        var index = items.indexOf(active);
        if (evt.key === "ArrowDown" || evt.key === "ArrowUp") {
          evt.preventDefault();
          if (active) active.classList.remove("active");
          index = (index + (evt.key === "ArrowDown" ? 1 : -1) + items.length) % items.length;
          items[index].classList.add("active");
          return;
        }
        if ((evt.key === "Enter" || evt.key === "Tab") && active) {
          evt.preventDefault();
          complete(evt.target, active.getAttribute("data-handle"));
          return;
        }
        if (evt.key === "Escape") { box.hidden = true; return; }
      }
      if (evt.key === "Enter" && !evt.shiftKey) {
        evt.preventDefault();
        var form = evt.target.form;
        if (form && evt.target.value.trim()) htmx.trigger(form, "submit");
      }
    });
    document.addEventListener("click", function (evt) {
      var item = evt.target.closest("#mention-suggestions li");
      if (item) complete(document.getElementById("composer-body"), item.getAttribute("data-handle"));
    });

    function currentWord(textarea) {
      var before = textarea.value.slice(0, textarea.selectionStart);
      var match = /(^|[^\w@.])@([\w.-]*)$/.exec(before);
      return match ? match[2] : null;
    }

    function suggest(textarea) {
      var box = document.getElementById("mention-suggestions");
      var word = currentWord(textarea);
      if (word === null) { box.hidden = true; return; }
      var lower = word.toLowerCase();
      var hits = candidates.filter(function (c) {
        return c.handle.toLowerCase().indexOf(lower) === 0 || c.name.toLowerCase().indexOf(lower) === 0;
      }).slice(0, 8);
      box.replaceChildren();
      hits.forEach(function (c, i) {
        var li = document.createElement("li");
        li.setAttribute("data-handle", c.handle);
        li.setAttribute("role", "option");
        li.textContent = "@" + c.handle + " — " + c.name + (c.kind === "agent" ? " (agent)" : "");
        if (i === 0) li.classList.add("active");
        box.appendChild(li);
      });
      box.hidden = hits.length === 0;
    }

    function complete(textarea, handle) {
      var pos = textarea.selectionStart;
      var before = textarea.value.slice(0, pos).replace(/@[\w.-]*$/, "@" + handle + " ");
      textarea.value = before + textarea.value.slice(pos);
      textarea.selectionStart = textarea.selectionEnd = before.length;
      document.getElementById("mention-suggestions").hidden = true;
      textarea.focus();
    }
  }

  // The Content-Security-Policy runs no inline handlers: a <select data-autosubmit> (the
  // artifact list's thread filter) submits its form when changed.
  document.addEventListener("change", function (evt) {
    if (evt.target.matches("select[data-autosubmit]") && evt.target.form) evt.target.form.requestSubmit();
  });

  document.addEventListener("DOMContentLoaded", function () {
    localiseTimes(document);
    markCurrentThread();
    setupMentions();
    var feed = document.getElementById("feed");
    if (feed) feed.scrollTop = feed.scrollHeight;
  });
})();
