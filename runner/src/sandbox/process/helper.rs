//! The helper that builds the sandbox: the `runner-sandbox SPEC-JSON`
//! binary.
//!
//! The runner is multi-threaded, and after `fork` in a multi-threaded
//! process almost nothing is safe; so the runner starts this small,
//! single-threaded helper, which sets everything up in ordinary code and
//! finally execs bash. Process tree:
//!
//! ```text
//! runner ──spawn──> P0 helper (host namespaces)
//!                    └─clone(NEWUSER|NEWNS|NEWPID|NEWNET|NEWIPC|NEWUTS)─> C: pid 1 of the sandbox
//!                                                                          └─fork─> G: bash -c COMMAND
//! ```
//!
//! P0 maps the sandbox's root to an unprivileged outside uid, then waits.
//! C builds a fresh root holding only what the confinement names
//! ([`mounts::fresh_root`]) and pivots into it, brings loopback up, forks G and reaps; when G exits, C
//! exits and the kernel kills everything left in the pid namespace. C also
//! answers the sandbox's DNS ([`dns_stub`]: every name refused, each new
//! name reported as a `dns NAME` line on the status descriptor). G sets
//! rlimits, Landlock, drops every capability, installs seccomp and execs.
//! Every step that fails reports on the status descriptor (fd 3) and exits
//! 125; on success G's exec closes it, which the runner reads as "started".

use super::dns_stub;
use super::mounts;
use super::privileges;
use super::proxy::PROXY_PORT;
use super::spec::SandboxSpec;
use super::{landlock, seccomp};
use nix::sys::prctl;
use nix::sys::signal::Signal;
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

/// Descriptor on which the helper reports setup failures.
pub const STATUS_FD: i32 = 3;

/// The status line the helper sends just before it execs the command,
/// followed by [`monotonic_ns`] at that moment: how the runner learns how
/// long the sandbox took to start.
pub const STATUS_STARTED: &str = "started ";

/// `CLOCK_MONOTONIC` in nanoseconds: one clock for the runner and the
/// helper (the sandbox may not make a time namespace of its own).
pub fn monotonic_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

/// Exit code of a helper whose setup failed.
pub const SETUP_FAILED: i32 = 125;

fn fail(msg: &str) -> ! {
    // SAFETY: STATUS_FD is ours (inherited from the runner); a short write
    // of a message, then _exit without running destructors.
    unsafe {
        let line = format!("error {msg}\n");
        libc::write(STATUS_FD, line.as_ptr().cast(), line.len());
        libc::_exit(SETUP_FAILED)
    }
}

fn check<T, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => fail(&format!("{what}: {e}")),
    }
}

fn os_check(rc: i64, what: &str) {
    if rc < 0 {
        fail(&format!("{what}: {}", std::io::Error::last_os_error()));
    }
}

/// Entry point of `runner-sandbox`. Never returns.
pub fn main(spec_json: &str) -> ! {
    let spec: SandboxSpec = check(serde_json::from_str(spec_json), "sandbox spec");
    // SAFETY: raw syscalls with constant arguments in a single-threaded process.
    unsafe {
        // Nothing inherited beyond stdio and the status descriptor.
        libc::syscall(
            libc::SYS_close_range,
            (STATUS_FD + 1) as u32,
            u32::MAX,
            0u32,
        );
        // Own session: no controlling terminal (no TIOCSTI into the runner's).
        libc::setsid();
    }
    check(prctl::set_pdeathsig(Signal::SIGKILL), "pdeathsig");
    // Drop root's supplementary groups before the user namespace denies setgroups.
    // SAFETY: setgroups with an empty list.
    os_check(
        unsafe { libc::setgroups(0, std::ptr::null()) } as i64,
        "setgroups",
    );

    // Mode proxy: a descriptor of the proxy socket's directory, so the
    // sandbox reaches the socket through /proc/self/fd even after its own
    // /tmp hides the host's.
    let proxy_dir = spec.proxy_socket.as_ref().map(|sock| {
        let dir = sock.parent().unwrap_or(std::path::Path::new("/"));
        let c = check(
            CString::new(dir.as_os_str().as_encoded_bytes()),
            "proxy dir",
        );
        // SAFETY: open(2) with O_PATH of a NUL-terminated path.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        os_check(fd as i64, "open the proxy socket's directory");
        let name = sock
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("/proc/self/fd/{fd}/{name}")
    });
    check(mounts::stage_workspace(&spec), "mounts");
    let (go_r, go_w) = check(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC), "pipe");
    // Lifeline: P0 holds the write end until it dies; the sandbox's pid 1
    // watches the read end, which hangs up when P0 is gone.
    let (life_r, life_w) = check(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC), "pipe");
    let flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS;
    // SAFETY: clone with a NULL stack behaves like fork; this process is
    // single-threaded, so the child may run arbitrary code.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    os_check(pid, "clone into new namespaces");
    if pid == 0 {
        drop(go_w);
        drop(life_w);
        sandbox_init(&spec, go_r, life_r, proxy_dir);
    }
    drop(go_r);
    drop(life_r);
    // Held, never written, until this process exits.
    let _lifeline = life_w;
    let pid = pid as i32;
    let write = |file: &str, content: String| {
        check(std::fs::write(format!("/proc/{pid}/{file}"), content), file);
    };
    write("setgroups", "deny".into());
    write("uid_map", format!("0 {} 1\n", spec.uid));
    write("gid_map", format!("0 {} 1\n", spec.gid));
    let mut go = std::fs::File::from(go_w);
    check(go.write_all(&[1]), "start the sandbox");
    drop(go);
    std::process::exit(wait_for(pid))
}

