"use strict";
// Shared by the three pages, loaded first. A browser signs in with a one-time link
// (`wellmon login ROLE`); the server trades its code for a session cookie and redirects to
// the bare address, so no code or token stays in the address bar or the history. The
// session expires `dashboard.session_hours` after the page last renewed it: an open page
// (a kiosk runs for days) renews it every hour.
(function keepSessionAlive() {
  const RENEW_MS = 3600 * 1000;
  setInterval(() => {
    fetch("/api/session", { credentials: "same-origin", cache: "no-store" }).catch(() => {});
  }, RENEW_MS);
})();
