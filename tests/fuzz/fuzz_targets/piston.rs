//! Piston's `execute` bodies (JSON or form-encoded), its version ranges and its
//! file encodings: no panic; a version always matches itself; base64 and hex
//! files round-trip; an accepted request is within every limit.
#![no_main]

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue};
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use optimus_api::compat::piston::{body_value, decode_file, parse_execute};
use optimus_api::compat::semver;
use optimus_api::validate;
use optimus_fuzz::{assert_within_limits, mode_and_text, rules, SETTINGS};

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest, text)) = mode_and_text(data) else { return };
    match mode % 4 {
        0 => {
            // A range and a version, split at the first newline.
            let (range, version) = text.split_once('\n').unwrap_or((&text, "1.2.3"));
            let _ = semver::satisfies(version, range);
            if let Some(parsed) = semver::Range::parse(range) {
                let _ = parsed.matches(version);
            }
        }
        1 => {
            // Any three numbers (below 2^64-1, the most a part may be): the version
            // matches itself, bare and in every range that names it.
            let n: Vec<u64> =
                rest.chunks(8).map(|c| c.iter().fold(0u64, |a, b| a << 8 | u64::from(*b)) % u64::MAX).collect();
            let version = format!("{}.{}.{}", n.first().unwrap_or(&0), n.get(1).unwrap_or(&0), n.get(2).unwrap_or(&0));
            assert!(semver::satisfies(&version, &version), "{version} does not match itself");
            assert!(semver::satisfies(&version, &format!("={version}")));
            assert!(semver::satisfies(&version, "*"));
            assert!(semver::satisfies(&version, &format!("^{version}")));
            assert!(semver::satisfies(&version, &format!("~{version}")));
        }
        2 => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
            assert_eq!(decode_file(0, &b64, "base64").ok().as_deref(), Some(&*text));
            let hex: String = text.bytes().map(|b| format!("{b:02x}")).collect();
            assert_eq!(decode_file(0, &hex, "hex").ok().as_deref(), Some(&*text));
            for encoding in ["utf8", "base64", "hex", &text] {
                let _ = decode_file(0, &text, encoding);
            }
        }
        _ => {
            let form = mode & 4 != 0;
            let mut headers = HeaderMap::new();
            let kind = if form { "application/x-www-form-urlencoded" } else { "application/json" };
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
            let body = Bytes::copy_from_slice(rest);
            let Ok(value) = body_value(&headers, &body, SETTINGS.limits.max_json_values) else { return };
            let Ok(draft) = parse_execute(rules(), &value) else { return };
            if let Ok(spec) = validate::accept(draft, &SETTINGS.limits) {
                assert_within_limits(&spec);
            }
        }
    }
});
