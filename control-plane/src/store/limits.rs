//! How much text the store keeps per field: bad input is refused before
//! it is written, with the field's name in the error.

use super::StoreError;

/// Refuses `s` when it is longer than `max` characters.
pub(super) fn check_len(field: &str, s: &str, max: usize) -> Result<(), StoreError> {
    if s.len() > max && s.chars().count() > max {
        return Err(StoreError::invalid(format!(
            "{field} is longer than {max} characters"
        )));
    }
    Ok(())
}

/// A name: 1–200 characters, not only whitespace.
pub(super) fn check_name(field: &str, s: &str) -> Result<(), StoreError> {
    check_len(field, s, 200)?;
    if s.trim().is_empty() {
        return Err(StoreError::invalid(format!("{field} must not be empty")));
    }
    Ok(())
}
