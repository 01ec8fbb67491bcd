//! Every integration suite of the runner crate, in one test binary so the
//! heavy dependencies (wasmtime, regorus) are linked once.

mod suite;
