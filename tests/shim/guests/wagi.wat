;; A WAGI guest (WASI preview 1 core module) for the shim's tests. Prints CGI headers
;; (status 201), then the request body from stdin, then "--argv--" and each argument on its own
;; line, then "--env--" and each environment variable on its own line.
;; Build: wasm-tools parse wagi.wat -o wagi.wasm (see build.sh)
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $env_get (param i32 i32) (result i32)))
  (memory (export "memory") 4)
  (data (i32.const 1024) "content-type: text/plain\nx-wagi: yes\nstatus: 201\n\n")
  (data (i32.const 1100) "\n--argv--\n")
  (data (i32.const 1120) "--env--\n")

  (func $out (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))

  ;; replace NULs by newlines in [ptr, ptr+len) and print it
  (func $print_nul_list (param $ptr i32) (param $len i32)
    (local $i i32)
    (block $end
      (loop $next
        (br_if $end (i32.ge_u (local.get $i) (local.get $len)))
        (if (i32.eqz (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
          (then (i32.store8 (i32.add (local.get $ptr) (local.get $i)) (i32.const 10))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $out (local.get $ptr) (local.get $len)))

  (func (export "_start")
    (call $out (i32.const 1024) (i32.const 50))
    ;; body: stdin -> stdout through a 64 KiB buffer at 65536
    (block $eof
      (loop $more
        (i32.store (i32.const 16) (i32.const 65536))
        (i32.store (i32.const 20) (i32.const 65536))
        (drop (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 24)))
        (br_if $eof (i32.eqz (i32.load (i32.const 24))))
        (call $out (i32.const 65536) (i32.load (i32.const 24)))
        (br $more)))
    (call $out (i32.const 1100) (i32.const 10))
    (drop (call $args_sizes (i32.const 32) (i32.const 36)))
    (drop (call $args_get (i32.const 2048) (i32.const 131072)))
    (call $print_nul_list (i32.const 131072) (i32.load (i32.const 36)))
    (call $out (i32.const 1120) (i32.const 8))
    (drop (call $env_sizes (i32.const 32) (i32.const 36)))
    (drop (call $env_get (i32.const 2048) (i32.const 196608)))
    (call $print_nul_list (i32.const 196608) (i32.load (i32.const 36))))
)
