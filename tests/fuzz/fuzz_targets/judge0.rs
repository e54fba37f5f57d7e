//! Judge0 submissions (JSON, plain or base64 fields), `?fields=`, base64 and
//! `command_line_arguments`: no panic; base64 round-trips; no argument keeps a
//! character Judge0 strips; an accepted submission is within every limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use optimus_api::compat::judge0::{parse_submission, split_arguments, view};
use optimus_api::validate;
use optimus_fuzz::{assert_within_limits, mode_and_text, rules, SETTINGS};

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest, text)) = mode_and_text(data) else { return };
    match mode % 4 {
        0 => {
            let fields = view::parse_fields(Some(&text));
            if let Ok(fields) = fields {
                assert!(!fields.is_empty() && fields.iter().all(|f| view::ALL_FIELDS.contains(f)));
            }
        }
        1 => {
            assert_eq!(view::decode(&view::encode(&text)).as_deref(), Some(&*text), "base64 does not round-trip");
            let _ = view::decode(&text);
        }
        2 => {
            for arg in split_arguments(&text) {
                assert!(!arg.contains(['$', '&', ';', '<', '>', '|', '`']), "{arg:?} kept a stripped character");
            }
        }
        _ => {
            let base64 = mode & 4 != 0;
            let Ok(body) = serde_json::from_slice::<serde_json::Value>(rest) else { return };
            let Ok((draft, _)) = parse_submission(rules(), &body, base64) else { return };
            if let Ok(spec) = validate::accept(draft, &SETTINGS.limits) {
                assert_within_limits(&spec);
            }
        }
    }
});
