"""A parent in a real browser for the interop checks: Debian's headless Chromium driven by
its chromedriver through Selenium, as `tests/browser_support/mod.rs` does for the Rust
suite. It trusts any certificate (bonenfant serves the interop test CA's), records the
console (for Content-Security-Policy violations) and the network (for the redirects the
browser itself followed), and saves screenshots under a folder CI keeps.
"""

import json
import os
import shutil
import urllib.parse

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

# Seconds a page may take to get where a check expects it.
PATIENCE = 20
# A phone: 390 × 844 CSS pixels, as the Rust suite's.
PHONE = {"width": 390, "height": 844, "pixelRatio": 2.0, "mobile": True, "touch": False}


def available():
    """Why no browser can run here (None when one can): the chromedriver and the browser."""
    if not shutil.which("chromedriver"):
        return "no chromedriver (apt-get install chromium chromium-driver)"
    if not shutil.which("chromium"):
        return "no chromium (apt-get install chromium)"
    return None


class Chromium:
    """One headless Chromium on a phone's screen, its own profile and cookies."""

    def __init__(self, screenshots, name):
        self.screenshots = screenshots
        self.name = name
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium")
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    "--no-first-run", "--disable-extensions", "--disable-background-networking",
                    "--disable-sync", "--lang=fr-FR", "--hide-scrollbars"):
            options.add_argument(arg)
        options.add_experimental_option("mobileEmulation", {"deviceMetrics": PHONE})
        options.add_experimental_option("prefs", {
            "credentials_enable_service": False,
            "profile.password_manager_enabled": False,
            "profile.password_manager_leak_detection": False,
        })
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        options.accept_insecure_certs = True
        # No proxy from the environment: every server is on 127.0.0.1.
        options.add_argument("--no-proxy-server")
        service = Service(executable_path=shutil.which("chromedriver"), service_args=["--log-level=SEVERE"])
        self.driver = webdriver.Chrome(service=service, options=options)
        self.driver.set_page_load_timeout(PATIENCE * 3)
        self.console = []
        self.documents = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.quit()

    def quit(self):
        try:
            self.driver.quit()
        except WebDriverException:
            pass

    def goto(self, url):
        self.driver.get(url)

    def clear_cookies(self):
        """Forgets every site's cookies: the next login asks for the password again."""
        self.driver.execute_cdp_cmd("Network.clearBrowserCookies", {})

    def wait_for(self, selector):
        """The first element matching the CSS `selector`, waiting for it."""
        WebDriverWait(self.driver, PATIENCE).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, selector),
            message=f"no {selector} on {self.where()}",
        )
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def where(self):
        """The page's address without its query (which may hold a ticket)."""
        url = urllib.parse.urlsplit(self.driver.current_url)
        return f"{url.scheme}://{url.netloc}{url.path}"

    def sign_in(self, login, password):
        """Types the login and password on the ENT's form and presses Enter."""
        self.wait_for("input[name=username]").send_keys(login)
        self.wait_for("input[name=password]").send_keys(password, Keys.ENTER)

    def tap(self, selector, text):
        """Clicks the element matching `selector` whose text holds `text`."""
        self.wait_for(selector)
        for element in self.driver.find_elements(By.CSS_SELECTOR, selector):
            if text in element.text:
                element.click()
                return
        raise AssertionError(f"no {selector} with {text!r} on {self.where()}")

    def json_page(self, path):
        """The JSON a page at `path` shows (Chromium puts it in a `pre`), once there."""
        WebDriverWait(self.driver, PATIENCE).until(
            lambda d: urllib.parse.urlsplit(d.current_url).path == path
            and d.find_elements(By.TAG_NAME, "pre"),
            message=f"never reached {path}",
        )
        return json.loads(self.driver.find_element(By.TAG_NAME, "pre").text)

    def csp_violations(self):
        """The Content-Security-Policy violations Chromium reported so far."""
        self.console.extend(line.get("message", "") for line in self.driver.get_log("browser"))
        return [line for line in self.console if "Content Security Policy" in line]

    def redirects_from(self, origin):
        """How many redirects the browser followed from pages of `origin`
        (`scheme://host:port`) since it started, by its own network log."""
        for entry in self.driver.get_log("performance"):
            event = json.loads(entry["message"])["message"]
            params = event.get("params", {})
            if event.get("method") == "Network.requestWillBeSent" and params.get("type") == "Document":
                self.documents.append((params.get("redirectResponse") or {}).get("url"))
        def origin_of(url):
            parts = urllib.parse.urlsplit(url)
            return f"{parts.scheme}://{parts.netloc}"
        return sum(1 for by in self.documents if by and origin_of(by) == origin)

    def screenshot(self, label):
        """Saves the viewport as `{screenshots}/interop-{name}-{label}.png`."""
        os.makedirs(self.screenshots, exist_ok=True)
        self.driver.save_screenshot(os.path.join(self.screenshots, f"interop-{self.name}-{label}.png"))
