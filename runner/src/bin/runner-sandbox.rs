//! `runner-sandbox [--log-format text|json] SPEC-JSON`: the process
//! sandbox's helper, as a binary of its own. The runner starts it for every
//! sandboxed command; being small, it starts in a fraction of the time the
//! full `runner` binary takes. Not meant to be run by people.
//!
//! It writes no log lines: a setup failure goes to the runner on the
//! status descriptor, and the runner logs it in its own format. The
//! `--log-format` every binary takes is accepted (and checked) so that
//! one flag can be given to all of them.

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let format = match args.first().map(String::as_str) {
        Some("--log-format") if args.len() > 1 => {
            let f = args[1].clone();
            args.drain(..2);
            Some(f)
        }
        Some(a) if a.starts_with("--log-format=") => {
            let f = a["--log-format=".len()..].to_string();
            args.remove(0);
            Some(f)
        }
        _ => None,
    };
    if let Some(f) = format {
        if f != "text" && f != "json" {
            eprintln!("runner-sandbox: --log-format is text or json, not {f:?}");
            std::process::exit(2);
        }
    }
    let spec = args.first().cloned().unwrap_or_default();
    runner::sandbox::process::helper::main(&spec)
}
