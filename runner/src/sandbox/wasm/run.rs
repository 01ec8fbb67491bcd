//! One guest call: a fresh `Store`, the WASI context, instantiate, `_start`,
//! and a precise account of how it ended.

use super::guard::CallClock;
use super::readdir::Dirs;
use super::{Ctx, GuestModule, WasmSandbox};
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wasmtime::{ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

/// What a call hands the guest.
pub struct GuestCall {
    /// The JSON input, written to stdin.
    pub stdin: Vec<u8>,
    /// The workspace, preopened at `/workspace`.
    pub workspace: PathBuf,
    /// Preopen it read-write (only when the decision granted a write).
    pub writable: bool,
    /// Environment variables (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// Wall-clock limit of this call (at most the sandbox's limit).
    pub timeout: Duration,
}

/// How a guest that ran to its end finished.
#[derive(Debug, Clone, Serialize)]
pub struct GuestOutput {
    /// Exit code (0 = success).
    pub exit_code: i32,
    /// What it printed on stdout (at most the cap).
    pub stdout: Vec<u8>,
    /// What it printed on stderr (at most the cap).
    pub stderr: Vec<u8>,
    /// stdout reached the cap (the guest's further writes failed).
    pub stdout_truncated: bool,
    /// Time from instantiation to exit.
    pub duration: Duration,
    /// Time from the call to the guest instantiated (its store, WASI
    /// context and instance): the sandbox's start-up cost, for the metrics.
    #[serde(skip)]
    pub spawn: Duration,
}

/// A guest call that did not run to its end, each kind with its own message.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GuestFailure {
    /// The input exceeds `max_input_bytes`.
    #[error("the input is {size} bytes, more than the guest input limit of {limit} bytes; send less data")]
    InputTooLarge {
        /// Bytes of input the call carried.
        size: usize,
        /// `tools.limits.max_input_bytes`.
        limit: usize,
    },
    /// Guest code ran past its deadline.
    #[error("the guest ran past its time limit of {0} ms and was stopped")]
    Timeout(u64),
    /// Tried to grow its memory past the limit.
    #[error("the guest exceeded its memory limit of {0} MiB")]
    Memory(u64),
    /// Recursed past the stack limit.
    #[error("the guest overflowed its stack ({0} KiB)")]
    StackOverflow(usize),
    /// Any other trap (a panic compiles to `unreachable`).
    #[error("the guest trapped ({trap}){stderr}")]
    Trap {
        /// Wasmtime's description of the trap.
        trap: String,
        /// ": " + its stderr, when it printed something.
        stderr: String,
    },
    /// Every pooled instance slot is busy.
    #[error("too many guest calls at once ({0}); retry shortly")]
    Busy(u32),
    /// Could not be set up.
    #[error("cannot start the guest: {0}")]
    Setup(String),
}

/// Wraps `StoreLimits` to remember that the memory limit was what stopped
/// a guest (Rust guests abort on a failed allocation, which is otherwise
/// just an `unreachable` trap).
pub(crate) struct Limiter {
    inner: StoreLimits,
    memory_hit: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = self.inner.memory_growing(current, desired, maximum)?;
        if !ok {
            self.memory_hit = true;
        }
        Ok(ok)
    }
    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory_hit = true;
        self.inner.memory_grow_failed(error)
    }
    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }
    fn instances(&self) -> usize {
        self.inner.instances()
    }
    fn tables(&self) -> usize {
        self.inner.tables()
    }
    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

impl WasmSandbox {
    /// Runs one call of a loaded module on this thread. Guest code is
    /// stopped by the epoch deadline; a system call still blocked past it
    /// is interrupted by the watchdog, and a sleep ending past it is a
    /// timeout at once. Call it from a plain thread, not from inside an
    /// async runtime: WASI's host calls block on their own runtime.
    pub fn run(&self, module: &GuestModule, call: GuestCall) -> Result<GuestOutput, GuestFailure> {
        let limit = self.limits.max_input_bytes;
        if call.stdin.len() > limit {
            return Err(GuestFailure::InputTooLarge {
                size: call.stdin.len(),
                limit,
            });
        }
        let timeout = call
            .timeout
            .min(Duration::from_millis(self.limits.timeout_ms));
        self.run_in_store(module, call, timeout)
    }

