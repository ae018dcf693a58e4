#![no_main]

#[path = "../checks/gateway.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::messages_request(data));
