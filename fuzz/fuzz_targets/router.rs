#![no_main]
//! See `wasmgate::fuzzing::router`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| wasmgate::fuzzing::router(data));