fn wait_for(pid: i32) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            fail("waitpid");
        }
    }
    exit_code(status)
}

fn exit_code(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

/// C: pid 1 of the sandbox.
fn sandbox_init(
    spec: &SandboxSpec,
    go_r: OwnedFd,
    life_r: OwnedFd,
    proxy_path: Option<String>,
) -> ! {
    let mut byte = [0u8; 1];
    let mut go = std::fs::File::from(go_r);
    if go.read(&mut byte).unwrap_or(0) != 1 {
        // P0 died before mapping us.
        // SAFETY: immediate exit.
        unsafe { libc::_exit(SETUP_FAILED) }
    }
    drop(go);
    // The map does not change our credentials by itself: become the mapped root.
    // SAFETY: plain credential syscalls.
    unsafe {
        os_check(libc::setresgid(0, 0, 0) as i64, "setresgid");
        os_check(libc::setresuid(0, 0, 0) as i64, "setresuid");
    }
    // Changing credentials clears the parent-death signal, so it is set only
    // now; and since P0 may have died in between, the lifeline is checked
    // after it is set. Either way: no P0, no sandbox.
    check(prctl::set_pdeathsig(Signal::SIGKILL), "pdeathsig");
    let mut poll = [nix::poll::PollFd::new(
        std::os::fd::AsFd::as_fd(&life_r),
        nix::poll::PollFlags::POLLIN,
    )];
    let gone = nix::poll::poll(&mut poll, nix::poll::PollTimeout::ZERO).unwrap_or(1) > 0;
    if gone {
        // SAFETY: immediate exit; the runner is gone.
        unsafe { libc::_exit(SETUP_FAILED) }
    }
    check(mounts::make_private(), "mounts");
    check(mounts::fresh_root(spec), "filesystem view");
    check(nix::unistd::sethostname("sandbox"), "sethostname");
    loopback_up();
    // The resolver the sandbox's resolv.conf names; without it lookups
    // still fail (nothing listens), only without a note.
    let dns = std::net::UdpSocket::bind(("127.0.0.1", 53)).ok();
    let listener = proxy_path.as_ref().map(|_| {
        check(
            std::net::TcpListener::bind(("127.0.0.1", PROXY_PORT)),
            "proxy port inside the sandbox",
        )
    });

    // SAFETY: fork in a single-threaded process.
    let g = unsafe { libc::fork() };
    os_check(g as i64, "fork");
    if g == 0 {
        drop(listener);
        drop(dns);
        exec_command(spec);
    }
    if let Some(dns) = dns {
        std::thread::spawn(move || dns_stub::serve(&dns, &mut report_status));
    }
    if let (Some(listener), Some(path)) = (listener, proxy_path) {
        std::thread::spawn(move || bridge(listener, path));
    }
    // Reap everything; when the command exits, so does the sandbox.
    loop {
        let mut status = 0;
        // SAFETY: waitpid for any child of pid 1.
        let r = unsafe { libc::waitpid(-1, &mut status, 0) };
        if r == g {
            // SAFETY: immediate exit; the kernel kills the rest of the pid namespace.
            unsafe { libc::_exit(exit_code(status)) }
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD) {
            // SAFETY: immediate exit.
            unsafe { libc::_exit(SETUP_FAILED) }
        }
    }
}

/// Sends one line to the runner on the status descriptor (which pid 1
/// keeps open until the sandbox ends). Lines are short, so each write is
/// atomic beside the other writers'.
fn report_status(line: &str) {
    let line = format!("{line}\n");
    // SAFETY: a write of an owned buffer to our own descriptor.
    unsafe { libc::write(STATUS_FD, line.as_ptr().cast(), line.len()) };
}

/// Forwards every connection to 127.0.0.1:PROXY_PORT to the runner's proxy
/// socket (pid 1 runs this, outside Landlock and seccomp, with no route out).
fn bridge(listener: std::net::TcpListener, socket: String) {
    for conn in listener.incoming() {
        let Ok(tcp) = conn else { continue };
        let socket = socket.clone();
        std::thread::spawn(move || {
            let Ok(unix) = std::os::unix::net::UnixStream::connect(&socket) else {
                return;
            };
            let (Ok(mut t1), Ok(mut u1)) = (tcp.try_clone(), unix.try_clone()) else {
                return;
            };
            let up = std::thread::spawn(move || {
                let _ = std::io::copy(&mut t1, &mut u1);
                let _ = u1.shutdown(std::net::Shutdown::Write);
            });
            let (mut t2, mut u2) = (tcp, unix);
            let _ = std::io::copy(&mut u2, &mut t2);
            let _ = t2.shutdown(std::net::Shutdown::Write);
            let _ = up.join();
        });
    }
}

/// Loopback up in the new network namespace (without netlink, which the
/// seccomp filter forbids anyway).
fn loopback_up() {
    // SAFETY: ioctl on a local socket with a zeroed, then filled, ifreq.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        os_check(fd as i64, "socket for loopback");
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            ifr.ifr_name[i] = *b as libc::c_char;
        }
        os_check(
            libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr) as i64,
            "loopback flags",
        );
        ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        os_check(
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr) as i64,
            "loopback up",
        );
        libc::close(fd);
    }
}

