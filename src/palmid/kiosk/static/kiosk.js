/* palmid kiosk: shared helpers (device setup, API calls, camera, guidance, idle reset). No dependencies. */
"use strict";

const Kiosk = (() => {
  const KEY_ITEM = "palmid.kiosk.apiKey";
  const MODE_ITEM = "palmid.kiosk.mode";
  const IDLE_RESET_MS = 120000;
  const MODES = {
    entry: { label: "Check in", title: "Welcome!", welcome: "You are checked in." },
    pay: { label: "Pay", title: "Recognised", welcome: "Your payment is being completed at the till." },
    age: { label: "Age check", title: "Recognised", welcome: "Staff will complete your age check." },
  };

  /* Copy of /kiosk/guidance.json (capture GUIDANCE + service codes), used only if that cannot be loaded. */
  const FALLBACK_GUIDANCE = {
    empty_image: "No photo was received. Please try again.",
    unreadable_image: "The photo could not be read. Please try again.",
    too_dark: "It is too dark. Please move to a brighter place.",
    too_bright: "It is too bright. Please avoid direct light on your hand.",
    blurry: "The photo is blurry. Please hold your hand still.",
    move_closer: "Please move your hand closer to the camera.",
    move_back: "Please move your hand a little further from the camera.",
    center_hand: "Please move your hand to the centre of the picture.",
    open_hand: "Please open your hand and spread your fingers.",
    show_palm: "Please turn your palm towards the camera.",
    no_skin_colour: "Please hold your own hand over the camera.",
    no_hand: "No hand was found. Please show your open palm to the camera.",
    multiple_hands: "Please show only one hand.",
    roi_failed: "Your palm could not be measured. Please hold your open palm flat, facing the camera.",
    different_palm: "Please use the same hand for every photo.",
  };
  const DEFAULT_GUIDANCE = "Please try again: hold your open palm flat, facing the camera.";
  let guidanceTable = null;

  function apiKey() {
    return window.localStorage.getItem(KEY_ITEM) || "";
  }
  function mode() {
    const stored = window.localStorage.getItem(MODE_ITEM) || "entry";
    return Object.prototype.hasOwnProperty.call(MODES, stored) ? stored : "entry";
  }
  function saveSetup(key, chosenMode) {
    window.localStorage.setItem(KEY_ITEM, key);
    window.localStorage.setItem(MODE_ITEM, chosenMode);
  }
  function forgetSetup() {
    window.localStorage.removeItem(KEY_ITEM);
    window.localStorage.removeItem(MODE_ITEM);
  }

  function apiUrl(path) {
    return new URL("../v1/" + path, window.location.href).toString();
  }

  /* One way to call the API: resolves to {ok, status, data} or {ok: false, status, error: {code, message, images}}. */
  async function api(method, path, body) {
    const headers = { Accept: "application/json", Authorization: "Bearer " + apiKey() };
    let response;
    try {
      response = await fetch(apiUrl(path), { method, headers, body, cache: "no-store", credentials: "omit" });
    } catch (err) {
      return { ok: false, status: 0, error: { code: "network_error", message: "The service could not be reached." } };
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (response.ok) return { ok: true, status: response.status, data };
    const error = data && data.error ? data.error : { code: "http_" + response.status, message: "" };
    return {
      ok: false,
      status: response.status,
      error,
      retryAfterS: Number(response.headers.get("Retry-After")) || 0,
    };
  }

  async function loadGuidance() {
    if (guidanceTable) return guidanceTable;
    try {
      const response = await fetch("guidance.json", { cache: "no-store" });
      guidanceTable = response.ok ? (await response.json()).guidance || {} : {};
    } catch (err) {
      guidanceTable = {};
    }
    return guidanceTable;
  }

  function guidanceFor(code) {
    if (guidanceTable && guidanceTable[code]) return guidanceTable[code];
    return FALLBACK_GUIDANCE[code] || DEFAULT_GUIDANCE;
  }

  /* A plain-language sentence for an API failure (never shows scores or internals). */
  function explain(result) {
    const code = (result.error && result.error.code) || "";
    if (result.status === 0) return "The kiosk cannot reach the service right now. Nothing was saved.";
    if (code === "purpose_not_consented") {
      return "Your palm is not set up for this. Please use the usual way, or ask a member of staff.";
    }
    if (result.status === 401 || result.status === 403) {
      return "This kiosk is not set up correctly. Please ask a member of staff.";
    }
    if (result.status === 429) {
      const wait = result.retryAfterS ? " Please wait " + result.retryAfterS + " seconds." : " Please wait a moment.";
      return "Too many attempts." + wait;
    }
    if (code.startsWith("consent")) return "Your consent could not be recorded, so nothing was done. Please start again.";
    if (result.status === 422 || result.status === 413 || result.status === 415) return guidanceFor(code);
    if (result.status >= 500) return "Something went wrong on our side. Nothing was saved.";
    return "Something went wrong. Please try again.";
  }

  function show(id) {
    document.querySelectorAll("[data-screen]").forEach((el) => {
      el.hidden = el.id !== id;
    });
    const screen = document.getElementById(id);
    const heading = screen && screen.querySelector("h1, h2");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus();
    }
    document.body.dataset.current = id;
  }

  function say(element, text, warn) {
    element.textContent = text;
    element.classList.toggle("warn", Boolean(warn));
  }

  class Camera {
    constructor(video) {
      this.video = video;
      this.stream = null;
    }
    async start() {
      if (this.stream) return;
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        throw new Error("camera_unavailable");
      }
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: false,
        video: { facingMode: "environment", width: { ideal: 1280 }, height: { ideal: 960 } },
      });
      this.video.srcObject = this.stream;
      await this.video.play();
      if (!this.video.videoWidth) {
        await new Promise((resolve) => this.video.addEventListener("loadedmetadata", resolve, { once: true }));
      }
    }
    /* One JPEG of the current frame, kept in memory only. */
    async capture() {
      const canvas = document.createElement("canvas");
      canvas.width = this.video.videoWidth;
      canvas.height = this.video.videoHeight;
      canvas.getContext("2d").drawImage(this.video, 0, 0, canvas.width, canvas.height);
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
      canvas.width = 0;
      canvas.height = 0;
      if (!blob) throw new Error("capture_failed");
      return blob;
    }
    stop() {
      if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
      this.stream = null;
      this.video.srcObject = null;
    }
  }

  function cameraProblem(err) {
    const name = err && err.name;
    if (name === "NotAllowedError") return "The camera is not allowed on this kiosk. Please ask a member of staff.";
    if (name === "NotFoundError") return "No camera was found on this kiosk. Please ask a member of staff.";
    return "The camera could not be started. Please ask a member of staff.";
  }

  /* Back to the start page after a while without a touch or key press, so no one sees the last person's data. */
  function idleReset(onReset, idleMs) {
    let timer = null;
    const arm = () => {
      window.clearTimeout(timer);
      timer = window.setTimeout(onReset, idleMs || IDLE_RESET_MS);
    };
    ["pointerdown", "keydown", "touchstart"].forEach((name) => window.addEventListener(name, arm, { passive: true }));
    arm();
  }

  /* One palm photo -> POST /v1/identifications, shared by check-in and my data. A quality problem (422) keeps the
     camera open with guidance; a match calls onMatch(data); anything else calls onFailure(text). */
  function palmScan({ camera, guidance, takeButton, noMatchText, beforeScan, extendForm, onMatch, onFailure }) {
    async function scan() {
      if (beforeScan) beforeScan();
      show("scan");
      say(guidance, 'Hold your open hand flat inside the outline, then press "Take photo".', false);
      takeButton.disabled = true;
      try {
        await camera.start();
      } catch (err) {
        camera.stop();
        onFailure(cameraProblem(err));
        return;
      }
      takeButton.disabled = false;
      takeButton.focus();
    }

    async function takePhoto() {
      takeButton.disabled = true;
      let photo;
      try {
        photo = await camera.capture();
      } catch (err) {
        say(guidance, "The photo could not be taken. Please try again.", true);
        takeButton.disabled = false;
        return;
      }
      show("sending");
      const form = new FormData();
      form.append("image", photo, "palm.jpg");
      if (extendForm) extendForm(form);
      photo = null;
      const result = await api("POST", "identifications", form);
      if (result.ok && result.data && result.data.matched === true) {
        camera.stop();
        await onMatch(result.data);
        return;
      }
      if (result.ok) {
        onFailure(noMatchText);
        return;
      }
      if (result.status === 422) {
        // A quality problem: stay on the camera and guide the person.
        show("scan");
        say(guidance, explain(result), true);
        takeButton.disabled = false;
        takeButton.focus();
        return;
      }
      onFailure(explain(result));
    }

    return { scan, takePhoto };
  }

  /* Pages that call the API refuse to start until the operator has stored a merchant key on this device. */
  function requireSetup() {
    if (apiKey()) return true;
    show("not-set-up");
    return false;
  }

  return {
    MODES,
    apiKey,
    mode,
    saveSetup,
    forgetSetup,
    api,
    loadGuidance,
    guidanceFor,
    explain,
    show,
    say,
    Camera,
    cameraProblem,
    palmScan,
    idleReset,
    requireSetup,
  };
})();
