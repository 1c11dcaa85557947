// Spin JS app (@spinframework/build-tools 1.0.7) used by the shim's tests.
// Built at test time: npx j2w -i src/index.js -o dist/app.wasm
addEventListener("fetch", (event) => event.respondWith(handle(event.request)));

async function handle(request) {
  const url = new URL(request.url);
  if (url.pathname.endsWith("/echo")) {
    const body = await request.arrayBuffer();
    return new Response(body, { status: 200, headers: { "x-app": "js" } });
  }
  const route = request.headers.get("spin-matched-route") || "";
  return new Response(`hello from JS ${request.method} ${url.pathname} route=${route}`, {
    status: 200,
    headers: { "content-type": "text/plain", "x-app": "js" },
  });
}
