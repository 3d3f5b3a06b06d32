/* The dashboard WebSocket: a snapshot on every (re)connect, then numbered changes.
 *
 * EyeLive.start({lastId, wsPath, onAlert(alert, kind), onSnapshot(snapshot, kindOf),
 *                onDevice(device), onDeviceRemoved(id), onDevicesOffline(ids), knownIds()})
 * connects to /ws/alerts/ and, on every connect, sends {type: "sync", since_id, known}; the
 * server answers with a snapshot (every device's state, every unreviewed or open alert, those
 * newer than the page's newest, and the page's known alerts as they are now) taken at sequence
 * number `seq`. Broadcasts carry their own `seq`: those up to the snapshot's are already in it;
 * a number that has not arrived GAP_WAIT_MS after a later one did is a gap (a lost message) and
 * the page asks for a new snapshot. Without onSnapshot, each snapshot alert goes to
 * onAlert(alert, kind) with kind "missed" (newer than anything the page had) or "snapshot".
 *
 * It also keeps the operator's attention: the count of unreviewed alerts in a banner and in the
 * page title, and the alarm (sound on unless muted, repeated while alerts wait for review,
 * a "click to enable" prompt when the browser blocked it).
 *
 * It also polls /readyz and shows #scoring-banner while audio is not being analysed, or is
 * analysed by the web servers instead of the scoring workers (slower).
 */
