#![no_main]
//! See `wasmgate::fuzzing::config`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmgate::fuzzing::config(data));
