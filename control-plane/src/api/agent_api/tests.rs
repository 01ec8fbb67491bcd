//! Tests of the identities API.
