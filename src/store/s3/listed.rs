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
