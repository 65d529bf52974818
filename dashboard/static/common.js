"use strict";
// Shared by the three pages, loaded first: the token came in the address once and the
// server has put it in a cookie, so it is dropped from the address bar (and so from the
// browser's history, bookmarks and screenshots).
(function dropTokenFromAddressBar() {
  const url = new URL(location.href);
  if (url.searchParams.has("token")) {
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
})();
