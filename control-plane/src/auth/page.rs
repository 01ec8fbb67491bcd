//! The consent page and the device verification page's frame: plain HTML
//! a person can read, no script, not frameable, never cached.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

/// Escapes text for HTML bodies and attribute values.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;line-height:1.5}input[type=text],input[type=password]{width:100%;padding:.4rem;margin:.2rem 0 .8rem}button{padding:.5rem 1.2rem;margin-right:.5rem}.err{color:#a00}code{font-size:1.1rem;word-break:break-all;background:#eee;padding:.3rem}";

/// Wraps a body in a page with the protective headers.
pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content=\"width=device-width\"><title>{}</title><style>{STYLE}</style></head><body><h1>{}</h1>{body}</body></html>",
        esc(title),
        esc(title)
    );
    let mut r = (status, Html(html)).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// The consent form. `hidden` are the authorization request's parameters,
/// carried to the POST.
pub(crate) fn consent(client_name: &str, hidden: &[(&str, &str)], error: Option<&str>) -> Response {
    let mut fields = String::new();
    for (k, v) in hidden {
        fields.push_str(&format!(
            "<input type=hidden name=\"{}\" value=\"{}\">",
            esc(k),
            esc(v)
        ));
    }
    let err = error
        .map(|e| format!("<p class=err role=alert>{}</p>", esc(e)))
        .unwrap_or_default();
    let body = format!(
        "<p><strong>{}</strong> asks to act as you on this control plane: register workers, claim queued agent sessions and run them, and post their activities and results.</p>\
         <p>Sign in to allow it. It gets a short-lived access token and a refresh token; you can revoke them at any time.</p>{err}\
         <form method=post action=\"/oauth/authorize\">{fields}\
         <label>User name<input type=text name=username autocomplete=username required></label>\
         <label>Password<input type=password name=password autocomplete=current-password required></label>\
         <button type=submit name=decision value=allow>Allow</button>\
         <button type=submit name=decision value=deny formnovalidate>Deny</button></form>",
        esc(client_name)
    );
    page(
        if error.is_some() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        },
        "Allow access?",
        &body,
    )
}
