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

/// Which page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `GET /login`.
    Login,
    /// `GET /register`.
    Register,
}

#[derive(Template)]
#[template(path = "login.html")]
struct Login<'a> {
    site: &'a str,
    error: Option<&'a str>,
    return_to: &'a str,
    return_to_query: &'a str,
    email: &'a str,
    registration: bool,
}

#[derive(Template)]
#[template(path = "register.html")]
struct Register<'a> {
    site: &'a str,
    error: Option<&'a str>,
    return_to: &'a str,
    return_to_query: &'a str,
    email: &'a str,
}

/// What a page shows.
pub(crate) struct View<'a> {
    /// The host the user signs in to.
    pub(crate) site: &'a str,
    /// The message above the form after a failed attempt.
    pub(crate) error: Option<&'a str>,
    /// Where a success leads (already sanitised).
    pub(crate) return_to: &'a str,
    /// The email typed before, kept in its field.
    pub(crate) email: &'a str,
    /// Whether the login page links to the registration page.
    pub(crate) registration: bool,
}

/// The page `kind` showing `view`.
pub(crate) fn render(kind: Kind, view: &View<'_>) -> String {
    let query: String = form_urlencoded::byte_serialize(view.return_to.as_bytes()).collect();
    // Rendering into a String only fails if a value's Display fails; ours are &str.
    match kind {
        Kind::Login => Login {
            site: view.site,
            error: view.error,
            return_to: view.return_to,
            return_to_query: &query,
            email: view.email,
            registration: view.registration,
        }
        .render(),
        Kind::Register => Register {
            site: view.site,
            error: view.error,
            return_to: view.return_to,
            return_to_query: &query,
            email: view.email,
        }
        .render(),
    }
    .unwrap_or_default()
}

/// The login page (see [`render`]).
#[cfg(test)]
pub(crate) fn login(site: &str, error: Option<&str>, return_to: &str, email: &str) -> String {
    let view = View {
        site,
        error,
        return_to,
        email,
        registration: true,
    };
    render(Kind::Login, &view)
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
        assert!(
            html.contains("href=\"/register?return_to=%2F%22%3E%3Cscript"),
            "{html}"
        );
    }

    #[test]
    fn the_registration_page_links_back_to_login() {
        let view = View {
            site: "a.example",
            error: None,
            return_to: "/app/",
            email: "",
            registration: true,
        };
        let html = render(Kind::Register, &view);
        assert!(html.contains("action=\"/register\""));
        assert!(html.contains("autocomplete=\"new-password\""));
        assert!(
            html.contains("href=\"/login?return_to=%2Fapp%2F\""),
            "{html}"
        );
    }
}
