//! `poll_oneoff` guarded so a guest cannot sleep past its deadline.
//!
//! Guest code is stopped by the epoch deadline, which wasmtime checks only
//! in wasm code; a guest blocked in a system call is interrupted by the
//! watchdog (`watchdog`). A sleep, though, is restarted after a signal
//! (`std::thread::sleep` sleeps the remaining time), so `poll_oneoff`
//! waiting only on clocks is looked at first: a wait that would end after
//! the call's deadline traps at once as the timeout it would become;
//! shorter waits go to wasmtime's own implementation as they are.

use super::Ctx;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wasmtime::{Caller, Extern, Linker, Memory, Trap};
use wasmtime_wasi::p1::wasi_snapshot_preview1;
use wasmtime_wasi::runtime::in_tokio;
use wiggle::GuestMemory;

/// The WASI module whose functions the runner's wrappers replace.
pub(crate) const MODULE: &str = "wasi_snapshot_preview1";
/// `subscription` layout: userdata u64, tag u8 @8, clock id u32 @16,
/// timeout u64 @24, precision u64 @32, flags u16 @40; 48 bytes.
const SUBSCRIPTION_SIZE: usize = 48;
const TAG_CLOCK: u8 = 0;
const CLOCK_REALTIME: u32 = 0;
const SUBCLOCK_ABSTIME: u16 = 1;

/// What the guards need to know about the running call.
pub(crate) struct CallClock {
    /// When the call's time limit runs out.
    pub deadline: Instant,
    /// (At or just before) the moment the guest's monotonic clock reads 0.
    pub monotonic_base: Instant,
}

/// Replaces `poll_oneoff` in `linker` (which already has wasmtime's
/// preview-1) with the guarded version, which goes on to wasmtime's own.
pub(crate) fn install(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap(
        MODULE,
        "poll_oneoff",
        |mut caller: Caller<'_, Ctx>,
         subs: i32,
         events: i32,
         n: i32,
         nevents: i32|
         -> wasmtime::Result<i32> {
            let memory = memory(&mut caller)?;
            if waits_past_deadline(&caller, memory, subs, n) {
                return Err(Trap::Interrupt.into());
            }
            let (ctx, mut bytes) = split(&mut caller, memory);
            in_tokio(wasi_snapshot_preview1::poll_oneoff(
                &mut ctx.wasi,
                &mut bytes,
                subs,
                events,
                n,
                nevents,
            ))
        },
    )?;
    Ok(())
}

/// The guest's exported linear memory (every WASI call with pointers
/// needs it).
pub(crate) fn memory(caller: &mut Caller<'_, Ctx>) -> wasmtime::Result<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => Err(wasmtime::Error::msg("missing required memory export")),
    }
}

/// The store's state and the guest's memory apart, as wasmtime-wasi's
/// preview-1 functions take them.
pub(crate) fn split<'a>(
    caller: &'a mut Caller<'_, Ctx>,
    memory: Memory,
) -> (&'a mut Ctx, GuestMemory<'a>) {
    let (bytes, ctx) = memory.data_and_store_mut(caller);
    (ctx, GuestMemory::Unshared(bytes))
}

/// Whether a `poll_oneoff` with only clock subscriptions would sleep past
/// the deadline. One with an fd subscription is left to wasmtime (stdin
/// and stdout are memory pipes, always ready; a file's readiness is a
/// read wasmtime runs on its blocking pool); so is anything malformed,
/// which wasmtime refuses itself.
fn waits_past_deadline(caller: &Caller<'_, Ctx>, memory: Memory, subs: i32, n: i32) -> bool {
    let n = n as u32 as usize;
    let start = subs as u32 as usize;
    let Some(bytes) = memory
        .data(caller)
        .get(start..start.saturating_add(n.saturating_mul(SUBSCRIPTION_SIZE)))
    else {
        return false;
    };
    let clock = &caller.data().clock;
    let now = Instant::now();
    let mut earliest: Option<Duration> = None;
    for s in bytes.chunks_exact(SUBSCRIPTION_SIZE) {
        if s[8] != TAG_CLOCK {
            return false;
        }
        let id = u32::from_le_bytes(s[16..20].try_into().unwrap_or_default());
        let timeout = u64::from_le_bytes(s[24..32].try_into().unwrap_or_default());
        let flags = u16::from_le_bytes(s[40..42].try_into().unwrap_or_default());
        let wait = if flags & SUBCLOCK_ABSTIME == 0 {
            Duration::from_nanos(timeout)
        } else if id == CLOCK_REALTIME {
            let wall = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            Duration::from_nanos(timeout).saturating_sub(wall)
        } else {
            Duration::from_nanos(timeout).saturating_sub(now - clock.monotonic_base)
        };
        earliest = Some(earliest.map_or(wait, |e| e.min(wait)));
    }
    earliest.is_some_and(|w| now + w > clock.deadline)
}
