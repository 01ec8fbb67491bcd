//! `realpath` for Debian's 2022 wasi-libc, which lacks it while Rust's std
//! (`fs::canonicalize`, used by the `ignore` crate) calls it. Lexical only:
//! WASI has no symlink resolution outside a preopen to offer anyway, and the
//! runner resolves symlinks itself before it decides.

use std::ffi::{c_char, c_int, CStr};

extern "C" {
    fn malloc(n: usize) -> *mut u8;
    static mut errno: c_int;
}

const EINVAL: c_int = 28;
const ENOENT: c_int = 44;
const ENOMEM: c_int = 48;

/// # Safety
/// Called by libc users with a NUL-terminated `path` and either a null or a
/// PATH_MAX-sized `resolved` buffer, as POSIX specifies.
#[no_mangle]
pub unsafe extern "C" fn realpath(path: *const c_char, resolved: *mut c_char) -> *mut c_char {
    let Ok(p) = CStr::from_ptr(path).to_str() else {
        errno = EINVAL;
        return std::ptr::null_mut();
    };
    if !p.starts_with('/') {
        errno = EINVAL;
        return std::ptr::null_mut();
    }
    if std::fs::symlink_metadata(p).is_err() {
        errno = ENOENT;
        return std::ptr::null_mut();
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let out = format!("/{}", parts.join("/"));
    let buf = if resolved.is_null() {
        malloc(out.len() + 1)
    } else {
        resolved as *mut u8
    };
    if buf.is_null() {
        errno = ENOMEM;
        return std::ptr::null_mut();
    }
    std::ptr::copy_nonoverlapping(out.as_ptr(), buf, out.len());
    *buf.add(out.len()) = 0;
    buf as *mut c_char
}
