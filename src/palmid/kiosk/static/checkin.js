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

  function notRecognised(text) {
    camera.stop();
    document.getElementById("nr-text").textContent = text;
    showResult("not-recognised");
  }

  const { scan, takePhoto } = Kiosk.palmScan({
    camera,
    guidance,
    takeButton,
    noMatchText: "We could not recognise this palm.",
    beforeScan: () => window.clearTimeout(resultTimer),
    extendForm: addPurpose,
    onMatch: (data) => {
      document.getElementById("welcome-title").textContent = modeInfo.title;
      document.getElementById("welcome-text").textContent = welcomeText(data);
      showResult("welcome");
    },
    onFailure: notRecognised,
  });

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
