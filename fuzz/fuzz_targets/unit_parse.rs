//! A unit file is operator input: parsing and validating any text must end in a `Unit` or in
//! diagnostics, never in a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(diagnostics) = containerctl::unit::parse("fuzz", "fuzz.toml", text) {
            for d in diagnostics {
                // Rendering quotes the source line: it must cope with every span.
                let _ = d.to_string();
            }
        }
    }
});
