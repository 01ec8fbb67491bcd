//! The wasm sandbox: guest tools as WASI preview-1 commands on wasmtime.
//!
//! One [`WasmSandbox`] per runner: one shared `Engine` with the pooling
//! instance allocator, one epoch ticker, one on-disk cache of compiled
//! modules. A tool is compiled and linked once ([`GuestModule`], an
//! `InstancePre`), so a call only builds a `Store`, instantiates and runs.
//!
//! What a guest gets, per call: its JSON input on stdin, capped pipes for
//! stdout and stderr, the workspace preopened at `/workspace` (read-only
//! unless the decision granted a write), the environment variables the
//! runner sets and nothing inherited, no arguments, no sockets. What stops
//! it: `StoreLimits` (memory, tables, instances), a bounded wasm stack, an
//! epoch deadline for guest code, a watchdog that interrupts a system call
//! still blocked past that deadline (`watchdog`), and a guard that refuses
//! a sleep ending past it (`guard`). A call runs on the caller's thread.

mod cache;
mod guard;
mod readdir;
mod run;
mod watchdog;

pub use cache::ModuleCache;
pub use run::{GuestCall, GuestFailure, GuestOutput};

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, PoolingAllocationConfig,
};

/// Bytes of a linear-memory slot kept resident between calls (and reset
/// in place); measured: 128 KiB → 2 MiB took a trivial call from 65–74 µs
/// to 55–58 µs, 16 MiB saved no more.
const KEEP_RESIDENT: usize = 2 << 20;

/// Deepest wasm stack a config may ask for: guests run on the caller's
/// thread (2 MiB of stack for Rust threads), which needs room for its own
/// frames under the guest's.
pub const MAX_STACK_KIB: usize = 1024;

/// How often the epoch ticker advances the engine's epoch: how often a
/// running guest looks at the clock for its deadline.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Resource limits of one guest call (the `[wasm]` config section).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmLimits {
    /// Largest linear memory a guest may grow to.
    #[serde(default = "default_memory_mib")]
    pub memory_mib: u64,
    /// Deepest wasm stack, in KiB (a deeper recursion traps).
    #[serde(default = "default_stack_kib")]
    pub stack_kib: usize,
    /// Wall-clock limit of a call unless the tool asks for less.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Cap on stdout and on stderr (each); a guest writing more sees a
    /// write error and the call fails saying so.
    #[serde(default = "default_output_bytes")]
    pub max_output_bytes: usize,
    /// Largest JSON input handed to a guest.
    #[serde(default = "default_input_bytes")]
    pub max_input_bytes: usize,
    /// Guest instances that may run at once (the pool's size).
    #[serde(default = "default_concurrency")]
    pub max_concurrent: u32,
}

fn default_memory_mib() -> u64 {
    256
}
fn default_stack_kib() -> usize {
    1024
}
fn default_timeout_ms() -> u64 {
    30_000
}
fn default_output_bytes() -> usize {
    4 << 20
}
fn default_input_bytes() -> usize {
    4 << 20
}
fn default_concurrency() -> u32 {
    32
}

impl Default for WasmLimits {
    fn default() -> Self {
        WasmLimits {
            memory_mib: default_memory_mib(),
            stack_kib: default_stack_kib(),
            timeout_ms: default_timeout_ms(),
            max_output_bytes: default_output_bytes(),
            max_input_bytes: default_input_bytes(),
            max_concurrent: default_concurrency(),
        }
    }
}

/// Errors setting up the sandbox or loading a module (not guest failures).
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    /// The engine could not be configured.
    #[error("cannot start the wasm engine: {0}")]
    Engine(String),
    /// A module is not valid wasm, or not a WASI preview-1 command.
    #[error("{0}")]
    Module(String),
    /// The compiled-module cache is unusable.
    #[error("{0}")]
    Cache(String),
}

/// Per-call host state: the WASI context and the limiter.
pub(crate) struct Ctx {
    pub(crate) wasi: wasmtime_wasi::p1::WasiP1Ctx,
    pub(crate) limits: run::Limiter,
    pub(crate) clock: guard::CallClock,
    pub(crate) dirs: readdir::Dirs,
}

/// A guest module compiled, linked and ready to instantiate.
#[derive(Clone)]
pub struct GuestModule {
    pre: InstancePre<Ctx>,
    /// sha256 of the module's bytes.
    pub sha256: String,
    /// Whether the compiled code came from the disk cache.
    pub from_cache: bool,
}

/// The shared engine, linker, cache and epoch ticker.
#[derive(Clone)]
pub struct WasmSandbox {
    engine: Engine,
    linker: Arc<Linker<Ctx>>,
    cache: Option<Arc<ModuleCache>>,
    limits: WasmLimits,
    watchdog: Arc<watchdog::Watchdog>,
}

