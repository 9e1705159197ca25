#![no_main]
//! See `wasmgate::fuzzing::plugin_configure`.

libfuzzer_sys::fuzz_target!(init: wasmgate::fuzzing::plugin_configure_init(), |data: &[u8]| {
    wasmgate::fuzzing::plugin_configure(data)
});
