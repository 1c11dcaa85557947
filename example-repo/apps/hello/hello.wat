;; A WAGI handler (WASI preview 1 command): Spin runs `_start` with the request as CGI
;; environment variables and sends what it prints to stdout back as the HTTP response.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; The response: CGI headers, a blank line, the body.
  (data (i32.const 64) "content-type: text/plain\n\nHello from a WAGI module written in WAT, deployed by spindle!\n")
  (func (export "_start")
    ;; One iovec at address 0: { base = 64, len = 88 }; bytes written go to address 16.
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 88))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))))
