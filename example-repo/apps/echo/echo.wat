;; An echo WAGI handler (WASI preview 1 command): copies the request body (stdin) into the
;; response body, after a text/plain header.
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "content-type: text/plain\n\n")
  ;; Write `len` bytes at `base` to stdout.
  (func $write (param $base i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $base))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16))))
  (func (export "_start")
    (local $n i32)
    (call $write (i32.const 64) (i32.const 26))
    ;; Read stdin in 4 KiB chunks into address 1024 and write each chunk out, until EOF.
    (block $done
      (loop $more
        (i32.store (i32.const 32) (i32.const 1024))
        (i32.store (i32.const 36) (i32.const 4096))
        (br_if $done (call $fd_read (i32.const 0) (i32.const 32) (i32.const 1) (i32.const 40)))
        (local.set $n (i32.load (i32.const 40)))
        (br_if $done (i32.eqz (local.get $n)))
        (call $write (i32.const 1024) (local.get $n))
        (br $more)))))
