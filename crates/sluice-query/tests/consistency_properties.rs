//! The consistency parser against the pattern its OpenAPI document states:
//! every value the pattern generates is accepted as well-formed (a token may
//! still be one no command answered: 422, not 400), and arbitrary text is
//! refused with a message or accepted, never a panic.

use proptest::prelude::*;
use sluice_query::consistency::{PATTERN, parse};

fn documented() -> impl Strategy<Value = String> {
    let inner = PATTERN.trim_start_matches('^').trim_end_matches('$');
    proptest::string::string_regex(inner).expect("the pattern is a regex proptest can generate from")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn every_documented_value_is_well_formed(value in documented()) {
        if let Err(refused) = parse(&value) {
            prop_assert!(refused.unprocessable, "{value:?} refused as malformed: {}", refused.message);
        }
    }

    #[test]
    fn arbitrary_text_is_answered(value in any::<String>()) {
        if let Err(refused) = parse(&value) {
            prop_assert!(!refused.message.is_empty());
        }
    }
}
