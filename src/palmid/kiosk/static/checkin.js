/* Check-in / pay / age check: one palm photo -> POST /v1/identifications -> a decision (never a score). */
"use strict";

(() => {
  const camera = new Kiosk.Camera(document.getElementById("camera"));
  const guidance = document.getElementById("guidance");
  const takeButton = document.getElementById("take-photo");
  const modeInfo = Kiosk.MODES[Kiosk.mode()];
  const RESULT_SHOWN_MS = 10000;
  /* What the identification is for (issue 8), per kiosk mode. Payments are started by the till, which sends the
     amount and an Idempotency-Key itself, so the "pay" mode stays a plain identification here. */
  const MIN_AGE = 18;
  function addPurpose(form) {
    if (Kiosk.mode() === "entry") form.append("purpose", "entry");
    if (Kiosk.mode() === "age") {
      form.append("purpose", "age_check");
      form.append("min_age", String(MIN_AGE));
    }
  }
  function welcomeText(data) {
    if (Kiosk.mode() === "age" && data.meets_min_age === true) return "Age confirmed: " + MIN_AGE + " or older.";
    return modeInfo.welcome;
  }
  let resultTimer = null;

  /* A decision stays on screen for a few seconds, then the kiosk is ready for the next person. */
  function showResult(id) {
    Kiosk.show(id);
    window.clearTimeout(resultTimer);
    resultTimer = window.setTimeout(ready, RESULT_SHOWN_MS);
  }

  function ready() {
    if (!Kiosk.requireSetup()) return;
    document.querySelectorAll(".mode-label").forEach((el) => {
      el.textContent = modeInfo.label;
    });
    Kiosk.show("ready");
    Kiosk.loadGuidance();
  }

  async function scan() {
    window.clearTimeout(resultTimer);
    Kiosk.show("scan");
    Kiosk.say(guidance, 'Hold your open hand flat inside the outline, then press "Take photo".', false);
    takeButton.disabled = true;
    try {
      await camera.start();
    } catch (err) {
      camera.stop();
      notRecognised(Kiosk.cameraProblem(err));
      return;
    }
    takeButton.disabled = false;
    takeButton.focus();
  }

  function notRecognised(text) {
    camera.stop();
    document.getElementById("nr-text").textContent = text;
    showResult("not-recognised");
  }

  async function takePhoto() {
    takeButton.disabled = true;
    let photo;
    try {
      photo = await camera.capture();
    } catch (err) {
      Kiosk.say(guidance, "The photo could not be taken. Please try again.", true);
      takeButton.disabled = false;
      return;
    }
    Kiosk.show("sending");
    const form = new FormData();
    form.append("image", photo, "palm.jpg");
    addPurpose(form);
    photo = null;
    const result = await Kiosk.api("POST", "identifications", form);
    if (result.ok && result.data && result.data.matched === true) {
      camera.stop();
      document.getElementById("welcome-title").textContent = modeInfo.title;
      document.getElementById("welcome-text").textContent = welcomeText(result.data);
      showResult("welcome");
      return;
    }
    if (result.ok) {
      notRecognised("We could not recognise this palm.");
      return;
    }
    if (result.status === 422) {
      // A quality problem: stay on the camera and guide the person.
      Kiosk.show("scan");
      Kiosk.say(guidance, Kiosk.explain(result), true);
      takeButton.disabled = false;
      takeButton.focus();
      return;
    }
    notRecognised(Kiosk.explain(result));
  }

  document.getElementById("start-scan").addEventListener("click", scan);
  document.getElementById("retry").addEventListener("click", scan);
  takeButton.addEventListener("click", takePhoto);
  window.addEventListener("pagehide", () => camera.stop());
  Kiosk.idleReset(() => {
    camera.stop();
    window.location.href = "./";
  });
  ready();
})();
