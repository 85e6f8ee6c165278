/* My data: palm scan -> identification -> what is stored (export if the service offers it) -> one-button erasure
   with a signed, downloadable receipt. */
"use strict";

(() => {
  const camera = new Kiosk.Camera(document.getElementById("camera"));
  const guidance = document.getElementById("guidance");
  const takeButton = document.getElementById("take-photo");
  let subjectRef = null;
  let receiptUrl = null;

  function humanise(key) {
    const text = String(key).replace(/_/g, " ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }
  const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
  function timeText(value) {
    const when = new Date(value);
    if (Number.isNaN(when.getTime())) return value;
    return when.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short", timeZone: "UTC" }) + " UTC";
  }
  function scalarText(value) {
    if (value === null || value === undefined) return "—";
    if (typeof value === "boolean") return value ? "yes" : "no";
    if (typeof value === "string" && ISO_TIME.test(value)) return timeText(value);
    return String(value);
  }
  function isScalar(value) {
    return value === null || typeof value !== "object";
  }
  function cellText(value) {
    if (isScalar(value)) return scalarText(value);
    if (Array.isArray(value) && value.every(isScalar)) return value.map(scalarText).join(", ");
    return JSON.stringify(value);
  }

  /* Render an export of any shape with textContent only (no HTML from the server is ever interpreted). */
  function renderExport(data, container) {
    container.replaceChildren();
    const facts = document.createElement("dl");
    facts.className = "facts";
    Object.entries(data).forEach(([key, value]) => {
      if (key === "subject_ref") return;
      if (isScalar(value)) {
        const dt = document.createElement("dt");
        dt.textContent = humanise(key);
        const dd = document.createElement("dd");
        dd.textContent = scalarText(value);
        facts.append(dt, dd);
      }
    });
    if (facts.childElementCount) container.appendChild(facts);
    Object.entries(data).forEach(([key, value]) => {
      if (isScalar(value)) return;
      const heading = document.createElement("h2");
      heading.textContent = humanise(key);
      container.appendChild(heading);
      container.appendChild(renderValue(value));
    });
  }

  function renderValue(value) {
    if (Array.isArray(value)) {
      if (!value.length) {
        const empty = document.createElement("p");
        empty.textContent = "None.";
        return empty;
      }
      if (value.every(isScalar)) {
        const list = document.createElement("ul");
        value.forEach((item) => {
          const li = document.createElement("li");
          li.textContent = scalarText(item);
          list.appendChild(li);
        });
        return list;
      }
      const columns = [];
      value.forEach((row) => Object.keys(row || {}).forEach((col) => columns.includes(col) || columns.push(col)));
      const wrapper = document.createElement("div");
      wrapper.className = "table-scroll";
      const table = document.createElement("table");
      table.className = "data";
      wrapper.appendChild(table);
      const head = table.createTHead().insertRow();
      columns.forEach((col) => {
        const th = document.createElement("th");
        th.scope = "col";
        th.textContent = humanise(col);
        head.appendChild(th);
      });
      const body = table.createTBody();
      value.forEach((row) => {
        const tr = body.insertRow();
        columns.forEach((col) => {
          const cell = row ? row[col] : null;
          tr.insertCell().textContent = cellText(cell);
        });
      });
      return wrapper;
    }
    const dl = document.createElement("dl");
    dl.className = "facts";
    Object.entries(value).forEach(([key, item]) => {
      const dt = document.createElement("dt");
      dt.textContent = humanise(key);
      const dd = document.createElement("dd");
      dd.textContent = cellText(item);
      dl.append(dt, dd);
    });
    return dl;
  }

  function intro() {
    if (!Kiosk.requireSetup()) return;
    Kiosk.show("intro");
    Kiosk.loadGuidance();
  }

  function notFound(text) {
    camera.stop();
    document.getElementById("nf-text").textContent = text;
    Kiosk.show("not-found");
  }

  async function showStored(ref) {
    subjectRef = ref;
    document.getElementById("stored-ref").textContent = ref;
    const details = document.getElementById("stored-details");
    const exported = await Kiosk.api("GET", "subjects/" + encodeURIComponent(ref) + "/export");
    if (exported.ok && exported.data && typeof exported.data === "object") {
      renderExport(exported.data, details);
    } else {
      details.replaceChildren();
      const text = document.createElement("p");
      text.textContent = "This service stores, for you: your consent record (notice version, time, shop), your " +
        "encrypted palm template, and a log of when your palm was used, without pictures.";
      details.appendChild(text);
    }
    Kiosk.show("stored");
  }

  const NO_MATCH = "We could not find an enrolled palm matching this one.";
  const { scan, takePhoto } = Kiosk.palmScan({
    camera,
    guidance,
    takeButton,
    noMatchText: NO_MATCH,
    beforeScan: () => {
      subjectRef = null;
    },
    onMatch: async (data) => {
      if (!data.subject_ref) {
        notFound(NO_MATCH);
        return;
      }
      await showStored(data.subject_ref);
    },
    onFailure: notFound,
  });

  async function erase() {
    if (!subjectRef) return;
    const button = document.getElementById("erase");
    button.disabled = true;
    Kiosk.show("sending");
    const result = await Kiosk.api("DELETE", "subjects/" + encodeURIComponent(subjectRef));
    button.disabled = false;
    if (!result.ok) {
      notFound("Erasure did not work: " + Kiosk.explain(result) + " Please ask a member of staff.");
      return;
    }
    const receipt = result.data || {};
    const destroyed = Array.isArray(receipt.destroyed) ? receipt.destroyed.map((item) => humanise(String(item).replace(/:(\d+)$/, " ($1)"))).join(", ") : "";
    document.getElementById("erased-summary").textContent = "Erased at " + scalarText(receipt.erased_at) +
      (destroyed ? ". Destroyed: " + destroyed + "." : ".");
    const text = JSON.stringify(receipt, null, 2);
    document.getElementById("receipt").textContent = text;
    if (receiptUrl) URL.revokeObjectURL(receiptUrl);
    receiptUrl = URL.createObjectURL(new Blob([text + "\n"], { type: "application/json" }));
    const link = document.getElementById("receipt-download");
    link.href = receiptUrl;
    subjectRef = null;
    Kiosk.show("erased");
  }

  document.getElementById("start-scan").addEventListener("click", scan);
  document.getElementById("retry").addEventListener("click", scan);
  document.getElementById("erase").addEventListener("click", erase);
  document.getElementById("receipt-print").addEventListener("click", () => window.print());
  takeButton.addEventListener("click", takePhoto);
  window.addEventListener("pagehide", () => camera.stop());
  // Personal data on screen: back to the start page after one minute without a touch.
  Kiosk.idleReset(() => {
    camera.stop();
    window.location.href = "./";
  }, 60000);
  intro();
})();
