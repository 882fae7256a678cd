/*
 * clicklib's browser tracker: page views, clicks on marked elements, and events the page sends,
 * batched to the collector's POST /collect.
 *
 *   <body data-page-type="productDetail" data-user-id="alice">
 *   <script src="http://127.0.0.1:8090/tracker.js" data-partner-id="p1" data-partner-name="Shop" async></script>
 *   <a href="/cart" data-track="add_to_cart">Add to cart</a>
 *
 * - page view on load, with the page type from data-page-type (on <body> or <html>);
 * - a click on an element with data-track="event_name" sends that event;
 * - window.clicklib.track(name, fields) sends any event; window.clicklib.setUser(id) sets the user;
 * - a session ends after 30 minutes without an event; its first event has init_session = true;
 * - events are kept in localStorage until the collector acknowledged them (202), sent every few
 *   seconds or ten at a time, with navigator.sendBeacon when the page is hidden, and sent again
 *   with a growing pause while the collector cannot be reached; a batch the collector finds too
 *   large is split. An event sent twice counts once downstream (its event_id).
 */
(function () {
  "use strict";
  var SESSION_MS = 30 * 60 * 1000;
  var BATCH = 10;
  var EVERY_MS = 3000;
  var QUEUE_KEY = "clicklib.queue";
  var SESSION_KEY = "clicklib.session";
  var USER_KEY = "clicklib.user";
  var MAX_QUEUED = 500; // beyond this the oldest events are dropped, so storage cannot fill up

  var script = document.currentScript;
  var collector = (script && script.getAttribute("data-collector")) ||
    (script && script.src ? new URL(script.src, location.href).origin : location.origin);
  var partnerId = script ? script.getAttribute("data-partner-id") : null;
  var partnerName = script ? script.getAttribute("data-partner-name") : null;
  var pause = EVERY_MS;
  var sending = false;

  function load(key, fallback) {
    try {
      var text = localStorage.getItem(key);
      return text ? JSON.parse(text) : fallback;
    } catch (e) {
      return fallback;
    }
  }

  function save(key, value) {
    try {
      localStorage.setItem(key, JSON.stringify(value));
    } catch (e) {
      /* storage full or off: the events stay in memory for this page */
    }
  }

  var memoryQueue = load(QUEUE_KEY, []);

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) {
      var r = (Math.random() * 16) | 0;
      return (c === "x" ? r : (r & 3) | 8).toString(16);
    });
  }

  function attribute(name) {
    return document.body && document.body.getAttribute(name) || document.documentElement.getAttribute(name);
  }

  var memorySession = null; // the session when storage is off: one per page, not one per event

  function session(now) {
    var current = load(SESSION_KEY, memorySession);
    var fresh = !current || now - current.last > SESSION_MS;
    if (fresh) current = { id: uuid(), last: now };
    current.last = now;
    memorySession = current;
    save(SESSION_KEY, current);
    return { id: current.id, fresh: fresh };
  }

  function user() {
    return attribute("data-user-id") || load(USER_KEY, null);
  }

  function track(name, fields) {
    var now = Date.now();
    var s = session(now);
    var event = {
      event_id: uuid(),
      date: now,
      session_id: s.id,
      user_id: user(),
      event: name,
      page_type: attribute("data-page-type") || "other",
      current_url: location.href,
      referrer: document.referrer || null,
      partner_id: partnerId,
      partner_name: partnerName,
      init_session: s.fresh,
      user_agent: navigator.userAgent,
      language: navigator.language || null,
      status: 200
    };
    for (var key in fields || {}) event[key] = fields[key];
    memoryQueue.push(event);
    if (memoryQueue.length > MAX_QUEUED) memoryQueue.splice(0, memoryQueue.length - MAX_QUEUED);
    save(QUEUE_KEY, memoryQueue);
    if (memoryQueue.length >= BATCH) flush();
  }

  // Acknowledged by event_id, not by position: a beacon, another tab or the storage bound may
  // have changed the queue while a request was out.
  function acknowledged(batch) {
    var sent = {};
    for (var i = 0; i < batch.length; i++) sent[batch[i].event_id] = true;
    memoryQueue = load(QUEUE_KEY, memoryQueue).filter(function (event) {
      return !sent[event.event_id];
    });
    save(QUEUE_KEY, memoryQueue);
  }

  var batchSize = 50;
  var warned = false;

  function flush() {
    if (sending || !memoryQueue.length) return;
    var batch = memoryQueue.slice(0, batchSize);
    var body = JSON.stringify(batch);
    sending = true;
    // text/plain keeps this a simple request: no preflight, whatever the page's origin.
    // keepalive (the request outlives the page) takes bodies up to 64 KiB only.
    fetch(collector + "/collect", {
      method: "POST",
      headers: { "Content-Type": "text/plain" },
      body: body,
      keepalive: new Blob([body]).size < 60000,
      credentials: "omit"
    }).then(function (response) {
      sending = false;
      if (response.status === 202) {
        acknowledged(batch);
        pause = EVERY_MS;
        if (memoryQueue.length) flush();
      } else if ((response.status === 400 || response.status === 413) && batch.length > 1) {
        // Too many events or too large a body for this collector: send smaller batches.
        batchSize = Math.max(1, Math.floor(batch.length / 2));
        flush();
      } else if (response.status >= 400 && response.status < 500) {
        // The collector will never take this batch as it is (one event too large, or a refusal
        // splitting cannot help): it is dropped, so the rest go on.
        if (window.console) console.warn("clicklib: the collector refused an event", response.status);
        acknowledged(batch);
      } else {
        pause = Math.min(pause * 2, 60000);
      }
    }, function () {
      // Unreachable, or an answer this page may not read: try again later, more slowly.
      sending = false;
      pause = Math.min(pause * 2, 60000);
      if (!warned && collector !== location.origin && window.console) {
        warned = true;
        console.warn("clicklib: no answer from " + collector + "; if it runs, add " + location.origin +
          " to its CLICKLIB_COLLECTOR_ORIGINS so this page can read its answers");
      }
    });
  }

  function beacon() {
    // The page is going away: hand what is left to the browser, which sends it after the page.
    // The events stay stored until a 202 confirms them: the next page sends them again if need
    // be, and an event sent twice counts once, by its event_id.
    if (!memoryQueue.length || !navigator.sendBeacon) return;
    var body = new Blob([JSON.stringify(memoryQueue.slice(0, batchSize))], { type: "text/plain" });
    navigator.sendBeacon(collector + "/collect", body);
  }

  function tick() {
    flush();
    setTimeout(tick, pause);
  }

  document.addEventListener("click", function (e) {
    var element = e.target && e.target.closest ? e.target.closest("[data-track]") : null;
    if (element) track(element.getAttribute("data-track"), { target: element.getAttribute("href") || null });
  }, true);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") beacon();
  });
  window.addEventListener("pagehide", beacon);

  window.clicklib = {
    track: track,
    flush: flush,
    setUser: function (id) {
      save(USER_KEY, id || null);
    },
    pending: function () {
      return memoryQueue.length;
    }
  };
  track("pageview");
  tick();
})();
