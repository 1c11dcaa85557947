;; An echo WAGI handler (WASI preview 1 command): copies the request body (stdin) into the
;; response body, after a text/plain header. A second entrypoint, `serve_page`, answers with
;; the component's page static/index.html (mounted from its `files`, preopened at "/").
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "content-type: text/plain\n\n")
  (data (i32.const 128) "content-type: text/html; charset=utf-8\n\n")
  (data (i32.const 192) "static/index.html")
  (data (i32.const 224) "status: 404\ncontent-type: text/plain\n\nno page\n")
  ;; Write `len` bytes at `base` to stdout.
  (func $write (param $base i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $base))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16))))
  ;; Copy everything readable from `fd` to stdout in 4 KiB chunks (buffer at 1024), until EOF.
  (func $copy (param $fd i32)
    (local $n i32)
    (block $done
      (loop $more
        (i32.store (i32.const 32) (i32.const 1024))
        (i32.store (i32.const 36) (i32.const 4096))
        (br_if $done (call $fd_read (local.get $fd) (i32.const 32) (i32.const 1) (i32.const 40)))
        (local.set $n (i32.load (i32.const 40)))
        (br_if $done (i32.eqz (local.get $n)))
        (call $write (i32.const 1024) (local.get $n))
        (br $more))))
  (func (export "_start")
    (call $write (i32.const 64) (i32.const 26))
    (call $copy (i32.const 0)))
  (func (export "serve_page")
    ;; Open static/index.html for reading (right fd_read = 2) under the first preopen (fd 3).
    (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 192) (i32.const 17) (i32.const 0)
                         (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 48))
      (then (call $write (i32.const 224) (i32.const 46)))
      (else
        (call $write (i32.const 128) (i32.const 40))
        (call $copy (i32.load (i32.const 48)))))))
