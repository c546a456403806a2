// recsite console: the few behaviours htmx does not cover. Loaded as a file (no inline
// script, so the strict Content-Security-Policy holds); every page works without it.
(function () {
  "use strict";

  // Copy buttons: <button data-copy="#element-id"> copies that element's text.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      var label = button.firstChild;
      var before = label.textContent;
      label.textContent = "Copied";
      button.classList.add("is-copied");
      setTimeout(function () {
        label.textContent = before;
        button.classList.remove("is-copied");
      }, 1600);
    });
  });

  // The navigation toggle on small screens.
  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-nav-toggle]");
    if (!toggle) return;
    var open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    document.body.classList.toggle("nav-open", open);
  });

  // Flash messages can be dismissed.
  document.addEventListener("click", function (event) {
    var close = event.target.closest("[data-dismiss]");
    if (close) close.parentElement.remove();
  });

  // The confirm dialog: htmx swaps it into #modal; focus goes into it, Escape or Cancel
  // closes it, and focus returns to the button that opened it.
  var opener = null;
  var modalRoot = function () { return document.getElementById("modal"); };

  function closeModal() {
    var root = modalRoot();
    if (!root || !root.firstElementChild) return;
    root.innerHTML = "";
    if (opener && document.body.contains(opener)) opener.focus();
    opener = null;
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    var target = event.detail.target;
    if (target && target.id === "modal") opener = document.activeElement;
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.target && event.detail.target.id === "modal") {
      var panel = modalRoot().querySelector(".modal__panel");
      if (panel) panel.focus();
    }
  });

  document.addEventListener("click", function (event) {
    var dismiss = event.target.closest("[data-dismiss-modal]");
    if (dismiss && modalRoot() && modalRoot().contains(dismiss)) {
      event.preventDefault();
      closeModal();
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") closeModal();
    if (event.key !== "Tab") return;
    var panel = modalRoot() && modalRoot().querySelector(".modal__panel");
    if (!panel) return;
    var focusable = panel.querySelectorAll("a[href], button:not([disabled]), input:not([type=hidden]), select, textarea");
    if (!focusable.length) return;
    var first = focusable[0];
    var last = focusable[focusable.length - 1];
    if (event.shiftKey && (document.activeElement === first || document.activeElement === panel)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  });

  // Upload progress of the file itself (the import's progress is polled from the server).
  document.addEventListener("htmx:xhr:progress", function (event) {
    var form = event.target.closest("[data-upload-form]");
    if (!form || !event.detail.lengthComputable) return;
    var bar = form.querySelector("[data-upload-progress]");
    bar.hidden = false;
    bar.value = Math.round((event.detail.loaded / event.detail.total) * 100);
  });
})();
