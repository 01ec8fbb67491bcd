//! A test guest: `{"mode": ...}` picks a behaviour the runner must contain.
//! `echo` (the trivial call the benchmarks time), `loop`, `alloc`, `recurse`, `recurse_frames`,
//! `flood`, `stdin` (its input is huge), `trap`, `exit`, `not_json`,
//! `two_json`, `read_outside`, `write`, `read`, `env`, `net`, `sleep`
//! (`ms`), `inodes` (`path`: each entry's `d_ino` against its `stat`).

// `inodes` reads `d_ino` (std's WASI extension traits; the build uses
// RUSTC_BOOTSTRAP, see scripts/build-guests.sh).
#![feature(wasi_ext)]

use runner_guest::{fail, Result};
use serde::Deserialize;
use std::io::Write;

#[derive(Deserialize)]
struct Input {
    mode: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    padding: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    ms: u64,
}

/// Deep recursion on wasm's own stack (scalars only): the engine's stack
/// limit stops it.
#[inline(never)]
#[allow(unconditional_recursion)]
fn depth(n: u64) -> u64 {
    std::hint::black_box(depth(std::hint::black_box(n + 1))) ^ n
}

/// Deep recursion with big frames: Rust keeps them on the shadow stack in
/// linear memory, which runs out before wasm's stack does.
#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(n: u64, acc: &mut [u64; 64]) -> u64 {
    let mut local = [n; 64];
    local[(n % 64) as usize] ^= acc[(n % 64) as usize];
    acc[0] = acc[0].wrapping_add(local[3]);
    recurse(n + 1, &mut local).wrapping_add(local[7])
}

fn behave(i: Input) -> Result<serde_json::Value> {
    match i.mode.as_str() {
        "echo" => Ok(serde_json::json!({"ok": true})),
        // Like a tool that pushed a branch: a URL meant for the user.
        "publish" => Ok(serde_json::json!({"published": true, "external_url": i.url})),
        "loop" => {
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "alloc" => {
            let mut keep = Vec::new();
            loop {
                keep.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&keep);
            }
        }
        "recurse" => Ok(serde_json::json!({"n": depth(0)})),
        "recurse_frames" => {
            let mut acc = [0u64; 64];
            Ok(serde_json::json!({"n": recurse(0, &mut acc)}))
        }
        "flood" => {
            let line = [b'x'; 4096];
            let mut out = std::io::stdout().lock();
            for _ in 0..100_000 {
                if out.write_all(&line).is_err() {
                    break;
                }
            }
            std::process::exit(0)
        }
        "stdin" => Ok(serde_json::json!({"ok": "read"})),
        "trap" => panic!("the test guest panics on purpose"),
        "exit" => std::process::exit(7),
        "not_json" => {
            print!("this is not JSON");
            std::process::exit(0)
        }
        "two_json" => {
            print!("{{\"a\":1}}{{\"b\":2}}");
            std::process::exit(0)
        }
        "read" => {
            let p = i.path.unwrap_or_default();
            let text = std::fs::read_to_string(&p).map_err(|e| format!("read {p}: {e}"))?;
            Ok(serde_json::json!({"content": text}))
        }
        "write" => {
            let p = i.path.unwrap_or_default();
            std::fs::write(&p, "written by a guest").map_err(|e| format!("write {p}: {e}"))?;
            Ok(serde_json::json!({"wrote": p}))
        }
        "env" => Ok(serde_json::json!({
            "env": std::env::vars().map(|(k, _)| k).collect::<Vec<_>>(),
            "args": std::env::args().collect::<Vec<_>>(),
        })),
        "net" => match std::net::TcpStream::connect("127.0.0.1:80") {
            Ok(_) => Ok(serde_json::json!({"connected": true})),
            Err(e) => fail(format!("connect: {e}")),
        },
        "sleep" => {
            std::thread::sleep(std::time::Duration::from_millis(i.ms));
            Ok(serde_json::json!({"slept_ms": i.ms}))
        }
        "inodes" => {
            use std::os::wasi::fs::{DirEntryExt, MetadataExt};
            let p = i.path.unwrap_or_else(|| "/workspace".into());
            let mut entries = 0;
            let mut mismatched = Vec::new();
            for e in std::fs::read_dir(&p).map_err(|e| format!("read_dir {p}: {e}"))? {
                let e = e.map_err(|e| format!("read_dir {p}: {e}"))?;
                let meta = std::fs::symlink_metadata(e.path()).map_err(|e| format!("stat: {e}"))?;
                entries += 1;
                if e.ino() != meta.ino() {
                    mismatched.push(e.file_name().to_string_lossy().into_owned());
                }
            }
            Ok(serde_json::json!({"entries": entries, "mismatched": mismatched}))
        }
        other => fail(format!("unknown mode {other}")),
    }
}

fn main() {
    runner_guest::run(behave)
}
