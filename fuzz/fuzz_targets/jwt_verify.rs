//! Bearer tokens come from the network: verification must refuse anything this daemon did not
//! sign, without panicking. The fuzzer cannot forge the HMAC, so every input must be refused.
#![no_main]

use containerctl::auth::Auth;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let auth = Auth::in_memory(b"fuzzing-secret-fuzzing-secret-32", Vec::new());
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(auth.verify(text).is_err(), "an unsigned token was accepted: {text:?}");
    }
});