    /// The call itself, in a fresh store, once its input and time limit
    /// are settled.
    fn run_in_store(
        &self,
        module: &GuestModule,
        call: GuestCall,
        timeout: Duration,
    ) -> Result<GuestOutput, GuestFailure> {
        let cap = self.limits.max_output_bytes;
        let stdout = MemoryOutputPipe::new(cap);
        let stderr = MemoryOutputPipe::new(cap);
        let monotonic_base = Instant::now();
        let deadline = monotonic_base + timeout;
        let mut b = WasiCtxBuilder::new();
        b.stdin(MemoryInputPipe::new(call.stdin))
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_blocking_current_thread(true);
        for (k, v) in &call.env {
            b.env(k, v);
        }
        let perms = if call.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        b.preopened_dir(&call.workspace, "/workspace", perms)
            .map_err(|e| {
                GuestFailure::Setup(format!(
                    "cannot open the workspace {}: {e:#}",
                    call.workspace.display()
                ))
            })?;
        let memory_mib = self.limits.memory_mib;
        let limits = StoreLimitsBuilder::new()
            .memory_size((memory_mib as usize) << 20)
            .instances(1)
            .memories(1)
            .tables(4)
            .table_elements(1 << 20)
            .trap_on_grow_failure(false)
            .build();
        let mut store = Store::new(
            &self.engine,
            Ctx {
                wasi: b.build_p1(),
                limits: Limiter {
                    inner: limits,
                    memory_hit: false,
                },
                dirs: Dirs::new(&call.workspace),
                clock: CallClock {
                    deadline,
                    monotonic_base,
                },
            },
        );
        store.limiter(|c| &mut c.limits);
        // The deadline is wall-clock time: at every epoch tick the guest is
        // still running, the store looks at the clock (the ticker's epochs
        // drift behind it over a long call).
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Continue(1)
            })
        });
        let _watched = self.watchdog.watch(deadline);
        let started = Instant::now();
        let instance = module.pre.instantiate(&mut store).map_err(|e| {
            let msg = format!("{e:#}");
            if msg.contains("maximum concurrent") || msg.contains("pooling") {
                GuestFailure::Busy(self.limits.max_concurrent)
            } else if store.data().limits.memory_hit {
                GuestFailure::Memory(memory_mib)
            } else {
                GuestFailure::Setup(msg)
            }
        })?;
        let spawn = monotonic_base.elapsed();
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .map_err(|e| GuestFailure::Setup(format!("{e:#}")))?;
        let result = start.call(&mut store, ());
        let duration = started.elapsed();
        let exit_code = match result {
            Ok(()) => 0,
            Err(e) => {
                if let Some(x) = e.downcast_ref::<I32Exit>() {
                    x.0
                } else if store.data().limits.memory_hit {
                    return Err(GuestFailure::Memory(memory_mib));
                } else if let Some(t) = e.downcast_ref::<Trap>() {
                    return Err(match t {
                        Trap::Interrupt => GuestFailure::Timeout(timeout.as_millis() as u64),
                        Trap::StackOverflow => GuestFailure::StackOverflow(self.limits.stack_kib),
                        other => GuestFailure::Trap {
                            trap: other.to_string(),
                            stderr: stderr_tail(&stderr.contents()),
                        },
                    });
                } else {
                    return Err(GuestFailure::Trap {
                        trap: format!("{e:#}"),
                        stderr: stderr_tail(&stderr.contents()),
                    });
                }
            }
        };
        let out = stdout.contents().to_vec();
        Ok(GuestOutput {
            exit_code,
            stdout_truncated: out.len() >= cap,
            stdout: out,
            stderr: stderr.contents().to_vec(),
            duration,
            spawn,
        })
    }
}

/// The last few hundred bytes of stderr, for an error message.
fn stderr_tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let start = text.len().saturating_sub(400);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    format!(": {}", &text[start..])
}
