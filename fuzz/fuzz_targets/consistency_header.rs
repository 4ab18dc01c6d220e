//! The `Sluice-Consistency` header (and `consistency` parameter) parser
//! against the pattern its OpenAPI document states: arbitrary text is
//! accepted as well-formed exactly when the pattern matches it (a
//! well-formed token no command answered is refused with 422, not 400),
//! and a refusal always says why. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use regex::Regex;
use sluice_core::consistency::{Consistency, PATTERN, from_request, parse};
use std::sync::LazyLock;

static DOCUMENTED: LazyLock<Regex> = LazyLock::new(|| Regex::new(PATTERN).expect("PATTERN is a regex"));

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else { return };
    let parsed = parse(value);
    let well_formed = match &parsed {
        Ok(_) => true,
        Err(refused) => {
            assert!(!refused.message.is_empty(), "{value:?} refused without a reason");
            refused.unprocessable
        }
    };
    assert_eq!(
        well_formed,
        DOCUMENTED.is_match(value),
        "{value:?}: the parser and the documented pattern disagree ({parsed:?})"
    );
    // As a header and as a parameter, alone or together.
    if let Ok(c) = &parsed {
        assert_eq!(from_request(Some(value), None).as_ref(), Ok(c));
        assert_eq!(from_request(None, Some(value)).as_ref(), Ok(c));
        assert_eq!(from_request(Some(value), Some(value)).as_ref(), Ok(c));
        assert_eq!(*c == Consistency::Eventual, c.mode() == "eventual");
    }
});
