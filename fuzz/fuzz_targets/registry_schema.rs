//! The registry's schema parser with arbitrary text, as a client would
//! register it: refused with a reason, or accepted; an accepted schema's
//! identity form (what decides "the same schema") is itself accepted as the
//! same schema, and the schema can read its own data under every level.
//! Never a panic that escapes (apache-avro panics on some invalid names; the
//! registry catches those, so the fuzzer's abort-on-any-panic hook is
//! replaced by one that only reports, and an uncaught panic still aborts).
#![no_main]

use apache_avro::Schema;
use libfuzzer_sys::fuzz_target;
use sluice_registry::{Level, compat, identity};

fuzz_target!(
    init: {
        std::panic::set_hook(Box::new(|info| eprintln!("panic (the registry must catch it): {info}")));
    },
    |data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else { return };
        let form = match identity(text) {
            Ok(form) => form,
            Err(reason) => {
                assert!(!reason.is_empty(), "{text:?} refused without a reason");
                return;
            }
        };
        assert_eq!(identity(&form).as_ref(), Ok(&form), "{text:?}: its identity form is another schema");
        let schema = Schema::parse_str(text).expect("accepted above");
        assert_eq!(compat::can_read(&schema, &schema), Ok(()), "{text:?} cannot read its own data");
        let problems = Level::FullTransitive.check(&schema, &[(1, &schema)]);
        assert!(problems.is_empty(), "{text:?} is not compatible with itself: {problems:?}");
    }
);
