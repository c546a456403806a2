// The demo storefront's own script: a cart in this browser's storage, the calls a shop
// makes to the recsite widget (view, add to cart, purchase, consent), and the activity
// panel that shows what the widget received and sent. Loaded as a file after widget.js
// (no inline script: the page's Content-Security-Policy forbids them). All text goes
// in through textContent.
(function () {
  "use strict";

  var CART = "shop-cart";
  var LOG = "shop-event-log";
  var CONSENT = "shop-consent";
  var LOG_LIMIT = 200;

  function recsite() {
    return window.recsite || null; // absent when the recsite server cannot be reached
  }

  function read(name, fallback) {
    try {
      var value = JSON.parse(localStorage.getItem(name));
      return value == null ? fallback : value;
    } catch (e) {
      return fallback;
    }
  }

  function write(name, value) {
    try {
      localStorage.setItem(name, JSON.stringify(value));
    } catch (e) { /* storage blocked: the cart lives for this page only */ }
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = String(text);
    return node;
  }

  function short(id) {
    return id ? String(id).slice(0, 8) + "…" : "–";
  }

  function time() {
    return new Date().toLocaleTimeString([], { hour12: false });
  }

  // --- cart ----------------------------------------------------------------------------

  function cart() {
    var items = read(CART, []);
    return Array.isArray(items) ? items : [];
  }

  function saveCart(items) {
    write(CART, items);
    showCount(items);
  }

  function showCount(items) {
    var count = items.reduce(function (sum, item) { return sum + item.quantity; }, 0);
    document.querySelectorAll("[data-cart-count]").forEach(function (badge) { badge.textContent = String(count); });
  }

  function addToCart(button) {
    var sku = button.dataset.sku;
    var items = cart();
    var line = items.find(function (item) { return item.sku === sku; });
    if (line) line.quantity += 1;
    else items.push({ sku: sku, title: button.dataset.title, price: button.dataset.price, label: button.dataset.priceLabel, quantity: 1 });
    saveCart(items);
    if (recsite()) recsite().addToCart(sku, { price: button.dataset.price, quantity: 1 });
    var notice = document.querySelector("[data-cart-notice]");
    if (notice) {
      notice.textContent = "";
      notice.appendChild(document.createTextNode("Added to your cart. "));
      var link = notice.appendChild(el("a", "", "View cart"));
      link.href = "/cart/";
    }
  }

  function drawCart() {
    var root = document.querySelector("[data-cart]");
    if (!root) return;
    var items = cart();
    var rows = root.querySelector("[data-cart-rows]");
    rows.replaceChildren();
    items.forEach(function (item, index) {
      var row = rows.appendChild(el("tr"));
      var title = row.appendChild(el("td")).appendChild(el("a", "", item.title));
      title.href = "/product/" + encodeURIComponent(item.sku);
      row.appendChild(el("td", "", item.quantity));
      row.appendChild(el("td", "", item.label));
      var remove = row.appendChild(el("td")).appendChild(el("button", "button button--secondary button--small", "Remove"));
      remove.type = "button";
      remove.addEventListener("click", function () {
        items.splice(index, 1);
        saveCart(items);
        drawCart();
      });
    });
    root.querySelector("[data-cart-empty]").hidden = items.length > 0;
    root.querySelector("[data-cart-table]").hidden = items.length === 0;
    root.querySelector("[data-cart-actions]").hidden = items.length === 0;
  }

  function placeOrder() {
    var items = cart();
    if (!items.length) return;
    var order = Date.now().toString(36);
    if (recsite()) {
      recsite().purchase(items.map(function (item) {
        return { sku: item.sku, price: item.price, quantity: item.quantity };
      }), { order: order });
    }
    saveCart([]);
    drawCart();
    document.querySelector("[data-order-notice]").textContent = "Thank you! Order " + order + " is placed (a demo: nothing ships).";
  }

  // The cart list is recommended in the context of what is in the cart.
  function renderCartRecs() {
    var container = document.querySelector("[data-cart-recs]");
    if (!container || !recsite()) return;
    container.setAttribute("data-recsite-items", JSON.stringify(cart().map(function (item) { return item.sku; })));
    container.setAttribute("data-recsite-placement", "cart");
    recsite().render(container);
  }

  // --- activity: the page's panel, and the log kept across pages ------------------------

  function describe(kind, detail) {
    if (kind === "rendered") {
      var response = detail.response || {};
      return {
        at: time(),
        title: "List " + detail.placement + ": " + detail.items + " items, request " + short(detail.request_id) +
          (detail.variant ? ", variant " + detail.variant : "") +
          (detail.ms != null ? ", " + Math.round(detail.ms) + " ms" : ""),
        lines: (response.items || []).map(function (item, i) {
          return (i + 1) + ". " + item.title + " (" + item.sku + ")" + reasons(item.reasons);
        }),
      };
    }
    if (kind === "sent") {
      return {
        at: time(),
        title: "Sent " + detail.events.length + " event" + (detail.events.length === 1 ? "" : "s") + " by " + detail.transport,
        lines: detail.events.map(function (e) {
          return e.type + " " + e.sku + (e.request_id ? " · request " + short(e.request_id) : "") + " · id " + short(e.event_id);
        }),
      };
    }
    var error = detail.error || {};
    return {
      at: time(),
      title: "List " + detail.placement + " not shown: " + (detail.status || "network error") + (error.code ? " " + error.code : ""),
      lines: error.message ? [error.message] : [],
    };
  }

  function reasons(list) {
    if (!Array.isArray(list) || !list.length) return "";
    return " — " + list.map(function (reason) {
      if (typeof reason !== "object" || reason === null) return String(reason);
      return Object.keys(reason).map(function (k) {
        var v = reason[k];
        return typeof v === "object" ? k + ": " + JSON.stringify(v) : k + ": " + v;
      }).join(", ");
    }).join("; ");
  }

  function entryNode(entry) {
    var item = el("li", "activity__entry");
    item.appendChild(el("span", "activity__time", entry.at));
    item.appendChild(el("span", "activity__title", entry.title));
    if (entry.lines.length) {
      var lines = item.appendChild(el("ul", "activity__lines"));
      entry.lines.forEach(function (line) { lines.appendChild(el("li", "", line)); });
    }
    return item;
  }

  var pageEntries = 0;

  function record(kind, detail) {
    var entry = describe(kind, detail);
    var list = document.querySelector("[data-activity-list]");
    if (list) list.appendChild(entryNode(entry));
    pageEntries += 1;
    var badge = document.querySelector("[data-activity-count]");
    if (badge) badge.textContent = String(pageEntries);
    var log = read(LOG, []);
    log.push(entry);
    write(LOG, log.slice(-LOG_LIMIT));
    drawLog();
  }

  function drawLog() {
    var list = document.querySelector("[data-log-list]");
    if (!list) return;
    var log = read(LOG, []);
    list.replaceChildren();
    log.slice().reverse().forEach(function (entry) { list.appendChild(entryNode(entry)); });
    document.querySelector("[data-log-empty]").hidden = log.length > 0;
  }

  ["rendered", "sent", "error"].forEach(function (kind) {
    window.addEventListener("recsite:" + kind, function (event) { record(kind, event.detail); });
  });

  // --- consent (only when the shop runs with RECSITE_STOREFRONT_REQUIRE_CONSENT) ---------

  function consent() {
    if (!document.body.hasAttribute("data-require-consent")) return;
    var banner = document.querySelector("[data-consent-banner]");
    var choice = read(CONSENT, null);
    if (choice === "yes" && recsite()) recsite().consent(true);
    if (choice === null && banner) banner.hidden = false;
    document.addEventListener("click", function (event) {
      var button = event.target.closest("[data-consent]");
      if (!button) return;
      var granted = button.dataset.consent === "yes";
      write(CONSENT, granted ? "yes" : "no");
      if (recsite()) recsite().consent(granted);
      banner.hidden = true;
    });
  }

  // --- start -----------------------------------------------------------------------------

  consent();
  showCount(cart());
  drawCart();
  drawLog();
  renderCartRecs();

  var viewed = document.querySelector("[data-product-view]");
  if (viewed && recsite()) recsite().track({ type: "view", sku: viewed.dataset.productView });

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target.closest("[data-add-to-cart]")) addToCart(target.closest("[data-add-to-cart]"));
    if (target.closest("[data-place-order]")) placeOrder();
    if (target.closest("[data-log-clear]")) {
      write(LOG, []);
      drawLog();
    }
  });
})();
