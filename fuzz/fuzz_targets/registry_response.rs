#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| partial_fuzz::registry_response(data));
