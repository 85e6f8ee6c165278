/* Start page and the operator setup screen (reachable only at /kiosk/#setup). */
"use strict";

(() => {
  const status = document.getElementById("setup-status");

  function render() {
    if (window.location.hash === "#setup") {
      Kiosk.show("setup");
      document.getElementById("setup-mode").value = Kiosk.mode();
      status.textContent = Kiosk.apiKey() ? "A key is stored on this device." : "No key is stored on this device.";
      return;
    }
    Kiosk.show("home");
    document.getElementById("checkin-label").textContent = Kiosk.MODES[Kiosk.mode()].label;
    document.getElementById("home-not-set-up").hidden = Boolean(Kiosk.apiKey());
  }

  document.getElementById("setup-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const keyInput = document.getElementById("setup-key");
    const key = keyInput.value.trim();
    if (!key) {
      status.textContent = "Enter the merchant API key.";
      keyInput.focus();
      return;
    }
    Kiosk.saveSetup(key, document.getElementById("setup-mode").value);
    keyInput.value = "";
    status.textContent = "Saved. A key is stored on this device.";
  });
  document.getElementById("setup-forget").addEventListener("click", () => {
    Kiosk.forgetSetup();
    status.textContent = "Removed. No key is stored on this device.";
  });
  window.addEventListener("hashchange", render);
  render();
})();
