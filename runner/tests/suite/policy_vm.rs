//! The register VM decides exactly as the interpreter (the reference the
//! Rego tests run on), or it is not used.

use protocol::session::SourceWork;
use runner::policy::probes;
use test_support::*;

#[test]
fn default_policy_runs_on_the_vm() {
    let engine = default_engine();
    assert_eq!(engine.with_set(|s| s.uses_vm()), Some(true));
}

#[test]
fn vm_and_interpreter_agree_on_every_probe_and_record() {
    let engine = default_engine();
    let mut inputs = probes::inputs();
    // Plus real inputs built by the runner for the trust suite's actions.
    let (_d, root) = workspace();
    let (gate, _) = gate(engine.clone(), None);
    let c = ctx(&root, SourceWork::default());
    for p in [
        "src/main.rs",
        "../x",
        ".git/hooks/a",
        ".env",
        "a/b/c/d.pem",
        ".",
    ] {
        for tool in ["Read", "Write"] {
            let detail = if tool == "Read" {
                protocol::policy::ActionDetail::FsRead { path: p.into() }
            } else {
                protocol::policy::ActionDetail::FsWrite { path: p.into() }
            };
            let rec = gate.check(
                &protocol::policy::Action {
                    tool: tool.into(),
                    detail,
                },
                &c,
            );
            inputs.push(rec.input.to_value());
        }
    }
    let mut results = std::collections::BTreeSet::new();
    engine
        .with_set(|set| {
            for input in &inputs {
                let vm = set.evaluate(regorus::Value::from(input.clone()));
                let interp = set.evaluate_on_interpreter(regorus::Value::from(input.clone()));
                assert_eq!(vm.decision, interp.decision, "input {input}");
                results.insert(vm.decision.result.as_str());
            }
        })
        .unwrap();
    assert_eq!(
        results.len(),
        3,
        "probes cover allow, deny and ask: {results:?}"
    );
}

#[test]
fn policy_the_vm_cannot_mirror_falls_back_to_the_interpreter() {
    // A decision that depends on the wall clock cannot be differentially
    // checked reliably; whatever the backend, the decision must be well-formed.
    let pol = policy_dir(&[("p.rego", "package runner\nimport rego.v1\ndecision := {\"result\": \"deny\", \"reasons\": [sprintf(\"%d\", [time.now_ns()])]}\n")]);
    let mut s = settings(vec![pol.path().to_path_buf()]);
    s.run_tests = false;
    let engine = runner::policy::PolicyEngine::load(s).unwrap();
    assert_eq!(
        engine.with_set(|s| s.uses_vm()),
        Some(false),
        "probe results differ in time, so the VM is not trusted"
    );
}
