//! Accounts in browser mode (`docs/browser.md`) over raw sockets: the registration page and its form, and a password change by cookie.

use crate::browser::{
    cookie_json_post, cookie_of, form_post, gateway, get, header, session_cookie, yaml, ORIGIN,
};
use crate::helpers::raw::{send_raw, RawUpstream};
use crate::helpers::*;

#[tokio::test]
async fn the_registration_page_creates_an_account_and_signs_it_in() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "");
    let html = "Accept: text/html\r\n";
    let login = send_raw(gw.addr, &get("/login?return_to=%2Fapp%2F", html)).await;
    assert!(
        login
            .body
            .contains("href=\"/register?return_to=%2Fapp%2F\""),
        "{}",
        login.body
    );
    let page = send_raw(gw.addr, &get("/register?return_to=%2Fapp%2F", html)).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("action=\"/register\"") && page.body.contains("new-password"));
    let email = format!("{}@example.com", unique("reg"));
    // The rules of POST /register, shown on the page with its status.
    let short = send_raw(
        gw.addr,
        &form_post("/register", &email, "short", "/app/", ORIGIN),
    )
    .await;
    assert_eq!(short.status, 400, "{short:?}");
    assert!(
        short.body.contains("at least 8 characters"),
        "{}",
        short.body
    );
    let cross = send_raw(
        gw.addr,
        &form_post(
            "/register",
            &email,
            PASSWORD,
            "/app/",
            "https://evil.example",
        ),
    )
    .await;
    assert_eq!(cross.status, 403, "{cross:?}");
    let made = send_raw(
        gw.addr,
        &form_post("/register", &email, PASSWORD, "/app/x", ORIGIN),
    )
    .await;
    assert_eq!(made.status, 303, "{made:?}");
    assert_eq!(header(&made, "location"), [format!("{ORIGIN}/app/x")]);
    let cookie = session_cookie(&made).expect("signed in");
    let r = send_raw(gw.addr, &get("/app/x", &format!("Cookie: {cookie}\r\n"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(up.last().unwrap().header("x-user-id").len(), 1);
    let again = send_raw(
        gw.addr,
        &form_post("/register", &email, PASSWORD, "/", ORIGIN),
    )
    .await;
    assert_eq!(again.status, 409, "{again:?}");
    assert!(session_cookie(&again).is_none());
    // The JSON API's /register is unchanged.
    let (status, body) = gw
        .register(&format!("{}@example.com", unique("json")), PASSWORD)
        .await;
    assert_eq!(status, 201, "{body}");
    // Without allow_registration: no page, no link, the JSON API as before.
    let closed = TestGateway::builder()
        .yaml(&yaml(&up, "").replace(", allow_registration: true", ""))
        .start();
    let page = send_raw(closed.addr, &get("/register", html)).await;
    assert_eq!(page.status, 405, "{page:?}");
    let login = send_raw(closed.addr, &get("/login", html)).await;
    assert!(!login.body.contains("/register"), "{}", login.body);
}

#[tokio::test]
async fn a_password_change_by_cookie_moves_the_cookie_and_hands_no_token_to_the_page() {
    let up = RawUpstream::start().await;
    let gw = gateway(&up, "");
    let user = gw.new_user().await;
    let old = cookie_of(&gw, &user).await;
    let body =
        format!("{{\"current_password\":\"{PASSWORD}\",\"new_password\":\"another good one\"}}");
    let r = send_raw(gw.addr, &cookie_json_post("/password", &old, &body)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json(),
        serde_json::json!({"success": "Password changed."})
    );
    let new = session_cookie(&r).expect("the new session's cookie");
    assert_ne!(new, old);
    let with_new = send_raw(gw.addr, &get("/app/", &format!("Cookie: {new}\r\n"))).await;
    assert_eq!(with_new.status, 200);
    let with_old = send_raw(gw.addr, &get("/app/", &format!("Cookie: {old}\r\n"))).await;
    assert_eq!(
        with_old.status, 401,
        "every other session ended: {with_old:?}"
    );
}