impl WasmSandbox {
    /// An engine with these limits; compiled modules are cached in
    /// `cache_dir` (created 0700) when one is given.
    pub fn new(limits: WasmLimits, cache_dir: Option<PathBuf>) -> Result<Self, WasmError> {
        if limits.stack_kib > MAX_STACK_KIB {
            return Err(WasmError::Engine(format!(
                "tools.limits.stack_kib is {}: at most {MAX_STACK_KIB} (a guest runs on the calling thread, whose stack is 2 MiB); lower it",
                limits.stack_kib
            )));
        }
        let mut cfg = Config::new();
        cfg.epoch_interruption(true);
        cfg.max_wasm_stack(limits.stack_kib.max(64) * 1024);
        // No backtrace capture on every exit/trap: the runner reports the
        // kind of failure, not guest stack frames.
        cfg.wasm_backtrace_max_frames(None);
        let reset_in_place = no_swap();
        let mut pool = PoolingAllocationConfig::new();
        let n = limits.max_concurrent.max(1);
        pool.total_core_instances(n)
            .total_memories(n)
            .total_tables(n)
            .total_component_instances(0)
            .total_stacks(0)
            .max_memories_per_module(1)
            .max_tables_per_module(4)
            .max_memory_size((limits.memory_mib as usize) << 20)
            // Reset a slot's pages for the next call with memset rather
            // than madvise (no page faults refilling them, no TLB
            // shootdown across cores), and with PAGEMAP_SCAN (Linux 6.7+)
            // only the pages the call dirtied: a trivial call's stack and
            // heap fit in the first 2 MiB. Beyond that, madvise as usual.
            // Not on a host with swap: wasmtime 48's scan misses a dirtied
            // page that was swapped out (bytecodealliance/wasmtime#14357),
            // which would carry one call's memory into the next.
            .linear_memory_keep_resident(if reset_in_place {
                KEEP_RESIDENT
            } else {
                128 << 10
            })
            .pagemap_scan(if reset_in_place {
                wasmtime::Enabled::Auto
            } else {
                wasmtime::Enabled::No
            })
            .table_keep_resident(64 << 10);
        cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&cfg).map_err(|e| WasmError::Engine(format!("{e:#}")))?;
        let mut linker: Linker<Ctx> = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |c: &mut Ctx| &mut c.wasi)
            .and_then(|()| guard::install(&mut linker))
            .and_then(|()| readdir::install(&mut linker))
            .map_err(|e| WasmError::Engine(format!("{e:#}")))?;
        let cache = match cache_dir {
            Some(d) => Some(Arc::new(ModuleCache::open(d, &engine)?)),
            None => None,
        };
        let watchdog = watchdog::Watchdog::new().map_err(|e| {
            WasmError::Engine(format!(
                "cannot install the guest watchdog's signal handler: {e}"
            ))
        })?;
        start_ticker(&engine, watchdog.clone());
        Ok(WasmSandbox {
            engine,
            linker: Arc::new(linker),
            cache,
            limits,
            watchdog,
        })
    }

    /// How many `fd_readdir` calls (process-wide) were answered from the
    /// host's own directory listing rather than wasmtime's, which `stat`s
    /// every entry: a figure for tests and diagnostics.
    pub fn listings_answered() -> u64 {
        readdir::ANSWERED.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &WasmLimits {
        &self.limits
    }

    /// Compiles (or loads from the cache) and links a module. Done once per
    /// tool; the result is cheap to clone and shared by every call.
    pub fn load(&self, wasm: &[u8]) -> Result<GuestModule, WasmError> {
        let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(wasm));
        let (module, from_cache) = match &self.cache {
            Some(c) => c.get_or_compile(&self.engine, wasm, &sha256)?,
            None => (compile(&self.engine, wasm)?, false),
        };
        let pre = self.linker.instantiate_pre(&module).map_err(|e| {
            WasmError::Module(format!(
                "the module does not link as a WASI preview-1 command ({e:#}); guests may import only wasi_snapshot_preview1"
            ))
        })?;
        if module.get_export("_start").is_none() {
            return Err(WasmError::Module(
                "the module has no `_start` export: build it as a WASI command (a `main` function), not a library".into(),
            ));
        }
        Ok(GuestModule {
            pre,
            sha256,
            from_cache,
        })
    }
}

/// Whether the host has no swap device (`/proc/swaps` lists none); unknown
/// counts as having one.
fn no_swap() -> bool {
    std::fs::read_to_string("/proc/swaps")
        .is_ok_and(|s| s.lines().skip(1).all(|l| l.trim().is_empty()))
}

/// Compiles wasm bytes with the engine.
pub(crate) fn compile(engine: &Engine, wasm: &[u8]) -> Result<wasmtime::Module, WasmError> {
    wasmtime::Module::from_binary(engine, wasm)
        .map_err(|e| WasmError::Module(format!("not a valid wasm module: {e:#}")))
}

/// Advances the epoch every [`EPOCH_TICK`] for as long as the engine lives,
/// and interrupts calls blocked in the host past their deadline.
fn start_ticker(engine: &Engine, watchdog: Arc<watchdog::Watchdog>) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(e) => e.increment_epoch(),
                None => return,
            }
            watchdog.interrupt_overdue();
        })
        .expect("spawn the wasm epoch ticker");
}
