// The browser device: microphone -> AudioWorklet -> 200 ms pcm_f32le frames -> WebSocket.
// Protocol: docs/protocol.md. Reconnects with back-off unless the server refuses for good.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("device-config").textContent);
  const RATE = 16000; // the AudioContext resamples the microphone to this rate
  const FRAME_S = 0.2;
  const DISABLED = 4013; // an admin disabled the device: wait, it may be enabled again
  const FATAL = (code) => code >= 4000 && code < 4100 && code !== DISABLED; // someone must act
  const DISABLED_RETRY_MS = [5000, 60000]; // first wait, longest wait (doubling)
  const $ = (id) => document.getElementById(id);

  let audio = null; // {context, stream, node}
  let ws = null;
  let ready = false;
  let wanted = false;
  let backoff = 500;
  let disabledWait = DISABLED_RETRY_MS[0];

  function notice(text) {
    $("notice").textContent = text || "";
    $("notice").hidden = !text;
  }

  function setState(state, detail) {
    $("state").textContent = state;
    $("state").dataset.state = state;
    $("detail").textContent = detail || "";
  }

  function showLevel(frame) {
    let sum = 0;
    for (let i = 0; i < frame.length; i++) sum += frame[i] * frame[i];
    const db = Math.max(-120, 20 * Math.log10(Math.sqrt(sum / frame.length) + 1e-12));
    $("level").value = Math.max(-80, db);
    $("level-db").textContent = db.toFixed(1);
  }

  /* The token is remembered in this browser (localStorage) once the server accepted it, so a
   * reload or a restarted phone does not need it pasted again; "Forget" removes it. */
  const TOKEN_KEY = "eyescream-device-token";

  function storage() {
    try { return window.localStorage; } catch (e) { return null; } // storage blocked
  }

  function showRemembered() {
    const store = storage();
    const saved = store && store.getItem(TOKEN_KEY);
    $("remembered").hidden = !saved;
    return saved;
  }

  function remember(token) {
    const store = storage();
    if (store) { store.setItem(TOKEN_KEY, token); showRemembered(); }
  }

  $("forget").addEventListener("click", () => {
    const store = storage();
    if (store) store.removeItem(TOKEN_KEY);
    $("token").value = "";
    showRemembered();
  });

  const saved = showRemembered();
  if (saved) $("token").value = saved;

  /* getUserMedia's errors, in words: what happened and what to do. */
  function microphoneProblem(error) {
    const name = error && error.name;
    if (name === "NotAllowedError" || name === "PermissionDeniedError" || name === "SecurityError") {
      return "The microphone was not allowed for this page. Allow it (the microphone or lock " +
        "icon in the address bar, or the browser's site settings), then press Start again.";
    }
    if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError") {
      return "No microphone was found. Connect one (or enable it in the system's sound " +
        "settings), then press Start again.";
    }
    if (name === "NotReadableError" || name === "TrackStartError") {
      return "The microphone could not be started: another app may be using it. Close that " +
        "app, then press Start again.";
    }
    if (name === "InsecureContext") {
      return "Browsers allow the microphone only on secure pages: open this page over " +
        "https:// (or on this machine as http://localhost).";
    }
    return "The microphone could not be started (" + (name || "error") + ": " +
      ((error && error.message) || "no details") + ").";
  }

  async function startAudio() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      const error = new Error("no navigator.mediaDevices");
      error.name = "InsecureContext";
      throw error;
    }
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
    });
    const context = new AudioContext({ sampleRate: RATE });
    await context.audioWorklet.addModule(config.worklet);
    const node = new AudioWorkletNode(context, "pcm-capture", {
      processorOptions: { frameSamples: Math.round(context.sampleRate * FRAME_S) },
    });
    const mute = context.createGain();
    mute.gain.value = 0;
    context.createMediaStreamSource(stream).connect(node);
    node.connect(mute).connect(context.destination); // keeps the graph pulling, silently
    node.port.onmessage = (event) => {
      showLevel(event.data);
      if (ws && ready && ws.readyState === WebSocket.OPEN) ws.send(event.data.buffer);
    };
    await context.resume();
    audio = { context, stream, node };
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(scheme + location.host + config.wsPath);
    ws.binaryType = "arraybuffer";
    ready = false;
    setState("connecting");
    ws.onopen = () => {
      ws.send(JSON.stringify({
        type: "hello",
        token: $("token").value.trim(),
        sample_rate: audio.context.sampleRate,
        encoding: "pcm_f32le",
        channels: 1,
        client: ("browser " + navigator.userAgent).slice(0, 100),
      }));
    };
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "ready") {
        ready = true;
        backoff = 500;
        disabledWait = DISABLED_RETRY_MS[0];
        notice("");
        remember($("token").value.trim());
        setState("streaming", "as " + message.device.name);
      } else if (message.type === "ack") {
        $("stored").textContent = (message.samples / audio.context.sampleRate).toFixed(1);
      } else if (message.type === "error" && message.code !== DISABLED) {
        setState("error", message.code + " " + message.error + ": " + message.message);
      }
    };
    ws.onclose = (event) => {
      ready = false;
      if (!wanted) return setState("idle");
      if (event.code === DISABLED) {
        // Not the end: the microphone stays on (nothing is sent) and the page asks again.
        const wait = disabledWait;
        disabledWait = Math.min(disabledWait * 2, DISABLED_RETRY_MS[1]);
        setState("disabled", "asking again in " + Math.round(wait / 1000) + " s");
        notice("An admin has disabled this device, so the server takes no audio from it. " +
          "Keep this page open: it asks again every so often (now in " + Math.round(wait / 1000) +
          " s) and starts streaming by itself as soon as the device is enabled.");
        setTimeout(() => wanted && connect(), wait);
        return;
      }
      if (FATAL(event.code)) {
        wanted = false;
        $("start").disabled = false;
        $("stop").disabled = true;
        if ($("state").dataset.state !== "error") setState("error", "closed " + event.code);
        return;
      }
      setState("reconnecting", "in " + (backoff / 1000).toFixed(1) + " s");
      setTimeout(() => wanted && connect(), backoff);
      backoff = Math.min(backoff * 2, 10000);
    };
  }

  $("device-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    notice("");
    $("start").disabled = true;
    $("stop").disabled = false;
    wanted = true;
    try {
      if (!audio) await startAudio();
    } catch (error) {
      wanted = false;
      $("start").disabled = false;
      $("stop").disabled = true;
      setState("error", "microphone");
      return notice(microphoneProblem(error));
    }
    connect();
  });

  $("stop").addEventListener("click", () => {
    wanted = false;
    notice("");
    if (ws) ws.close(1000);
    if (audio) {
      audio.stream.getTracks().forEach((track) => track.stop());
      audio.context.close();
      audio = null;
    }
    $("start").disabled = false;
    $("stop").disabled = true;
    setState("idle");
  });
})();
