#!/usr/bin/env python3
"""A user in a real browser against a running gateway in browser mode
(tests/api/chromium.rs runs it): Debian's Chromium, headless, driven by
Playwright's sync API. One line per step; exit 0 only if every step held, else
the step that failed and what the browser saw (URL, status, page text), exit 1.

The contract it checks, behind the gateway a demo app (tests/browser/demo_app.py)
on the route /app/ with auth required:
  a. a navigation to /app/ without a session: 302 to /login?return_to=%2Fapp%2F,
     a login form with labelled email and password inputs and a submit button;
  b. the form submitted from the keyboard (Enter): POST /login, 303 to /app/,
     the app says "Hello, user <id>", and its Cookie header lacks the gateway's;
  c. fetch('/app/api/whoami') from the page: 200 {"user_id": "<id>"};
  d. after the access token's lifetime (+1.5 s): the same, the gateway having
     refreshed the session itself;
  e. a second tab of the same browser: straight onto /app/, the same user;
  f. "Log out" in the first tab: POST /logout, 303 to /login;
  g. the second tab reloaded: /login (the session is over);
  h. fetch('/app/api/whoami') from a gateway page once logged out: 401;
and throughout, document.cookie never shows the gateway's cookie (HttpOnly).

Chromium is $CHROMIUM (default /usr/bin/chromium); `playwright install` is
never needed (nor possible on a closed network).
"""

import argparse
import json
import os
import sys
import time
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

# Without the background-networking switches Chromium's own connections (to
# Google's services) are refused on a closed network and get in the way.
# Playwright gives the browser a fresh, empty --user-data-dir of its own (and
# refuses one in args with launch()).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Every action or wait of a step gives up after this long (ms).
TIMEOUT_MS = 15_000


class StepFailed(Exception):
    pass