/// G: the command itself, under every restriction.
fn exec_command(spec: &SandboxSpec) -> ! {
    check(nix::unistd::chdir(&spec.cwd), "working directory");
    check(privileges::apply_limits(&spec.limits), "rlimits");
    let proxy_port = spec.proxy_socket.as_ref().map(|_| PROXY_PORT);
    let (readable, writable) = spec.landlock_lists();
    let enforcement = check(
        landlock::restrict_self(&readable, &writable, proxy_port),
        "landlock",
    );
    if enforcement == landlock::Enforcement::None && !spec.allow_degraded {
        fail("Landlock is not enforced by this kernel: shell tools refuse to run unconfined. Enable Landlock (CONFIG_SECURITY_LANDLOCK=y and `lsm=landlock,...` on the kernel command line), or set sandbox.degraded = true in the worker config to accept running without it");
    }
    check(privileges::drop_all_capabilities(), "drop capabilities");
    check(seccomp::install(), "seccomp");

    let home = spec.workspace.to_string_lossy().into_owned();
    let mut env = vec![
        "PATH=/usr/local/bin:/usr/bin:/bin".to_string(),
        format!("HOME={home}"),
        "TMPDIR=/tmp".to_string(),
        "LANG=C.UTF-8".to_string(),
        "TERM=dumb".to_string(),
        // Git inside reads no host-wide configuration (credential helpers,
        // paths of the host's); its global one is $HOME/.gitconfig, in the
        // workspace.
        "GIT_CONFIG_NOSYSTEM=1".to_string(),
    ];
    if spec.proxy_socket.is_some() {
        let url = format!("http://127.0.0.1:{PROXY_PORT}");
        for k in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "http_proxy",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            env.push(format!("{k}={url}"));
        }
        env.push("NO_PROXY=".into());
    }
    // The configured variables replace a default of the same name (PATH,
    // say) rather than follow it: with two, programs disagree on which
    // counts.
    for (k, v) in &spec.env {
        let prefix = format!("{k}=");
        env.retain(|e| !e.starts_with(&prefix));
        env.push(format!("{prefix}{v}"));
    }
    let env: Vec<CString> = env
        .into_iter()
        .filter_map(|s| CString::new(s).ok())
        .collect();
    let cmd = check(CString::new(spec.command.as_str()), "command");
    let argv = [c"bash".to_owned(), c"-c".to_owned(), cmd];
    report_status(&format!("{STATUS_STARTED}{}", monotonic_ns()));
    // The status descriptor closes on exec: "started".
    // SAFETY: fcntl on our own descriptor.
    unsafe { libc::fcntl(STATUS_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    let e = nix::unistd::execve(c"/bin/bash", &argv, &env);
    fail(&format!("exec /bin/bash: {e:?}"))
}
