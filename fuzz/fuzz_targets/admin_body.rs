#![no_main]
//! See `wasmgate::fuzzing::admin_body`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmgate::fuzzing::admin_body(data));
