//! Whether a request is a browser page load (a navigation) or a program's call (fetch, XHR, an API client).
//!
//! Only a navigation is ever sent to the login page; everything else gets the
//! JSON 401 it can act on (the bug that other identity-aware proxies' users
//! file most: an XHR answered with a login page).

use http::HeaderMap;

/// `Sec-Fetch-Mode: navigate`, or else an `Accept` preferring HTML to JSON.
pub(crate) fn is_navigation(headers: &HeaderMap) -> bool {
    match headers.get("sec-fetch-mode") {
        Some(mode) => mode.as_bytes().eq_ignore_ascii_case(b"navigate"),
        None => prefers_html(headers),
    }
}

/// Whether `Accept` ranks `text/html` above `application/json` (wildcards
/// count for both, so `*/*` alone prefers neither).
pub(crate) fn prefers_html(headers: &HeaderMap) -> bool {
    let (mut html, mut json) = (0.0f32, 0.0f32);
    let (mut html_exact, mut json_exact) = (false, false);
    for value in headers.get_all(http::header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0)
                .clamp(0.0, 1.0);
            match media.as_str() {
                "text/html" => (html, html_exact) = (q, true),
                "application/json" => (json, json_exact) = (q, true),
                "text/*" if !html_exact => html = html.max(q),
                "application/*" if !json_exact => json = json.max(q),
                "*/*" => {
                    if !html_exact {
                        html = html.max(q);
                    }
                    if !json_exact {
                        json = json.max(q);
                    }
                }
                _ => {}
            }
        }
    }
    html > json
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::ACCEPT, v.parse().unwrap());
        h
    }

    #[test]
    fn browsers_prefer_html_and_programs_do_not() {
        let chrome =
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
        assert!(prefers_html(&accept(chrome)));
        assert!(prefers_html(&accept("text/html")));
        for program in [
            "*/*",
            "application/json",
            "application/json, text/html",
            "text/html;q=0.5, application/json",
            "text/html;q=0",
            "",
        ] {
            assert!(!prefers_html(&accept(program)), "{program:?}");
        }
        assert!(!prefers_html(&HeaderMap::new()));
    }

    #[test]
    fn sec_fetch_mode_decides_when_present() {
        let mut h = accept("text/html");
        h.insert("sec-fetch-mode", "cors".parse().unwrap());
        assert!(!is_navigation(&h));
        let mut h = accept("*/*");
        h.insert("sec-fetch-mode", "navigate".parse().unwrap());
        assert!(is_navigation(&h));
    }
}
