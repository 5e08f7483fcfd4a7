//! A join token arrives from whoever holds one (or guesses one): decoding must never panic, and
//! what decodes must encode to a token that decodes to the same.
#![no_main]

use containerctl::cluster::token::JoinToken;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(t) = JoinToken::decode(text) {
            let again = JoinToken::decode(&t.encode()).expect("an encoded token decodes");
            assert_eq!(again.encode(), t.encode());
        }
    }
});