class Flow:
    def __init__(self, gateway, screenshot):
        self.gateway = gateway.rstrip("/")
        self.screenshot = screenshot
        self.step = "launch"
        self.page = None  # the page the current step looks at, for reports
        self.nav_status = {}  # page -> status of its last main-frame document
        self.report = "  (the browser did not start)"

    # --- reporting ---------------------------------------------------------

    def ok(self, what):
        print(f"ok   {self.step}: {what}", flush=True)

    def fail(self, what):
        raise StepFailed(what)

    def seen(self):
        """What the browser shows now: URL, status, a snippet of the page text."""
        page = self.page
        if page is None:
            return "  (no page)"
        lines = [f"  url:    {page.url}", f"  status: {self.nav_status.get(page, '?')}"]
        try:
            text = page.inner_text("body", timeout=2_000)
        except PlaywrightError as e:
            text = f"(no body text: {str(e).splitlines()[0]})"
        text = " ".join(text.split())
        lines.append(f"  text:   {text[:400]!r}")
        return "\n".join(lines)

    # --- helpers -----------------------------------------------------------

    def url(self, path):
        return self.gateway + path

    def watch(self, page):
        """Record the status of each main-frame document response of `page`."""

        def on_response(resp):
            if resp.request.is_navigation_request() and resp.frame == page.main_frame:
                self.nav_status[page] = resp.status

        page.on("response", on_response)
        return page

    @staticmethod
    def chain(resp):
        """The statuses and URLs that led to `resp`: [(status, url), ...], first hop first."""
        hops = []
        req = resp.request if resp is not None else None
        while req is not None:
            r = req.response()
            hops.append((r.status if r is not None else None, req.url))
            req = req.redirected_from
        return list(reversed(hops))

    def expect_chain(self, resp, first_status, what):
        hops = self.chain(resp)
        shown = " -> ".join(f"{s} {u}" for s, u in hops)
        if len(hops) < 2 or hops[0][0] != first_status:
            self.fail(f"{what}: expected a {first_status} redirect first, got: {shown}")
        if hops[-1][0] != 200:
            self.fail(f"{what}: the redirect did not end on a 200: {shown}")
        return shown

    def at_path(self, path):
        return urlsplit(self.page.url).path == path

    def no_script_cookie(self):
        cookies = self.page.evaluate("document.cookie")
        if "authgate" in cookies.lower():
            self.fail(f"document.cookie shows the gateway's cookie (not HttpOnly): {cookies!r}")

    def whoami(self, page):
        """fetch('/app/api/whoami') from `page`: status, whether redirected, final URL, body."""
        return page.evaluate(
            """async () => {
                const r = await fetch('/app/api/whoami', {credentials: 'same-origin'});
                return {status: r.status, redirected: r.redirected, url: r.url,
                        type: r.headers.get('content-type') || '', body: await r.text()};
            }"""
        )

    def expect_user(self, got, user_id, what):
        if got["status"] != 200 or got["redirected"]:
            self.fail(f"{what}: expected 200 from /app/api/whoami, got {got}")
        try:
            body = json.loads(got["body"])
        except ValueError:
            self.fail(f"{what}: not JSON: {got}")
        if body != {"user_id": user_id}:
            self.fail(f"{what}: expected {{'user_id': {user_id!r}}}, got {body}")

    def hello_user(self):
        """The id in the demo app's "Hello, user <id>"."""
        text = self.page.inner_text("h1")
        prefix = "Hello, user "
        if not text.startswith(prefix) or not text[len(prefix):].strip():
            self.fail(f"expected 'Hello, user <id>', got {text!r}")
        return text[len(prefix):].strip()

    @staticmethod
    def cookie_facts(context):
        """The context's cookies without their values: name, flags."""
        out = []
        for c in context.cookies():
            flags = [f for f in ("httpOnly", "secure") if c.get(f)]
            flags.append(f"SameSite={c.get('sameSite')}")
            out.append(f"{c['name']}({', '.join(flags)}, path={c.get('path')})")
        return out

    # --- the flow ----------------------------------------------------------

    def run(self, email, password, access_ttl, executable):
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
            try:
                self.ok(f"Chromium {browser.version} from {executable}")
                context = browser.new_context(viewport={"width": 1000, "height": 700})
                context.set_default_timeout(TIMEOUT_MS)
                context.set_default_navigation_timeout(TIMEOUT_MS)
                try:
                    self.steps(context, email, password, access_ttl)
                except (StepFailed, PlaywrightError):
                    self.report = self.seen()  # while the browser is still up
                    raise
            finally:
                browser.close()

    def steps(self, context, email, password, access_ttl):
        # a. No session: the navigation is sent to the login page.
        self.step = "a"
        page = self.page = self.watch(context.new_page())
        resp = page.goto(self.url("/app/"))
        shown = self.expect_chain(resp, 302, "GET /app/ without a session")
        if not self.at_path("/login"):
            self.fail("expected to land on /login")
        return_to = parse_qs(urlsplit(page.url).query).get("return_to")
        if return_to != ["/app/"]:
            self.fail(f"expected return_to=/app/ in the query, got {return_to}")
        email_input = page.get_by_label("Email")
        password_input = page.get_by_label("Password")
        for name, loc in (("email", email_input), ("password", password_input)):
            if loc.count() != 1:
                self.fail(f"expected one input labelled {name.capitalize()!r}, found {loc.count()}")
            if loc.get_attribute("name") != name:
                self.fail(f"the input labelled {name.capitalize()!r} is not name={name}: "
                          f"{loc.evaluate('e => e.outerHTML')}")
        form = page.locator("form").filter(has=page.locator("input[name=password]"))
        if form.count() != 1:
            self.fail(f"expected one form holding the password input, found {form.count()}")
        submit = form.locator("button:not([type=button]):not([type=reset]), input[type=submit]")
        if submit.count() < 1:
            self.fail("the login form has no submit button")
        self.no_script_cookie()
        if self.screenshot:
            page.screenshot(path=self.screenshot)
        self.ok(f"{shown}; a login form with labelled Email and Password"
                + (f"; screenshot {self.screenshot}" if self.screenshot else ""))

        # b. Keyboard submit: POST /login, 303 to /app/.
        self.step = "b"
        email_input.fill(email)
        password_input.fill(password)
        with page.expect_navigation() as nav:
            password_input.press("Enter")
        shown = self.expect_chain(nav.value, 303, "POST /login")
        if page.url != self.url("/app/"):
            self.fail(f"expected to land on {self.url('/app/')}")
        if "Hello, user " not in page.inner_text("body"):
            self.fail("the app page does not say 'Hello, user '")
        user_id = self.hello_user()
        upstream_cookies = page.inner_text("#cookies")
        if "authgate" in upstream_cookies.lower():
            self.fail(f"the app received the gateway's cookie: {upstream_cookies!r}")
        cookies = context.cookies()
        if not cookies:
            self.fail("the browser holds no cookie after logging in")
        for c in cookies:
            if "authgate" in c["name"].lower() and not c.get("httpOnly"):
                self.fail(f"the gateway's cookie {c['name']} is not HttpOnly")
        self.no_script_cookie()
        self.ok(f"{shown}; 'Hello, user {user_id}'; cookies: {', '.join(self.cookie_facts(context))}; "
                f"the app saw Cookie: {upstream_cookies!r}")

        # c. The page's own fetch carries the session.
        self.step = "c"
        self.expect_user(self.whoami(page), user_id, "fetch")
        self.no_script_cookie()
        self.ok(f'fetch /app/api/whoami: 200 {{"user_id": "{user_id}"}}')

        # d. Past the access token's lifetime the gateway refreshes by itself.
        self.step = "d"
        before = {c["name"]: c["value"] for c in context.cookies()}
        wait = access_ttl + 1.5
        time.sleep(wait)
        self.expect_user(self.whoami(page), user_id, f"fetch after {wait:g} s")
        after = {c["name"]: c["value"] for c in context.cookies()}
        changed = sorted(n for n in after if before.get(n) != after[n])
        self.no_script_cookie()
        self.ok(f"after {wait:g} s still 200 as {user_id}; cookies set anew: {', '.join(changed) or 'none'}")

        # e. A second tab shares the session.
        self.step = "e"
        page2 = self.page = self.watch(context.new_page())
        resp = page2.goto(self.url("/app/"))
        hops = self.chain(resp)
        if page2.url != self.url("/app/") or len(hops) != 1 or hops[0][0] != 200:
            self.fail(f"expected a 200 on /app/ straight away, got: {hops}")
        other = self.hello_user()
        if other != user_id:
            self.fail(f"the second tab is user {other}, the first {user_id}")
        self.no_script_cookie()
        self.ok(f"second tab: 200 /app/ as {user_id}, no login")

        # f. Log out from the first tab.
        self.step = "f"
        self.page = page
        page.bring_to_front()
        with page.expect_navigation() as nav:
            page.get_by_role("button", name="Log out").click()
        shown = self.expect_chain(nav.value, 303, "POST /logout")
        if not self.at_path("/login"):
            self.fail("expected to land on /login after logging out")
        self.no_script_cookie()
        # Told, not asserted: a __Host- cookie is cleared only by a Set-Cookie
        # that is itself Secure with Path=/ (Chromium ignores any other).
        left = [c for c in self.cookie_facts(context) if "authgate" in c.lower()]
        self.ok(f"{shown}; the gateway's cookies left in the browser: {', '.join(left) or 'none'}")

        # g. The second tab's session is over too.
        self.step = "g"
        self.page = page2
        page2.bring_to_front()
        resp = page2.reload()
        hops = self.chain(resp)
        if not self.at_path("/login"):
            self.fail(f"expected the reloaded /app/ to land on /login, got: {hops}")
        self.no_script_cookie()
        self.ok("reloaded /app/: " + " -> ".join(f"{s} {u}" for s, u in hops))

        # h. Without a session a fetch is refused, not redirected. Not from the
        # login page: its Content-Security-Policy (default-src 'none') lets it
        # fetch nothing, as it should; from a JSON page of the gateway.
        self.step = "h"
        self.page = page
        page.goto(self.gateway + "/.well-known/jwks.json")
        got = self.whoami(page)
        if got["status"] != 401 or got["redirected"]:
            self.fail(f"expected 401 from /app/api/whoami after logging out, got {got}")
        self.no_script_cookie()
        self.ok("fetch /app/api/whoami with the logged-out browser: 401")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gateway", required=True, help="http://127.0.0.1:PORT")
    ap.add_argument("--email", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--access-ttl", type=float, required=True, help="the gateway's access token lifetime, seconds")
    ap.add_argument("--screenshot", help="PNG of the login page (1000x700)")
    args = ap.parse_args()
    executable = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    flow = Flow(args.gateway, args.screenshot)
    try:
        flow.run(args.email, args.password, args.access_ttl, executable)
    except StepFailed as e:
        print(f"FAIL {flow.step}: {e}\n{flow.report}", flush=True)
        return 1
    except PlaywrightError as e:
        # A timeout or a browser error: its first lines, then what the page showed.
        msg = str(e).strip().splitlines() or [repr(e)]
        print(f"FAIL {flow.step}: {msg[0]}", flush=True)
        for line in msg[1:12]:
            print(f"  | {line}", flush=True)
        print(flow.report, flush=True)
        return 1
    print("all steps held", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
