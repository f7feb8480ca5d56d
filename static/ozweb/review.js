// The review pages (templates/repos/): a comment box on a line (click its number; shift-click
// for a range), and comments put under their line when they arrive, from this viewer's post or
// from anyone's over the websocket. Nothing runs inline (Content-Security-Policy).
(function () {
  "use strict";

  var anchor = null; // the last clicked line: {table, side, line}

  function review() { return document.getElementById("review"); }

  function cellSide(td) { return td.classList.contains("o") ? "old" : "new"; }

  function findRow(table, side, line) {
    var cls = side === "old" ? "o" : "n";
    var cells = table.querySelectorAll("td." + cls);
    for (var i = 0; i < cells.length; i++) {
      if (cells[i].textContent === String(line)) return cells[i].parentElement;
    }
    return null;
  }

  function columns(table) {
    var row = table.querySelector("tr:not(.t)");
    return row ? row.children.length : 3;
  }

  function rowAfter(row) {
    // After the line's row and the comment rows already under it.
    var next = row;
    while (next.nextElementSibling && next.nextElementSibling.classList.contains("t")) {
      next = next.nextElementSibling;
    }
    return next;
  }

  function insertUnder(row, node) {
    var table = row.closest("table");
    var tr = document.createElement("tr");
    tr.className = "t";
    var td = document.createElement("td");
    td.colSpan = columns(table);
    td.appendChild(node);
    tr.appendChild(td);
    rowAfter(row).after(tr);
    return tr;
  }

  function closeForm() {
    var open = document.querySelector("tr.t.rc-form-row");
    if (open) open.remove();
    document.querySelectorAll("tr.selected").forEach(function (tr) { tr.classList.remove("selected"); });
  }

  function openForm(table, side, first, last, replyTo) {
    var template = document.getElementById("rc-form-template");
    if (!template) return; // a viewer, or the change is not open
    closeForm();
    var form = template.content.firstElementChild.cloneNode(true);
    var root = review();
    form.elements.path.value = table.getAttribute("data-path");
    form.elements.side.value = side;
    form.elements.line.value = first;
    form.elements.end_line.value = last !== first ? last : "";
    form.elements.version.value = root.getAttribute("data-version");
    form.elements.reply_to.value = replyTo || "";
    form.querySelector(".rc-where").textContent = replyTo
      ? "Reply"
      : "Line " + first + (last !== first ? "–" + last : "") + (side === "old" ? " (old side)" : "");
    var row = findRow(table, side, last);
    if (!row) return;
    for (var n = first; n <= last; n++) {
      var r = findRow(table, side, n);
      if (r) r.classList.add("selected");
    }
    var tr = insertUnder(row, form);
    tr.classList.add("rc-form-row");
    htmx.process(tr);
    form.elements.body.focus();
  }

  document.addEventListener("click", function (evt) {
    var td = evt.target.closest("table.diff td.o, table.diff td.n");
    if (td && td.textContent.trim() && review() && !review().classList.contains("read-only")) {
      var table = td.closest("table");
      var side = cellSide(td);
      var line = parseInt(td.textContent, 10);
      if (evt.shiftKey && anchor && anchor.table === table && anchor.side === side) {
        openForm(table, side, Math.min(anchor.line, line), Math.max(anchor.line, line));
      } else {
        anchor = { table: table, side: side, line: line };
        openForm(table, side, line, line);
      }
      evt.preventDefault();
      return;
    }
    if (evt.target.matches(".rc-cancel")) { closeForm(); return; }
    var reply = evt.target.closest("button.rc-reply");
    if (reply) {
      var thread = reply.closest(".rc-thread");
      var t = thread.closest("table");
      openForm(t, thread.getAttribute("data-side"), parseInt(thread.getAttribute("data-line"), 10),
        parseInt(thread.getAttribute("data-line"), 10), reply.getAttribute("data-reply-to"));
    }
  });

  // Put what arrived in #rc-incoming where it belongs: a thread under its line, a reply in its
  // thread; a comment already on the page is replaced (its state changed).
  function place() {
    var incoming = document.getElementById("rc-incoming");
    if (!incoming) return;
    Array.prototype.slice.call(incoming.children).forEach(function (node) {
      var existing = document.getElementById(node.id);
      if (existing && existing !== node) {
        existing.replaceWith(node);
        return;
      }
      var replyTo = node.getAttribute("data-reply-to");
      if (replyTo) {
        var replies = document.getElementById("rc-" + replyTo + "-replies");
        if (replies) { replies.appendChild(node); } else { node.remove(); }
        return;
      }
      if (!node.classList.contains("rc-thread")) { node.remove(); return; }
      var version = review().getAttribute("data-version");
      var table = null;
      document.querySelectorAll("table.diff").forEach(function (t) {
        if (t.getAttribute("data-path") === node.getAttribute("data-path")) table = t;
      });
      var row = table && findRow(table, node.getAttribute("data-side"), node.getAttribute("data-line"));
      if (!row || node.getAttribute("data-version") !== version) { node.remove(); return; }
      insertUnder(row, node);
    });
    htmx.process(review());
  }

  document.addEventListener("htmx:afterSwap", function (evt) {
    if (evt.target.id === "rc-incoming") { closeForm(); place(); }
  });
  document.addEventListener("htmx:wsAfterMessage", place);
  document.addEventListener("htmx:wsOpen", function (evt) {
    if (evt.target.id !== "review") return;
    var el = document.getElementById("live-state");
    if (el) { el.textContent = "live"; el.classList.add("ok"); }
  });
  document.addEventListener("htmx:wsClose", function (evt) {
    if (evt.target.id !== "review") return;
    var el = document.getElementById("live-state");
    if (el) { el.textContent = "reconnecting…"; el.classList.remove("ok"); }
  });
  // Files the server showed plain (a big change seen for the first time: it lexes only so
  // much per page) get their colours when they come near the screen. Only the code cells
  // change: rows, comment threads and an open comment form stay as they are.
  function colour(table) {
    var base = review() && review().getAttribute("data-highlight-url");
    if (!base || !table.hasAttribute("data-hl")) return;
    var file = table.getAttribute("data-hl");
    table.removeAttribute("data-hl");
    fetch(base + "&file=" + encodeURIComponent(file), { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (answer) {
        if (!answer) return;
        var cells = table.querySelectorAll("tr:not(.t) > td.c");
        if (cells.length !== answer.cells.length) return; // not the rows it was made for
        // The server's escaped, highlighted HTML (spans and text), parsed as the cell's content.
        var range = document.createRange();
        for (var i = 0; i < cells.length; i++) {
          range.selectNodeContents(cells[i]);
          cells[i].replaceChildren(range.createContextualFragment(answer.cells[i]));
        }
      })
      .catch(function () { /* stays plain: the text is all there */ });
  }

  function colourLater() {
    var plain = document.querySelectorAll("table.diff[data-hl]");
    if (!plain.length) return;
    if (!("IntersectionObserver" in window)) { plain.forEach(colour); return; }
    var seen = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) { seen.unobserve(entry.target); colour(entry.target); }
      });
    }, { rootMargin: "1500px 0px" });
    plain.forEach(function (table) { seen.observe(table); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", colourLater);
  } else {
    colourLater();
  }

  document.addEventListener("keydown", function (evt) {
    if (evt.key === "Escape" && document.querySelector("tr.rc-form-row")) closeForm();
  });
})();
