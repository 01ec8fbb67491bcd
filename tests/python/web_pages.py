"""The control plane's web pages in a real headless Chromium (Debian's
/usr/bin/chromium), driven by Playwright: sign in, read a session's
timeline with a denial and its reason, approve the session's ask from the
page and watch it finish (live, through the event stream), and check that a
title that is an XSS payload shows as text. Screenshots of the sessions
list and the session page go to SCREENSHOTS (when set).

Environment: BASE_URL, USER, PASSWORD, ASK_SESSION, XSS_SESSION,
XSS_TITLE, DENIAL_REASON (a part of the denial's reason), CHROMIUM
(default /usr/bin/chromium), SCREENSHOTS, FINISH_TIMEOUT (seconds).
Prints one line per check and ends with `N passed, M failed`.
"""

import os
import sys

from playwright.sync_api import sync_playwright

BASE = os.environ["BASE_URL"].rstrip("/")
USER = os.environ["USER_NAME"]
PASSWORD = os.environ["PASSWORD"]
ASK = os.environ["ASK_SESSION"]
XSS = os.environ["XSS_SESSION"]
XSS_TITLE = os.environ["XSS_TITLE"]
DENIAL = os.environ["DENIAL_REASON"]
SHOTS = os.environ.get("SCREENSHOTS")
FINISH_MS = int(float(os.environ.get("FINISH_TIMEOUT", "90")) * 1000)

passed = 0
failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def main():
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
            headless=True,
            # As root on a closed network: no sandbox of Chromium's own, and
            # no background connections to Google's hosts.
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        violations = []
        page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)

        # Signing in: the pages send a stranger to the sign-in form and back.
        page.goto(f"{BASE}/ui/sessions")
        check("a stranger is sent to sign in", "/ui/login" in page.url, page.url)
        page.fill("input[name=username]", USER)
        page.fill("input[name=password]", "not-" + PASSWORD)
        page.click("button[type=submit]")
        check("a wrong password is refused", page.locator("p.err").inner_text().startswith("Wrong user name"), page.content()[:3000])
        page.fill("input[name=username]", USER)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{BASE}/ui/sessions")
        check("signed in, the sessions list", page.locator("h1").inner_text() == "Sessions")
        check("the signed-in person is named", page.locator(".who").inner_text() == USER)

        # The XSS title is text: shown as typed, nothing ran, no element made.
        link = page.locator(f"a.title[href='/ui/sessions/{XSS}']")
        check("the XSS title renders as text in the list", link.inner_text() == XSS_TITLE, link.inner_text())
        check("no image element came from the title", page.locator("img").count() == 0)
        if SHOTS:
            page.screenshot(path=os.path.join(SHOTS, "sessions-list.png"), full_page=True)
        page.goto(f"{BASE}/ui/sessions/{XSS}")
        check("the XSS title renders as text on its page", page.locator("h1").inner_text() == XSS_TITLE)

        # The session that asks: its page follows it live until the ask.
        page.goto(f"{BASE}/ui/sessions/{ASK}")
        page.wait_for_selector("section.ask", timeout=FINISH_MS)
        check("the ask appears on the page", "Approve" in page.locator("section.ask .question").inner_text())
        denial = page.locator("li.decision.result-deny")
        check("the timeline shows the denial", denial.count() >= 1)
        text = denial.first.inner_text() if denial.count() else ""
        check("with its reason", DENIAL in text, text)
        check("with its kind", "net.connect" in text, text)
        check("and the policy revision", "policy sha256:" in text, text)
        denial.first.locator("summary").click()
        check("the normalised action opens", denial.first.locator("pre.action").is_visible())
        if SHOTS:
            page.screenshot(path=os.path.join(SHOTS, "session-page.png"), full_page=True)

        # Approve from the page; the session goes on and finishes, and the
        # page shows it without a reload (the event stream).
        page.click("section.ask button[value=approve]")
        page.wait_for_url(f"{BASE}/ui/sessions/{ASK}")
        page.wait_for_selector("#live .state .badge.state-complete", timeout=FINISH_MS)
        check("the session finished after the approval", True)
        approved = page.locator("li.decision.result-ask .approver")
        check("the approval is recorded under the person", approved.count() >= 1 and approved.first.inner_text() == USER,
              approved.first.inner_text() if approved.count() else "none")
        check("the page was updated live", page.locator("#live").get_attribute("data-updated") is not None)
        check("no dialog opened on any page", not dialogs, str(dialogs))
        check("no Content-Security-Policy violation", not violations, str(violations))
        browser.close()
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
