// Keeps the page's shell on the tablet so it opens (and says "no connection") while the Pi
// restarts. API calls and the event stream always go to the network: never a stale alarm state.
const CACHE = "checkpoint-shell-v4";
const SHELL = [
  "/",
  "/static/app.js",
  "/static/app.css",
  "/static/allowlist.js",
  "/static/allowlist.css",
  "/static/gates.js",
  "/static/gates.css",
  "/static/review.js",
  "/static/review.css",
  "/static/icon.svg",
  "/static/icon-maskable.svg",
  "/manifest.webmanifest",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/api/") || url.pathname === "/healthz") return;
  // Network first, so an update shows at once; the cache only when the Pi does not answer.
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((c) => c.put(event.request, copy));
        }
        return response;
      })
      .catch(() => caches.match(event.request).then((hit) => hit || Response.error())),
  );
});
