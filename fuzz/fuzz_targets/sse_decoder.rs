#![no_main]

#[path = "../checks/backstop.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::sse_decoder(data));