(function () {
  "use strict";

  const GAP_WAIT_MS = 1500;
  const RESTART_BELOW = 1000;  // a number this far below the expected one: the counter restarted

  function cookie(name) {
    const m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : "";
  }

  function setState(text) {
    const el = document.getElementById("live-state");
    if (el) { el.hidden = false; el.textContent = text; el.dataset.state = text; }
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
        // Scoring workers gone while the web servers score instead: slower, not blind.
        const fallback = failed.length > 0 && failed.every((check) => check.fallback);
        const what = banner.querySelector(".what");
        if (what) {
          what.textContent = fallback ? "Scoring workers are down: analysis is slower."
            : "Scoring is down: audio is not being analysed.";
        }
        const why = banner.querySelector(".why");
        if (why) why.textContent = failed.map((check) => check.detail).join("; ");
      } catch (e) {
        console.warn("readiness poll failed", e);
      }
    }
    poll();
    setInterval(poll, pollMs);
  }


  /* Times in one zone, the server's (TIME_ZONE, on <body data-time-zone>), always labelled. */
  function formatTime(iso, withDate) {
    if (!iso) return "";
    const options = {hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
      timeZoneName: "short"};
    if (document.body.dataset.timeZone) options.timeZone = document.body.dataset.timeZone;
    if (withDate) Object.assign(options, {year: "numeric", month: "2-digit", day: "2-digit"});
    try {
      return new Intl.DateTimeFormat("sv-SE", options).format(new Date(iso));
    } catch (e) {  // a zone this browser does not know
      const utc = new Date(iso).toISOString().replace("T", " ");
      return (withDate ? utc.slice(0, 19) : utc.slice(11, 19)) + " UTC";
    }
  }

  /* ------------------------------------------------------------------ attention */

  const baseTitle = document.title;
  const unreviewed = new Set();   // ids of alerts known to wait for review
  let unlistedNew = 0;            // unreviewed alerts past the snapshot's cap

  function unreviewedCount() { return unreviewed.size + unlistedNew; }

  // The favicon with the count on a red badge (the tab shows it when the page is not in front).
  const favicon = document.getElementById("favicon");
  const faviconHref = favicon ? favicon.href : null;

  function badgeFavicon(n) {
    if (!favicon || Number(favicon.dataset.count || 0) === n) return;
    favicon.dataset.count = n;
    if (!n) { favicon.type = "image/svg+xml"; favicon.href = faviconHref; return; }
    const picture = new Image();
    picture.onload = () => {
      if (Number(favicon.dataset.count) !== n) return;  // a newer count is being drawn
      const canvas = document.createElement("canvas");
      canvas.width = canvas.height = 64;
      const g = canvas.getContext("2d");
      g.drawImage(picture, 0, 0, 64, 64);
      g.fillStyle = "#d0021b"; g.beginPath(); g.arc(42, 22, 22, 0, 2 * Math.PI); g.fill();
      g.fillStyle = "#fff"; g.font = "bold 28px sans-serif"; g.textAlign = "center"; g.textBaseline = "middle";
      g.fillText(n > 99 ? "99+" : String(n), 42, 23);
      favicon.type = "image/png";
      favicon.href = canvas.toDataURL("image/png");
    };
    picture.src = faviconHref;
  }

  function showAttention() {
    const n = unreviewedCount();
    document.title = n ? `(${n}) ${baseTitle}` : baseTitle;
    badgeFavicon(n);
    const banner = document.getElementById("attention");
    if (banner) {
      banner.hidden = n === 0;
      banner.querySelector(".count").textContent = n;
      banner.querySelector(".what").textContent = n === 1 ? "alert waits for review" : "alerts wait for review";
    }
  }

  function trackAlert(alert) {
    if (alert.status === "new") unreviewed.add(alert.id); else unreviewed.delete(alert.id);
  }

  const alarm = {
    muted: localStorage.getItem("eyescream-sound") === "0",
    ctx: null, repeatS: 30, timer: null, played: 0,
    state() {
      if (this.muted) return "muted";
      if (!this.ctx) return "unavailable";
      return this.ctx.state === "running" ? "on" : "blocked";
    },
  };

  function showSound() {
    const button = document.getElementById("sound-state");
    if (!button) return;
    const state = alarm.state();
    button.hidden = false;
    button.dataset.state = state;
    button.textContent = {
      on: "Sound on", muted: "Sound muted",
      blocked: "Sound blocked by the browser: click to enable",
      unavailable: "No sound output",
    }[state];
    button.title = state === "on" ? "Click to mute the alarm" : "Click to turn the alarm on";
  }

  function setUpSound(repeatS) {
    alarm.repeatS = repeatS;
    try {
      alarm.ctx = new (window.AudioContext || window.webkitAudioContext)();
      alarm.ctx.onstatechange = showSound;
      if (alarm.ctx.state !== "running" && !alarm.muted) alarm.ctx.resume().catch(() => {});
    } catch (e) { alarm.ctx = null; }
    const button = document.getElementById("sound-state");
    if (button) {
      button.addEventListener("click", () => {
        const state = alarm.state();
        if (state === "on") alarm.muted = true;
        else { alarm.muted = false; if (alarm.ctx) alarm.ctx.resume().then(showSound, showSound); }
        localStorage.setItem("eyescream-sound", alarm.muted ? "0" : "1");
        showSound();
      });
    }
    // Any click or key on the page also lets the browser start the sound.
    const unblock = () => { if (alarm.ctx && alarm.ctx.state !== "running" && !alarm.muted) alarm.ctx.resume().then(showSound, showSound); };
    document.addEventListener("pointerdown", unblock);
    document.addEventListener("keydown", unblock);
    showSound();
    setInterval(() => {
      if (alarm.repeatS > 0 && unreviewedCount() && Date.now() - alarm.lastAt >= alarm.repeatS * 1000) beep();
    }, 1000);
  }

  function beep() {
    alarm.lastAt = Date.now();
    if (alarm.state() !== "on") return;
    const ctx = alarm.ctx;
    const osc = ctx.createOscillator(), gain = ctx.createGain();
    osc.frequency.value = 880; gain.gain.value = 0.15;
    osc.connect(gain).connect(ctx.destination);
    osc.start(); osc.stop(ctx.currentTime + 0.4);
    alarm.played += 1;
  }

  /* ------------------------------------------------------------------ connection */

  function start(options) {
    watchScoring(options.healthPollMs || 10000);
    const state = {
      lastId: options.lastId || 0, socket: null, retry: 0, connects: 0, missedFetched: 0,
      stopped: false, synced: false, seq: 0, pending: new Set(), buffered: [], gapTimer: null,
      snapshots: 0, resyncs: 0, alarm, unreviewedCount,
    };
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host +
      (options.wsPath || "/ws/alerts/");
    alarm.lastAt = Date.now();
    setUpSound(options.alarmRepeatS === undefined ? 30 : options.alarmRepeatS);

    function seen(alert) {
      if (alert && alert.id > state.lastId) state.lastId = alert.id;
    }

    function requestSync() {
      state.synced = false;
      state.buffered = [];
      const ws = state.socket;
      if (!ws || ws.readyState !== WebSocket.OPEN) return;
      const known = options.knownIds ? options.knownIds() : [];
      ws.send(JSON.stringify({type: "sync", since_id: state.lastId, known: known.slice(-500)}));
    }

    function applySnapshot(snap) {
      const before = state.lastId;
      const kindOf = (alert) => (alert.id > before ? "missed" : "snapshot");
      state.seq = snap.seq;
      state.pending.clear();
      state.snapshots += 1;
      unreviewed.clear();
      for (const alert of snap.alerts) trackAlert(alert);
      unlistedNew = Math.max(0, snap.new_count - unreviewed.size);
      for (const alert of snap.alerts) {
        seen(alert);
        if (alert.id > before) state.missedFetched += 1;
      }
      if (options.onSnapshot) options.onSnapshot(snap, kindOf);
      else for (const alert of snap.alerts.slice().reverse()) options.onAlert(alert, kindOf(alert));
      if (snap.alerts.some((a) => a.id > before && a.status === "new")) beep();
      showAttention();
      state.synced = true;
      const waiting = state.buffered;
      state.buffered = [];
      for (const msg of waiting) handle(msg);
    }

    // Is this numbered broadcast new to the page? Notes gaps and fills them.
    function accept(msg) {
      if (typeof msg.seq !== "number") return true;  // unnumbered: always apply
      const numbers = [msg.seq, ...(msg.also_seq || [])];
      if (msg.seq < state.seq - RESTART_BELOW) { state.resyncs += 1; requestSync(); return false; }
      const fresh = numbers.filter((n) => n > state.seq && !state.pending.has(n));
      if (!fresh.length) return false;
      for (const n of fresh) state.pending.add(n);
      while (state.pending.has(state.seq + 1)) { state.pending.delete(state.seq + 1); state.seq += 1; }
      if (state.pending.size && !state.gapTimer) {
        const waitingFor = state.seq + 1;
        state.gapTimer = setTimeout(() => {
          state.gapTimer = null;
          if (state.synced && state.seq < waitingFor && state.pending.size) {
            state.resyncs += 1;
            requestSync();
          }
        }, GAP_WAIT_MS);
      }
      return true;
    }

    function handle(msg) {
      if (msg.type === "snapshot") { applySnapshot(msg); return; }
      if (!state.synced) { state.buffered.push(msg); return; }
      if (!accept(msg)) return;
      if (msg.type === "alert.created" || msg.type === "alert.updated") {
        seen(msg.alert);
        const wasNew = unreviewed.has(msg.alert.id);
        trackAlert(msg.alert);
        options.onAlert(msg.alert, msg.type === "alert.created" ? "created" : "updated");
        if (msg.type === "alert.created" && msg.alert.status === "new" && !wasNew) beep();
        showAttention();
      } else if (msg.type === "device.updated" && options.onDevice) {
        options.onDevice(msg.device);
      } else if (msg.type === "device.removed" && options.onDeviceRemoved) {
        options.onDeviceRemoved(msg.device_id);
      } else if (msg.type === "devices.offline" && options.onDevicesOffline) {
        options.onDevicesOffline(msg.device_ids);
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
        requestSync();
      };
      ws.onmessage = (event) => handle(JSON.parse(event.data));
      ws.onclose = (event) => {
        state.synced = false;
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
    state.resync = requestSync;
    return state;
  }

  window.EyeLive = {start, toast, cookie, formatTime, watchScoring};
})();
