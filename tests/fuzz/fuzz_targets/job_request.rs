//! `POST /jobs` bodies: read as the API reads them (values counted before any is
//! built), resolved, and checked. No panic; what the value bound refuses is over
//! it; what the edge accepts is within every limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use optimus_api::extract::{count_values, parse_bounded, ParseError};
use optimus_api::validate::{self, JobRequest};
use optimus_fuzz::{assert_within_limits, REGISTRY, SETTINGS};

fuzz_target!(|data: &[u8]| {
    let max = SETTINGS.limits.max_json_values;
    let request = match parse_bounded::<JobRequest>(data, max) {
        Ok(request) => request,
        Err(ParseError::TooManyValues { .. }) => {
            // Refused for its size only when a full walk really finds more values.
            assert!(count_values(data, usize::MAX).map_or(true, |n| n > max), "refused under the bound");
            return;
        }
        Err(_) => return,
    };
    let Ok(draft) = validate::request::draft(request, &REGISTRY) else { return };
    if let Ok(spec) = validate::accept(draft, &SETTINGS.limits) {
        assert_within_limits(&spec);
    }
});
