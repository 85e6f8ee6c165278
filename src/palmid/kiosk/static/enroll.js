/* Enrollment: notice -> explicit consent -> several palm photos with guidance -> one API call -> result. */
"use strict";

(() => {
  const PHOTOS_NEEDED = 4;
  const camera = new Kiosk.Camera(document.getElementById("camera"));
  const guidance = document.getElementById("guidance");
  const progress = document.getElementById("photo-progress");
  const count = document.getElementById("photo-count");
  const takeButton = document.getElementById("take-photo");
  let notice = null;
  let consent = null;
  let photos = [];

  function step(id) {
    ["step-notice", "step-photos", "step-done"].forEach((stepId) => {
      const el = document.getElementById(stepId);
      if (stepId === id) el.setAttribute("aria-current", "step");
      else el.removeAttribute("aria-current");
    });
  }

  function updateProgress() {
    progress.value = photos.length;
    progress.max = PHOTOS_NEEDED;
    count.textContent = "Photo " + photos.length + " of " + PHOTOS_NEEDED;
  }

  function renderNotice(body) {
    const box = document.getElementById("notice-text");
    box.replaceChildren();
    const title = document.createElement("h2");
    title.textContent = body.title;
    box.appendChild(title);
    body.sections.forEach((section) => {
      const heading = document.createElement("h2");
      heading.textContent = section.heading;
      const text = document.createElement("p");
      text.textContent = section.body;
      box.append(heading, text);
    });
    const version = document.createElement("p");
    version.className = "version";
    version.textContent = "Notice version " + body.version;
    box.appendChild(version);
  }

  async function start() {
    if (!Kiosk.requireSetup()) return;
    step("step-notice");
    Kiosk.show("notice");
    Kiosk.loadGuidance();
    try {
      const response = await fetch("notice.json", { cache: "no-store" });
      if (!response.ok) throw new Error("notice_unavailable");
      notice = await response.json();
      renderNotice(notice);
    } catch (err) {
      notice = null;
      fail("The notice could not be loaded, so we cannot ask for your consent.");
    }
  }

  async function beginCapture() {
    photos = [];
    updateProgress();
    step("step-photos");
    Kiosk.show("capture");
    takeButton.disabled = true;
    try {
      await camera.start();
    } catch (err) {
      camera.stop();
      fail(Kiosk.cameraProblem(err));
      return;
    }
    takeButton.disabled = false;
    takeButton.focus();
  }

  function fail(reason) {
    camera.stop();
    photos = [];
    step("step-done");
    document.getElementById("failure-reason").textContent = reason;
    Kiosk.show("failure");
  }

  async function submit() {
    Kiosk.show("sending");
    const form = new FormData();
    photos.forEach((blob, index) => form.append("images", blob, "palm-" + (index + 1) + ".jpg"));
    form.append("consent", JSON.stringify(consent));
    const result = await Kiosk.api("POST", "enrollments", form);
    if (result.ok) {
      photos = [];
      camera.stop();
      step("step-done");
      Kiosk.show("success");
      return;
    }
    const images = result.error && Array.isArray(result.error.images) ? result.error.images : [];
    if (images.length && result.status >= 400 && result.status < 500) {
      // Keep the good photos, retake the refused ones, guided by the first refusal's reason code.
      const refused = new Set(images.map((issue) => issue.index));
      photos = photos.filter((_, index) => !refused.has(index));
      updateProgress();
      Kiosk.show("capture");
      Kiosk.say(guidance, Kiosk.guidanceFor(images[0].code) + " Take " + (PHOTOS_NEEDED - photos.length) +
        " more photo" + (PHOTOS_NEEDED - photos.length === 1 ? "" : "s") + ".", true);
      takeButton.disabled = false;
      takeButton.focus();
      return;
    }
    if (String(result.error.code || "").startsWith("consent")) consent = null;
    if (result.status === 409 && result.error.code === "already_enrolled") {
      fail("This palm is already enrolled, so you can already use it. To see or erase your data, choose My data.");
      return;
    }
    fail(Kiosk.explain(result));
  }

  async function takePhoto() {
    takeButton.disabled = true;
    try {
      photos.push(await camera.capture());
    } catch (err) {
      Kiosk.say(guidance, "The photo could not be taken. Please try again.", true);
      takeButton.disabled = false;
      return;
    }
    updateProgress();
    if (photos.length >= PHOTOS_NEEDED) {
      await submit();
      return;
    }
    Kiosk.say(guidance, "Got it. Move your hand slightly and take photo " + (photos.length + 1) + " of " +
      PHOTOS_NEEDED + ".", false);
    takeButton.disabled = false;
    takeButton.focus();
  }

  document.getElementById("consent-continue").addEventListener("click", () => {
    const box = document.getElementById("consent-box");
    const error = document.getElementById("consent-error");
    if (!notice) return;
    if (!box.checked) {
      error.hidden = false;
      box.focus();
      return;
    }
    error.hidden = true;
    consent = { notice_version: notice.version, purposes: notice.purposes, accepted_at: new Date().toISOString() };
    beginCapture();
  });
  document.getElementById("consent-decline").addEventListener("click", () => {
    consent = null;
    step("step-done");
    Kiosk.show("declined");
  });
  takeButton.addEventListener("click", takePhoto);
  document.getElementById("failure-retry").addEventListener("click", () => {
    if (notice && consent) {
      beginCapture();
      return;
    }
    document.getElementById("consent-box").checked = false;
    start();
  });
  window.addEventListener("pagehide", () => camera.stop());
  Kiosk.idleReset(() => {
    camera.stop();
    window.location.href = "./";
  });
  start();
})();
