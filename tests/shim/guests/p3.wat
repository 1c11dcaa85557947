;; A component exporting wasi:http/handler@0.3.0 (a stand-in for spin-sdk >= 4 output),
;; which the shim must refuse at load. Build: see build.sh.
(module
  (memory (export "cm32p2_memory") 1)
  (func (export "cm32p2|wasi:http/handler@0.3|handle"))
)
