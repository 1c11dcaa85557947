;; A WAGI guest that reads /data/hello.txt from its `files` (preopened read-only at "/") and
;; tries to create /data/new.txt, for the shim's tests. Prints the file, then
;; "write=denied" or "write=allowed". Build: wasm-tools parse wagi_files.wat -o wagi_files.wasm
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 1024) "content-type: text/plain\n\n")
  (data (i32.const 1100) "data/hello.txt")
  (data (i32.const 1120) "data/new.txt")
  (data (i32.const 1140) "write=denied\n")
  (data (i32.const 1160) "write=allowed\n")
  (data (i32.const 1180) "open failed\n")
  (func $out (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (call $out (i32.const 1024) (i32.const 26))
    (if (i32.eqz (call $path_open (i32.const 3) (i32.const 0) (i32.const 1100) (i32.const 14)
                       (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 16)))
      (then
        (i32.store (i32.const 32) (i32.const 4096))
        (i32.store (i32.const 36) (i32.const 4096))
        (drop (call $fd_read (i32.load (i32.const 16)) (i32.const 32) (i32.const 1) (i32.const 40)))
        (call $out (i32.const 4096) (i32.load (i32.const 40))))
      (else (call $out (i32.const 1180) (i32.const 12))))
    (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 1120) (i32.const 12)
              (i32.const 1) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 16))
      (then (call $out (i32.const 1140) (i32.const 13)))
      (else (call $out (i32.const 1160) (i32.const 14)))))
)
