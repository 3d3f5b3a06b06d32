/* The dashboard WebSocket with reconnect and catch-up.
 *
 * EyeLive.start({lastId, onAlert(alert, kind), onDevicesOffline(ids)}) connects to /ws/alerts/.
 * After every (re)connect it fetches /api/alerts/?since_id=<largest id seen> and hands each
 * missed alert to onAlert(alert, "missed"), so nothing is lost across a dropped connection.
 * It also polls /readyz and shows #scoring-banner while audio is not being analysed.
 */
(function () {
  "use strict";

  function cookie(name) {
    const m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : "";
  }

  function setState(text) {
    const el = document.getElementById("live-state");
    if (el) { el.textContent = text; el.dataset.state = text; }
  }

  function toast(text, href) {
    const box = document.getElementById("toasts");
    if (!box) return;
    const el = document.createElement(href ? "a" : "div");
    el.className = "toast";
    el.textContent = text;
    if (href) el.href = href;
    box.appendChild(el);
    setTimeout(() => el.remove(), 8000);
  }

  /* The "scoring is down" banner: /readyz every pollMs (10 s). It shows while the scoring
   * check (a scoring worker's heartbeat in the scaled mode, the model in the embedded mode) or
   * the model check fails, with the reason; it hides when both pass again. */
  function watchScoring(pollMs) {
    const banner = document.getElementById("scoring-banner");
    if (!banner) return;
    async function poll() {
      try {
        const r = await fetch("/readyz", {credentials: "same-origin", cache: "no-store",
          headers: {Accept: "application/json"}});
        const body = await r.json();
        const failed = ["scoring", "model"].map((name) => (body.checks || {})[name])
          .filter((check) => check && !check.ok);
        banner.hidden = failed.length === 0;
        banner.dataset.down = failed.length ? "1" : "0";
        const why = banner.querySelector(".why");
        if (why) why.textContent = failed.map((check) => check.detail).join("; ");
      } catch (e) {
        console.warn("readiness poll failed", e);
      }
    }
    poll();
    setInterval(poll, pollMs);
  }

  function start(options) {
    watchScoring(options.healthPollMs || 10000);
    const state = {
      lastId: options.lastId || 0, socket: null, retry: 0, connects: 0, missedFetched: 0,
      stopped: false,
    };
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host +
      (options.wsPath || "/ws/alerts/");

    function seen(alert) {
      if (alert && alert.id > state.lastId) state.lastId = alert.id;
    }

    async function catchUp() {
      const since = state.lastId;
      try {
        const r = await fetch("/api/alerts/?limit=1000&since_id=" + since,
          {credentials: "same-origin", headers: {Accept: "application/json"}});
        if (!r.ok) throw new Error("HTTP " + r.status);
        for (const alert of await r.json()) {
          if (alert.id <= state.lastId && alert.id <= since) continue;
          seen(alert);
          state.missedFetched += 1;
          options.onAlert(alert, "missed");
        }
      } catch (e) {
        console.warn("catch-up failed", e);
      }
    }

    function connect() {
      setState(state.connects ? "reconnecting" : "connecting");
      const ws = new WebSocket(url);
      state.socket = ws;
      ws.onopen = () => {
        state.connects += 1;
        state.retry = 0;
        setState("live");
        catchUp();
      };
      ws.onmessage = (event) => {
        const msg = JSON.parse(event.data);
        if (msg.type === "alert.created" || msg.type === "alert.updated") {
          seen(msg.alert);
          options.onAlert(msg.alert, msg.type === "alert.created" ? "created" : "updated");
        } else if (msg.type === "devices.offline" && options.onDevicesOffline) {
          options.onDevicesOffline(msg.device_ids);
        }
      };
      ws.onclose = (event) => {
        if (state.stopped) return;
        if (event.code === 4401 || event.code === 4403) { setState("not allowed"); return; }
        setState("reconnecting");
        const delay = Math.min(5000, 250 * Math.pow(2, state.retry++));
        setTimeout(connect, delay);
      };
    }
    connect();
    setInterval(() => {
      if (state.socket && state.socket.readyState === WebSocket.OPEN) {
        state.socket.send(JSON.stringify({type: "ping"}));
      }
    }, 20000);
    return state;
  }

  window.EyeLive = {start, toast, cookie, watchScoring};
})();
