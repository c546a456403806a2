/*! recsite widget v1 | recommendations for your shop's pages | no dependencies */
// Usage (see /docs/ on your recsite server):
//   <script src="https://recs.example/static/recsite/widget.js" data-key="pk_..." defer></script>
//   <div data-recsite-placement="product" data-recsite-item="SKU-1"></div>
//
// Safe by construction: every piece of text from the API goes through textContent,
// only http(s) URLs become links or images, styles are constructed stylesheets in a
// Shadow DOM per list (allowed by a strict Content-Security-Policy without
// 'unsafe-inline'), and nothing is stored or sent before consent when the shop asks
// for it (data-require-consent="true").
(function () {
  "use strict";
  if (window.recsite && window.recsite.version) return; // loaded twice: keep the first

  var script = document.currentScript || document.querySelector("script[data-key][src*='widget']");
  if (!script || !script.dataset.key) return console.warn("recsite: the widget's <script> needs data-key=\"pk_...\"");
  var data = script.dataset;
  var api = (data.api || new URL(script.src).origin).replace(/\/+$/, "");
  var key = data.key;
  var limit = size(data.limit, 8);
  var requireConsent = data.requireConsent === "true";
  var consented = !requireConsent;
  var shopper = data.shopper || null; // the shop's own id for the shopper, if it passes one
  var session = null;
  var queue = []; // events waiting to be sent, each with its event_id (kept on retry)
  var tries = {}; // event_id -> failed attempts; an event is dropped after 5
  var restored = false; // whether the queue an earlier page left is loaded
  var persisted = false; // whether this page keeps a queue in storage (else it leaves storage alone)
  var flushTimer = 0;
  var retryDelay = 2000;
  var MAX_EVENTS = 100; // per request (server limit)
  var MAX_BYTES = 60000; // per request, under the 64 KB body limit and the beacon quota
  var STORE = "recsite_"; // prefix of every storage key
  var rendered = new WeakMap(); // container -> its shadow root
  var latest = new WeakMap(); // container -> token of its latest render: older answers are dropped
  var sheet = null;

  // --- small helpers ---------------------------------------------------------------

  // Items per list: a whole number from 1 to 50 (the API's range), else the fallback.
  function size(value, fallback) {
    var n = parseInt(value, 10);
    return n > 0 ? Math.min(n, 50) : fallback;
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    // Insecure contexts (plain http) have no randomUUID: a v4 UUID from getRandomValues.
    var b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  // Storage may be blocked (privacy settings, sandboxed frames): every access is guarded,
  // and none happens before consent when consent is required (``wipe`` only removes).
  function store(kind, name, value, wipe) {
    if (!consented && !wipe) return null;
    try {
      var s = window[kind];
      if (value === undefined) return s.getItem(STORE + name);
      if (value === null) s.removeItem(STORE + name);
      else s.setItem(STORE + name, value);
    } catch (e) { /* blocked: keep going in memory */ }
    return null;
  }

  // An absolute http(s) URL, or null: javascript:, data: and the rest never reach an
  // href or src. Relative URLs resolve against the page, as a link on it would.
  function safeUrl(value) {
    if (typeof value !== "string" || !value) return null;
    try {
      var url = new URL(value, location.href);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text != null) node.textContent = String(text); // text only, never markup
    return node;
  }

  function emit(name, detail) {
    window.dispatchEvent(new CustomEvent("recsite:" + name, { detail: detail }));
  }

  function money(price, currency, locale) {
    var n = typeof price === "string" ? parseFloat(price) : price;
    if (typeof n !== "number" || !isFinite(n)) return "";
    try {
      if (currency) return new Intl.NumberFormat(locale || undefined, { style: "currency", currency: currency }).format(n);
    } catch (e) { /* unknown currency code: plain number below */ }
    return n.toFixed(2);
  }

  // --- identity and consent ----------------------------------------------------------

  // The anonymous shopper id: random, first-party, created on first use after consent.
  function shopperId() {
    if (shopper) return shopper;
    var id = store("localStorage", "id");
    if (!id) {
      id = "anon-" + uuid();
      store("localStorage", "id", id);
    }
    return (shopper = id);
  }

  function sessionId() {
    if (!session) {
      session = store("sessionStorage", "session") || uuid();
      store("sessionStorage", "session", session);
    }
    return session;
  }

  // --- events ------------------------------------------------------------------------

  // Queue one event; returns its event_id, or null when it may not be recorded (no consent).
  function track(event, urgent) {
    if (!consented || !event || !event.type || !event.sku) return null;
    restore();
    var e = {
      event_id: event.event_id || uuid(),
      type: String(event.type),
      shopper: shopperId(),
      sku: String(event.sku),
      ts: new Date().toISOString(),
      session: sessionId(),
    };
    if (event.request_id) e.request_id = String(event.request_id);
    if (event.quantity != null) e.quantity = event.quantity;
    if (event.price != null) e.price = event.price;
    queue.push(e);
    save();
    if (urgent || queue.length >= 20) flush();
    else if (!flushTimer) flushTimer = setTimeout(flush, 3000);
    return e.event_id;
  }

  // Unsent events survive a navigation in localStorage and go out from the next page:
  // loaded once, before this page queues or sends anything.
  function restore() {
    if (restored || !consented) return;
    restored = true;
    try {
      var left = JSON.parse(store("localStorage", "queue") || "[]");
      persisted = left.length > 0;
      queue = left.concat(queue);
    } catch (e) { /* unreadable: dropped */ }
  }

  function save() {
    if (!queue.length && !persisted) return; // another tab's queue is not ours to clear
    persisted = queue.length > 0;
    store("localStorage", "queue", persisted ? JSON.stringify(queue.slice(-500)) : null);
  }

  var encoder = new TextEncoder();
  function bytes(value) {
    return encoder.encode(JSON.stringify(value)).length;
  }

  // Send everything queued, in requests of at most 100 events and MAX_BYTES each.
  function flush() {
    clearTimeout(flushTimer);
    flushTimer = 0;
    if (!consented) return;
    restore();
    while (queue.length) {
      var batch = [];
      var total = bytes({ key: key, events: [] });
      while (queue.length && batch.length < MAX_EVENTS) {
        var n = bytes(queue[0]) + 1;
        if (total + n > MAX_BYTES && batch.length) break;
        total += n;
        batch.push(queue.shift());
      }
      send(batch);
    }
    save();
  }

  // sendBeacon with a text/plain body (no CORS preflight; the key travels in the body).
  // When the browser refuses the beacon, fetch with keepalive; on a network error, 429 or
  // 5xx the events go back to the queue with the same event_ids, and are sent again later.
  function send(batch) {
    var body = JSON.stringify({ key: key, events: batch });
    var url = api + "/api/v1/events";
    var queued = false;
    try {
      queued = navigator.sendBeacon(url, new Blob([body], { type: "text/plain" }));
    } catch (e) { /* no beacon: fetch below */ }
    if (queued) return emit("sent", { events: batch, transport: "beacon" });
    fetch(url, {
      method: "POST",
      body: body,
      keepalive: true,
      credentials: "omit",
      headers: { "Content-Type": "text/plain" },
    }).then(function (response) {
      if (response.status === 429 || response.status >= 500) throw response;
      retryDelay = 2000;
      emit("sent", { events: batch, transport: "fetch", status: response.status });
    }).catch(function () { retry(batch); });
  }

  function retry(batch) {
    batch = batch.filter(function (e) { return (tries[e.event_id] = (tries[e.event_id] || 0) + 1) < 6; });
    if (!batch.length || !consented) return;
    queue = batch.concat(queue);
    save();
    setTimeout(flush, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 60000);
  }

  // --- impressions: at least half of an item visible for a second, once per list ------

  var seen = typeof IntersectionObserver === "function" && new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      var item = entry.target;
      clearTimeout(item._timer);
      if (entry.isIntersecting && entry.intersectionRatio >= 0.5) arm(item);
    });
  }, { threshold: 0.5 });

  function arm(item) {
    item._timer = setTimeout(function () {
      if (document.hidden) return arm(item); // a hidden tab shows nothing: wait for it
      seen.unobserve(item);
      track({ type: "impression", sku: item._rec.sku, request_id: item._rec.request_id });
    }, 1000);
  }

  // --- clicks: sent at once, before the browser navigates away -----------------------

  function onClick(event) {
    if (event.type === "auxclick" && event.button !== 1) return;
    var link = event.target.closest && event.target.closest("a");
    if (!link || !link._rec) return;
    track({ type: "click", sku: link._rec.sku, request_id: link._rec.request_id }, true);
    // Remembered for this session so that add-to-cart and purchase carry the request_id.
    var clicks = clickMap();
    delete clicks[link._rec.sku];
    clicks[link._rec.sku] = link._rec.request_id;
    var skus = Object.keys(clicks);
    if (skus.length > 50) delete clicks[skus[0]];
    store("sessionStorage", "clicks", JSON.stringify(clicks));
  }

  function clickMap() {
    try {
      return JSON.parse(store("sessionStorage", "clicks") || "{}") || {};
    } catch (e) {
      return {};
    }
  }

  function clickedFrom(sku) {
    return clickMap()[sku];
  }

  // --- rendering ----------------------------------------------------------------------

  var CSS =
    ":host{display:block;container-type:inline-size;font-family:var(--recsite-font,system-ui,sans-serif);" +
    "font-size:var(--recsite-font-size,14px);line-height:1.4;color:var(--recsite-text,#1f2328)}" +
    "h2{font-size:var(--recsite-title-size,1.2em);font-weight:600}" +
    ".bar{display:flex;align-items:center;gap:8px;margin-bottom:8px}.bar h2{margin:0}.nav{margin-left:auto;display:flex;gap:6px}" +
    "ul{list-style:none;margin:0;padding:0;display:grid;gap:var(--recsite-gap,16px);" +
    "grid-template-columns:repeat(var(--recsite-columns,4),minmax(0,1fr))}" +
    ".carousel ul{grid-template-columns:none;grid-auto-flow:column;overflow-x:auto;scroll-snap-type:x mandatory;" +
    "scrollbar-width:thin;padding-bottom:4px;grid-auto-columns:calc((100% - (var(--recsite-columns,4) - 1)" +
    " * var(--recsite-gap,16px)) / var(--recsite-columns,4))}" +
    "@container (max-width:600px){ul{grid-template-columns:repeat(var(--recsite-columns-narrow,2),minmax(0,1fr))}" +
    ".carousel ul{grid-auto-columns:42%}}" +
    "li{min-width:0;scroll-snap-align:start}" +
    ".card{display:flex;flex-direction:column;gap:4px;height:100%;color:inherit;text-decoration:none;" +
    "background:var(--recsite-card-bg,transparent);border-radius:var(--recsite-radius,8px);padding:var(--recsite-card-padding,0)}" +
    "a.card:focus-visible{outline:2px solid var(--recsite-accent,#2f6feb);outline-offset:2px}" +
    ".media{aspect-ratio:var(--recsite-image-ratio,2/3);border-radius:var(--recsite-radius,8px);overflow:hidden;" +
    "background:var(--recsite-placeholder,#eef0f3);display:grid;place-items:center;color:var(--recsite-muted,#6b7482);font-size:2em}" +
    "img{width:100%;height:100%;object-fit:var(--recsite-image-fit,cover);display:block}" +
    ".title{overflow-wrap:anywhere;display:-webkit-box;-webkit-box-orient:vertical;-webkit-line-clamp:var(--recsite-title-lines,2);overflow:hidden;margin-top:4px}" +
    "a.card:hover .title{color:var(--recsite-accent,#2f6feb);text-decoration:underline}" +
    ".price{font-weight:600;color:var(--recsite-price,inherit)}" +
    "button{font:inherit;width:32px;height:32px;border-radius:50%;border:1px solid var(--recsite-border,#d0d7de);" +
    "background:var(--recsite-bg,#fff);color:inherit;cursor:pointer}" +
    "button:disabled{opacity:.35;cursor:default}button:focus-visible{outline:2px solid var(--recsite-accent,#2f6feb)}";

  // Constructed stylesheets are not inline styles: a host page's style-src without
  // 'unsafe-inline' does not block them (a <style> element would be).
  function styles(root) {
    if (root.adoptedStyleSheets && window.CSSStyleSheet && CSSStyleSheet.prototype.replaceSync) {
      if (!sheet) (sheet = new CSSStyleSheet()).replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } else {
      root.appendChild(el("style", "", CSS)); // old browsers only
    }
  }

  function options(container) {
    var d = container.dataset;
    var items = [];
    try {
      items = JSON.parse(d.recsiteItems || "[]");
    } catch (e) { /* not JSON: ignored */ }
    if (!Array.isArray(items)) items = [];
    if (d.recsiteItem) items.unshift(d.recsiteItem);
    return {
      placement: d.recsitePlacement,
      items: items,
      limit: size(d.recsiteLimit, limit),
      layout: d.recsiteLayout || data.layout || "grid",
      title: d.recsiteTitle,
    };
  }

  // Draw a recommendations response into the container's shadow root. Impressions and
  // clicks of its items carry the response's request_id.
  function draw(container, response, started) {
    latest.set(container, {});
    var root = rendered.get(container);
    if (!root) {
      try {
        root = container.shadowRoot || container.attachShadow({ mode: "open" });
      } catch (e) {
        return; // an element that cannot host a shadow root (img, a, ...)
      }
      rendered.set(container, root);
      styles(root);
      root.addEventListener("click", onClick);
      root.addEventListener("auxclick", onClick);
    }
    var opts = options(container);
    var items = (response && Array.isArray(response.items) ? response.items : []).filter(function (i) {
      return i && typeof i.sku === "string";
    });
    var requestId = response && response.request_id ? String(response.request_id) : "";
    root.querySelectorAll("li").forEach(function (li) {
      clearTimeout(li._timer);
      if (seen) seen.unobserve(li);
    });
    root.replaceChildren();
    container.setAttribute("data-recsite-state", items.length ? "ready" : "empty");
    container.setAttribute("data-recsite-request-id", requestId);
    if (!items.length) return;

    var section = el("section", opts.layout === "carousel" ? "carousel" : "grid");
    section.setAttribute("part", "list");
    section.setAttribute("aria-label", opts.title || "Recommendations");
    var list = el("ul");
    var bar = el("div", "bar");
    if (opts.title) bar.appendChild(el("h2", "", opts.title)).setAttribute("part", "title");
    items.forEach(function (item, position) {
      var li = el("li");
      li.setAttribute("part", "item");
      var href = safeUrl(item.url);
      var card = el(href ? "a" : "div", "card");
      if (href) card.href = href;
      card.setAttribute("part", "card");
      var media = card.appendChild(el("div", "media"));
      var src = safeUrl(item.image_url);
      var title = item.title == null ? "" : String(item.title);
      if (src) {
        var img = el("img");
        img.alt = ""; // the title is right below: a screen reader should not read it twice
        img.loading = "lazy";
        img.decoding = "async";
        img.addEventListener("error", function () { img.remove(); media.textContent = title.charAt(0); });
        img.src = src;
        media.appendChild(img);
      } else {
        media.textContent = title.charAt(0);
      }
      card.appendChild(el("span", "title", title)).setAttribute("part", "item-title");
      var price = money(item.price, data.currency, data.locale);
      if (price) card.appendChild(el("span", "price", price)).setAttribute("part", "price");
      li._rec = card._rec = { sku: item.sku, request_id: requestId, position: position };
      li.appendChild(card);
      list.appendChild(li);
      if (seen) seen.observe(li);
    });
    if (opts.layout === "carousel") bar.appendChild(arrows(list));
    if (bar.firstChild) section.appendChild(bar);
    section.appendChild(list);
    root.appendChild(section);
    emit("rendered", {
      element: container,
      placement: opts.placement || (response && response.placement),
      request_id: requestId,
      variant: response && response.variant,
      items: items.length,
      response: response,
      ms: started == null ? undefined : performance.now() - started,
      at: performance.now(), // since navigation start
    });
  }

  function arrows(list) {
    var nav = el("div", "nav");
    [["\u2039", "Previous", -1], ["\u203a", "Next", 1]].forEach(function (a) {
      var button = nav.appendChild(el("button", "", a[0]));
      button.type = "button";
      button.setAttribute("aria-label", a[1]);
      button.setAttribute("part", "arrow");
      button.addEventListener("click", function () {
        list.scrollBy({ left: a[2] * list.clientWidth, behavior: "smooth" });
      });
    });
    function update() {
      nav.firstChild.disabled = list.scrollLeft <= 0;
      nav.lastChild.disabled = list.scrollLeft + list.clientWidth >= list.scrollWidth - 1;
    }
    list.addEventListener("scroll", update, { passive: true });
    requestAnimationFrame(update);
    return nav;
  }

  // Fetch and draw the list of one container. Resolves with the response, or null when
  // there is nothing to show (the container is then marked data-recsite-state="error").
  function render(container) {
    var opts = options(container);
    if (!opts.placement) return Promise.resolve(null);
    var started = performance.now();
    var params = new URLSearchParams({ placement: opts.placement, limit: String(opts.limit) });
    // Without consent the list is requested without any shopper id: not personalised.
    if (consented) params.set("shopper", shopperId());
    opts.items.forEach(function (sku) { params.append("item", String(sku)); });
    container.setAttribute("data-recsite-state", "loading");
    var token = {};
    latest.set(container, token);
    var current = function () { return latest.get(container) === token; };
    return fetch(api + "/api/v1/recommendations?" + params, {
      headers: { Authorization: "Bearer " + key, Accept: "application/json" },
      credentials: "omit",
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) throw { status: response.status, error: body && body.error };
        if (current()) draw(container, body, started);
        return body;
      });
    }).catch(function (problem) {
      if (!current()) return null;
      container.setAttribute("data-recsite-state", "error");
      emit("error", { element: container, placement: opts.placement, status: problem.status || 0, error: problem.error });
      return null;
    });
  }

  function renderAll(scope) {
    var found = (scope || document).querySelectorAll("[data-recsite-placement]");
    return Promise.all(Array.prototype.map.call(found, function (c) {
      return c.hasAttribute("data-recsite-state") ? null : render(c);
    }));
  }

  // --- the public API -------------------------------------------------------------------

  window.recsite = {
    version: "1",
    render: render,
    renderAll: renderAll,
    // Draw a response you fetched yourself (e.g. on your server with the secret key).
    renderData: function (container, response) { draw(container, response); },
    track: function (event) { return track(event, event && event.type === "click"); },
    addToCart: function (sku, o) {
      o = o || {};
      return track({ type: "add_to_cart", sku: sku, price: o.price, quantity: o.quantity || 1,
        request_id: o.request_id || clickedFrom(sku) });
    },
    // items: [{sku, price, quantity}]; with an order id, event ids derive from it, so a
    // reloaded thank-you page does not count the order twice.
    purchase: function (items, o) {
      o = o || {};
      var ids = (items || []).map(function (i) {
        return track({ type: "purchase", sku: i.sku, price: i.price, quantity: i.quantity || 1,
          request_id: i.request_id || clickedFrom(i.sku),
          event_id: o.order ? "order-" + o.order + "-" + i.sku : undefined });
      });
      flush();
      return ids;
    },
    identify: function (id) { shopper = id ? String(id) : null; },
    consent: function (granted) {
      consented = !!granted;
      if (consented) return flush();
      // Withdrawn: forget what is queued and everything stored (shopper id, session).
      queue = [];
      ["id", "queue"].forEach(function (n) { store("localStorage", n, null, true); });
      ["session", "clicks"].forEach(function (n) { store("sessionStorage", n, null, true); });
      shopper = data.shopper || null;
      session = null;
    },
    flush: flush,
  };

  // --- start -----------------------------------------------------------------------------

  function start() {
    flush(); // what an earlier page left queued (with consent)
    renderAll();
    // Containers added later (single-page apps, lazy sections) render on their own.
    new MutationObserver(function (changes) {
      changes.forEach(function (change) {
        change.addedNodes.forEach(function (node) {
          if (node.nodeType !== 1) return;
          if (node.matches("[data-recsite-placement]") && !node.hasAttribute("data-recsite-state")) render(node);
          renderAll(node);
        });
      });
    }).observe(document.documentElement, { childList: true, subtree: true });
  }

  addEventListener("pagehide", flush);
  document.addEventListener("visibilitychange", function () { if (document.hidden) flush(); });
  // After the current script: a consent(true) or identify() call right after this file
  // still applies to the first requests.
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else setTimeout(start);
  emit("ready", {});
})();
