"""The node runtime: Spin apps on wasmtime (HTTP, Redis, MQTT and command triggers), also behind containerd's
shim v2 (`shim.containerd`).

Modules, from the edge inwards:

- `runner` / `worker` / `__main__`: run an app in the foreground (`spindle shim up`, container
  mode), extra worker processes on one listening socket, SIGTERM drain.
- `http1`: the HTTP/1.1 front end (strict parsing, deadlines, one event loop for all connections).
- `server`: the HTTP trigger (routing, Spin headers and reserved routes, guest threads).
- `redis_trigger`, `mqtt_trigger`: the Redis and MQTT triggers (subscribers on their own threads);
  the command trigger runs from `runner`.
- `app`: loading an app: manifest → variables → compiled components → executors.
- `manifest`, `runtime_config`, `routing`, `variables`: pure parsing and rules.
- `executors`: wasi:http/incoming-handler@0.2, fermyon:spin/inbound-http, WAGI,
  fermyon:spin/inbound-redis, spin-trigger-mqtt's handle-message, wasi:cli/run.
- `wasi_http`, `filesystem`, `keyvalue`, `sqlite`, `outbound`, `outbound_redis`, `outbound_rdbms`,
  `chaining`: host implementations (Python).
- `hostlink` / `codec`: linking imports to Python through wasmtime's C API with codecs
  reflected once per function type.
- `bytestrings` / `wasmbin`: a wasi:http guest wrapped with a stream adapter component so body
  bytes cross the C API as one vector, not one value per byte (`wasmbin` reads the binary).
- `engine`: the Engine (epoch interruption) and the on-disk artifact cache (baseline compile first
  for large guests, optimized in the background).
- `loadgen`: a small keep-alive HTTP load generator for the benchmark and load test.

Errors: one tree, drawn in `shim.errors`.
"""
