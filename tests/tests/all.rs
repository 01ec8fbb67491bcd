//! The end-to-end suites, in one test binary: each starts the real runner
//! and control-plane binaries.

mod suite;
