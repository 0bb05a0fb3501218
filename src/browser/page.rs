//! The hosted login page and its stylesheet: server-rendered HTML, no script, nothing from another origin.

use askama::Template;

/// Where the stylesheet is served (under the reserved `/.authgate/` prefix).
pub(crate) const STYLESHEET_PATH: &str = "/.authgate/style.css";

/// The stylesheet itself.
pub(crate) const STYLESHEET: &str = include_str!("../../static/authgate.css");

/// The page's own rules: only its stylesheet loads, its form posts only here,
/// and no other page may frame it (clickjacking the password field).
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[derive(Template)]
#[template(path = "login.html")]
struct Login<'a> {
    site: &'a str,
    error: Option<&'a str>,
    return_to: &'a str,
    email: &'a str,
}

/// The login page, with `error` above the form after a failed attempt, and
/// the email typed before kept in its field.
pub(crate) fn login(site: &str, error: Option<&str>, return_to: &str, email: &str) -> String {
    let page = Login {
        site,
        error,
        return_to,
        email,
    };
    // Rendering into a String only fails if a value's Display fails; ours are &str.
    page.render().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_escaped() {
        let html = login(
            "auth.example",
            Some("<b>bad</b>"),
            "/\"><script>alert(1)</script>",
            "a\"@b",
        );
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<b>bad"), "{html}");
        assert!(
            html.contains("value=\"/&#34;&#62;&#60;script&#62;"),
            "{html}"
        );
        assert!(html.contains("<label for=\"email\">Email</label>"));
        assert!(html.contains("<label for=\"password\">Password</label>"));
    }
}
