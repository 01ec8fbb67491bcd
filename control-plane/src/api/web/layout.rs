//! The frame of every page: navigation, the sign-out form, the style
//! sheet and script (files of this binary, never inline), and the headers
//! that keep work content inert — a strict Content-Security-Policy (no
//! inline script or style, nothing from another origin), no framing, no
//! caching, no referrer, no MIME sniffing. Text is escaped by `maud`
//! everywhere; nothing here marks content as pre-escaped.

use super::sign_in::Viewer;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

/// The policy every page is served with.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What a page is and who looks at it.
pub(crate) struct Page<'a> {
    title: String,
    viewer: Option<&'a Viewer>,
}

impl<'a> Page<'a> {
    /// A page for a signed-in person.
    pub(crate) fn new(title: impl Into<String>, viewer: &'a Viewer) -> Self {
        Page {
            title: title.into(),
            viewer: Some(viewer),
        }
    }

    /// A page before signing in.
    pub(crate) fn anonymous(title: impl Into<String>) -> Self {
        Page {
            title: title.into(),
            viewer: None,
        }
    }
}

/// The headers of every page and fragment.
pub(crate) fn protect(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // `same-origin`, not `no-referrer`: under `no-referrer` a browser sends
    // `Origin: null` with a form, and the origin check could not tell the
    // pages' own forms from another site's. Links to other sites (a pull
    // request) still carry no referrer.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// A whole page.
pub(crate) fn render(status: StatusCode, page: &Page<'_>, body: Markup) -> Response {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (page.title) " · control plane" }
                link rel="stylesheet" href="/ui/static/ui.css";
                script src="/ui/static/live.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/ui/sessions" { "runner · control plane" }
                    @if let Some(v) = page.viewer {
                        nav {
                            a href="/ui/sessions" { "Sessions" }
                            a href="/ui/decisions" { "Decisions" }
                            a href="/ui/agents" { "Agents" }
                            a href="/ui/workers" { "Workers" }
                        }
                        form.signout method="post" action="/ui/logout" {
                            input type="hidden" name="csrf" value=(v.csrf);
                            span.who { (v.user) }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    h1 { (page.title) }
                    (body)
                }
            }
        }
    };
    let mut r = (status, Html(doc.into_string())).into_response();
    protect(&mut r);
    r
}

/// A page that says what went wrong and what to do.
pub(crate) fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    render(
        status,
        &Page::anonymous(title),
        html! { p.err role="alert" { (message) } p { a href="/ui/sessions" { "Back to the sessions" } } },
    )
}

/// A store error as a page (not found: the same page as a session that
/// does not exist).
pub(crate) fn store_error(e: crate::store::StoreError) -> Response {
    let api = crate::error::ApiError::from(e);
    error_page(api.status, "Not available", &api.message)
}

/// A badge for a state or a result, styled by its name.
pub(crate) fn badge(kind: &str, text: &str) -> Markup {
    html! { span class={ "badge " (kind) "-" (text.replace(['.', ' '], "_")) } { (text) } }
}
