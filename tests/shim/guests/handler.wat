;; A wasi:http/incoming-handler@0.2.0 guest written by hand, for the shim's tests.
;; Routes (by path prefix, inside the guest):
;;   /trap   -> unreachable (a trap)
;;   /spin   -> loops forever (a timeout)
;;   /fail   -> sets an error response (response-outparam.set with err(DNS-timeout))
;;   /grow   -> grows memory by 1600 pages (100 MiB); traps when that fails
;;   /echo   -> streams the request body back, 64 KiB at a time
;;   /cfg/K  -> the value of K from wasi:config/store ("none" when unset, "error" on error)
;;   /kvs/K  -> wasi:keyvalue "default" bucket: a request body is stored under K first; answers
;;              the value of K ("none" when absent, "error" on error)
;;   other   -> 200, body "path=<path-with-query>\n" then "name: value\n" per request header
;; Build: see build.sh next to this file.
(module
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-request.path-with-query" (func $path (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-request.headers" (func $req_headers (param i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-request.consume" (func $consume (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-body.stream" (func $body_stream (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]fields.entries" (func $entries (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[constructor]fields" (func $fields_new (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]fields.append" (func $append (param i32 i32 i32 i32 i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[constructor]outgoing-response" (func $resp_new (param i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-response.set-status-code" (func $set_status (param i32 i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-response.body" (func $resp_body (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-body.write" (func $body_write (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[static]outgoing-body.finish" (func $body_finish (param i32 i32 i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[static]response-outparam.set" (func $outparam_set (param i32 i32 i32 i32 i64 i32 i32 i32 i32)))
  (import "cm32p2|wasi:io/streams@0.2" "[method]input-stream.blocking-read" (func $read (param i32 i64 i32)))
  (import "cm32p2|wasi:io/streams@0.2" "[method]output-stream.blocking-write-and-flush" (func $write (param i32 i32 i32 i32)))
  (import "cm32p2|wasi:io/streams@0.2" "output-stream_drop" (func $out_drop (param i32)))
  (import "cm32p2|wasi:io/streams@0.2" "input-stream_drop" (func $in_drop (param i32)))
  (import "cm32p2|wasi:config/store@0.2.0-draft-2024-09-27" "get" (func $cfg_get (param i32 i32 i32)))
  (import "cm32p2|wasi:keyvalue/store@0.2.0-draft2" "open" (func $kv_open (param i32 i32 i32)))
  (import "cm32p2|wasi:keyvalue/store@0.2.0-draft2" "[method]bucket.get" (func $kv_get (param i32 i32 i32 i32)))
  (import "cm32p2|wasi:keyvalue/store@0.2.0-draft2" "[method]bucket.set"
    (func $kv_set (param i32 i32 i32 i32 i32 i32)))

  (memory (export "cm32p2_memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (global $buf (mut i32) (i32.const 0))
  (global $buflen (mut i32) (i32.const 0))
  (data (i32.const 1024) "path=")
  (data (i32.const 1040) ": ")
  (data (i32.const 1044) "\n")
  (data (i32.const 1048) "content-type")
  (data (i32.const 1064) "text/plain")
  (data (i32.const 1080) "error")
  (data (i32.const 1088) "none")
  (data (i32.const 1096) "default")

  ;; bump allocator; grows memory on demand
  (func $realloc (export "cm32p2_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32) (local $end i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get 2))))
    (local.set $end (i32.add (local.get $p) (local.get 3)))
    (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
      (then (if (i32.eq (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end)
                  (i32.mul (memory.size) (i32.const 65536))) (i32.const 16)) (i32.const 1))) (i32.const -1))
              (then unreachable))))
    (global.set $heap (local.get $end))
    (local.get $p))
  (func (export "cm32p2_initialize"))

  ;; does the string at (ptr,len) start with the 5 bytes at 'lit'?
  (func $starts (param $ptr i32) (param $len i32) (param $lit i64) (result i32)
    (if (i32.lt_u (local.get $len) (i32.const 5)) (then (return (i32.const 0))))
    (i64.eq (i64.and (i64.load (local.get $ptr)) (i64.const 0xffffffffff)) (local.get $lit)))

  ;; append to the response buffer (64 KiB; longer output is cut)
  (func $put (param $ptr i32) (param $len i32)
    (if (i32.gt_u (i32.add (global.get $buflen) (local.get $len)) (i32.const 65536)) (then (return)))
    (memory.copy (i32.add (global.get $buf) (global.get $buflen)) (local.get $ptr) (local.get $len))
    (global.set $buflen (i32.add (global.get $buflen) (local.get $len))))

  (func $write_all (param $out i32) (param $ptr i32) (param $len i32)
    (call $write (local.get $out) (local.get $ptr) (local.get $len) (i32.const 64))
    (if (i32.load8_u (i32.const 64)) (then unreachable)))

  ;; sets a response with status and content-type, returns the output stream; body handle at 48
  (func $respond (param $outparam i32) (param $status i32) (result i32)
    (local $h i32) (local $resp i32)
    (local.set $h (call $fields_new))
    (call $append (local.get $h) (i32.const 1048) (i32.const 12) (i32.const 1064) (i32.const 10) (i32.const 64))
    (local.set $resp (call $resp_new (local.get $h)))
    (drop (call $set_status (local.get $resp) (local.get $status)))
    (call $resp_body (local.get $resp) (i32.const 32))
    (i32.store (i32.const 48) (i32.load (i32.const 36)))
    (call $outparam_set (local.get $outparam) (i32.const 0) (local.get $resp) (i32.const 0) (i64.const 0)
                        (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
    (call $body_write (i32.load (i32.const 48)) (i32.const 32))
    (i32.load (i32.const 36)))

  (func $finish (param $out i32)
    (call $out_drop (local.get $out))
    (call $body_finish (i32.load (i32.const 48)) (i32.const 0) (i32.const 0) (i32.const 128)))

  (func $handle (export "cm32p2|wasi:http/incoming-handler@0.2|handle") (param $req i32) (param $outparam i32)
    (local $p i32) (local $n i32) (local $out i32) (local $in i32) (local $i i32) (local $e i32)
    (local $mark i32)
    (call $path (local.get $req) (i32.const 16))
    (local.set $p (i32.load (i32.const 20)))
    (local.set $n (i32.load (i32.const 24)))
    ;; "/trap"
    (if (call $starts (local.get $p) (local.get $n) (i64.const 0x706172742f)) (then unreachable))
    ;; "/spin"
    (if (call $starts (local.get $p) (local.get $n) (i64.const 0x6e6970732f))
      (then (loop $forever (br $forever))))
    ;; "/fail"
    (if (call $starts (local.get $p) (local.get $n) (i64.const 0x6c6961662f))
      (then
        (call $outparam_set (local.get $outparam) (i32.const 1) (i32.const 0) (i32.const 0) (i64.const 0)
                            (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
        (return)))
    ;; "/grow"
    (if (call $starts (local.get $p) (local.get $n) (i64.const 0x776f72672f))
      (then (if (i32.eq (memory.grow (i32.const 1600)) (i32.const -1)) (then unreachable))))
    ;; "/echo"
    (if (call $starts (local.get $p) (local.get $n) (i64.const 0x6f6863652f))
      (then
        (call $consume (local.get $req) (i32.const 32))
        (call $body_stream (i32.load (i32.const 36)) (i32.const 32))
        (local.set $in (i32.load (i32.const 36)))
        (local.set $out (call $respond (local.get $outparam) (i32.const 200)))
        (local.set $mark (global.get $heap))
        (block $done
          (loop $more
            (call $read (local.get $in) (i64.const 65536) (i32.const 16))
            (br_if $done (i32.load8_u (i32.const 16)))
            (call $write_all (local.get $out) (i32.load (i32.const 20)) (i32.load (i32.const 24)))
            (global.set $heap (local.get $mark))
            (br $more)))
        (call $in_drop (local.get $in))
        (call $finish (local.get $out))
        (return)))
    ;; "/cfg/<key>"
    (if (call $starts (local.get $p) (local.get $n) (i64.const 0x2f6766632f))
      (then
        (call $cfg_get (i32.add (local.get $p) (i32.const 5)) (i32.sub (local.get $n) (i32.const 5))
                       (i32.const 256))
        (local.set $out (call $respond (local.get $outparam) (i32.const 200)))
        (if (i32.load8_u (i32.const 256))
          (then (call $write_all (local.get $out) (i32.const 1080) (i32.const 5)))
          (else
            (if (i32.load8_u (i32.const 260))
              (then (call $write_all (local.get $out) (i32.load (i32.const 264)) (i32.load (i32.const 268))))
              (else (call $write_all (local.get $out) (i32.const 1088) (i32.const 4))))))
        (call $finish (local.get $out))
        (return)))
    ;; "/kvs/<key>"
    (if (call $starts (local.get $p) (local.get $n) (i64.const 0x2f73766b2f))
      (then
        (call $kv_open (i32.const 1096) (i32.const 7) (i32.const 256))
        (local.set $e (i32.load (i32.const 260)))
        (local.set $p (i32.add (local.get $p) (i32.const 5)))
        (local.set $n (i32.sub (local.get $n) (i32.const 5)))
        (local.set $i (i32.load8_u (i32.const 256)))  ;; 1 when open failed
        (call $consume (local.get $req) (i32.const 32))
        (call $body_stream (i32.load (i32.const 36)) (i32.const 32))
        (local.set $in (i32.load (i32.const 36)))
        (call $read (local.get $in) (i64.const 65536) (i32.const 16))
        (if (i32.eqz (local.get $i))
          (then
            (if (i32.and (i32.eqz (i32.load8_u (i32.const 16))) (i32.ne (i32.load (i32.const 24)) (i32.const 0)))
              (then (call $kv_set (local.get $e) (local.get $p) (local.get $n)
                                  (i32.load (i32.const 20)) (i32.load (i32.const 24)) (i32.const 272))))
            (call $kv_get (local.get $e) (local.get $p) (local.get $n) (i32.const 288))))
        (local.set $out (call $respond (local.get $outparam) (i32.const 200)))
        (if (i32.or (local.get $i) (i32.load8_u (i32.const 288)))
          (then (call $write_all (local.get $out) (i32.const 1080) (i32.const 5)))
          (else
            (if (i32.load8_u (i32.const 292))
              (then (call $write_all (local.get $out) (i32.load (i32.const 296)) (i32.load (i32.const 300))))
              (else (call $write_all (local.get $out) (i32.const 1088) (i32.const 4))))))
        (call $finish (local.get $out))
        (return)))
    ;; default: path and headers, gathered in memory and written once
    (local.set $out (call $respond (local.get $outparam) (i32.const 200)))
    (global.set $buf (call $realloc (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 65536)))
    (global.set $buflen (i32.const 0))
    (call $put (i32.const 1024) (i32.const 5))
    (call $put (local.get $p) (local.get $n))
    (call $put (i32.const 1044) (i32.const 1))
    (call $entries (call $req_headers (local.get $req)) (i32.const 16))
    (local.set $e (i32.load (i32.const 16)))
    (local.set $n (i32.load (i32.const 20)))
    (local.set $i (i32.const 0))
    (block $end
      (loop $next
        (br_if $end (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $p (i32.add (local.get $e) (i32.mul (local.get $i) (i32.const 16))))
        (call $put (i32.load (local.get $p)) (i32.load offset=4 (local.get $p)))
        (call $put (i32.const 1040) (i32.const 2))
        (call $put (i32.load offset=8 (local.get $p)) (i32.load offset=12 (local.get $p)))
        (call $put (i32.const 1044) (i32.const 1))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $write_all (local.get $out) (global.get $buf) (global.get $buflen))
    (call $finish (local.get $out)))

  (func (export "cm32p2|wasi:http/incoming-handler@0.2|handle_post"))
)
