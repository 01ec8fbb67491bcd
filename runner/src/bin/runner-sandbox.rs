//! `runner-sandbox SPEC-JSON`: the process sandbox's helper, as a binary of
//! its own. The runner starts it for every sandboxed command; being small,
//! it starts in a fraction of the time the full `runner` binary takes.
//! Not meant to be run by people.

fn main() {
    let spec = std::env::args().nth(1).unwrap_or_default();
    runner::sandbox::process::helper::main(&spec)
}
