//! Listing answers are input like any answer: the checks every listed key and common prefix
//! pass before it reaches the file system as a name.

use crate::store::rules;

/// Why a key in a listing answer cannot be one the request asked for (`None`: it can).
/// Listings are input like any answer: a key outside the prefix, one the delimiter should have
/// rolled up, or one no store could hold would otherwise reach the file system as a name.
pub(super) fn key_problem(
    key: &str,
    prefix: &str,
    delimiter: Option<&str>,
) -> Option<&'static str> {
    let Some(rest) = key.strip_prefix(prefix) else {
        return Some("it is outside the requested prefix");
    };
    if rules::check_key(key).is_err() {
        return Some("it is empty or longer than S3 allows");
    }
    if key.contains('\0') {
        return Some("it contains a NUL byte");
    }
    if delimiter.is_some_and(|d| rest.contains(d)) {
        return Some("it contains the delimiter after the prefix");
    }
    None
}

/// Why a common prefix in a listing answer cannot be one the request asked for.
pub(super) fn prefix_problem(
    common_prefix: &str,
    prefix: &str,
    delimiter: Option<&str>,
) -> Option<&'static str> {
    let Some(delimiter) = delimiter else {
        return Some("the request had no delimiter");
    };
    let Some(rest) = common_prefix.strip_prefix(prefix) else {
        return Some("it is outside the requested prefix");
    };
    let Some(name) = rest.strip_suffix(delimiter) else {
        return Some("it does not end with the delimiter");
    };
    // An empty name (a key with the delimiter right after the prefix) is a valid S3 answer;
    // the file system refuses such names itself.
    if name.contains(delimiter) {
        return Some("it is not one level below the prefix");
    }
    if common_prefix.contains('\0') || rules::check_key(common_prefix).is_err() {
        return Some("it is not a valid key prefix");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever a listing answer holds, a key or common prefix these checks let through is
        /// below the requested prefix, holds no NUL, and (with a delimiter) is one level below.
        #[test]
        fn accepted_listing_entries_are_what_the_request_asked_for(
            entry in "(p/)?[a-z/.\\x00]{0,8}|\\PC{0,40}",
            delimiter in proptest::option::of(Just("/")),
        ) {
            if key_problem(&entry, "p/", delimiter).is_none() {
                let rest = entry.strip_prefix("p/");
                prop_assert!(rest.is_some() && !entry.contains('\0'), "{entry:?}");
                if delimiter.is_some() {
                    prop_assert!(!rest.unwrap_or_default().contains('/'), "{entry:?}");
                }
            }
            if prefix_problem(&entry, "p/", delimiter).is_none() {
                prop_assert!(delimiter.is_some() && !entry.contains('\0'), "{entry:?}");
                let rest = entry.strip_prefix("p/").unwrap_or_default();
                prop_assert!(rest.ends_with('/') && rest.matches('/').count() == 1, "{entry:?}");
            }
        }
    }
}
