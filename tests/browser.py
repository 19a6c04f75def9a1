"""Headless Chromium driving the demo, for the browser tests and the README screenshot
(scripts/demo_screenshot.py).

Debian's chromium and chromium-driver (installed by `make install`) through Selenium, with the driver
given explicitly so that Selenium Manager never tries to download one. Chromium gets a fresh profile
and the flags that keep it off the network: without --disable-background-networking and
--disable-component-update it stalls on a machine that reaches no update servers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import List, Optional, Tuple

from glow_common.files import atomic_path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars")


def missing() -> Optional[str]:
    """Why a browser cannot be driven here, or None when it can."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            return f"{path} is missing (apt-get install {package}, as make install does)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -r requirements.txt)"
    return None


class Browser:
    """A headless Chromium with its own temporary profile; close() removes both."""

    def __init__(self, width: int = 1280, height: int = 1000):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="glow-demo-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS + (f"--user-data-dir={self.profile}", f"--window-size={width},{height}"):
            options.add_argument(flag)
        try:
            self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        except Exception:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def wait(self, condition, timeout: float = 60.0, what: str = "the page"):
        """Poll `condition(driver)` until it is truthy; its value, or a TimeoutError naming `what`."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition(self.driver)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout:.0f} s for {what}")
            time.sleep(0.1)

    def full_page_png(self, path: str) -> str:
        """A screenshot of the whole page (the window is grown to the page's height first)."""
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        width = self.driver.execute_script("return window.outerWidth")
        self.driver.set_window_size(width, height + 120)
        with atomic_path(path, suffix=".png") as tmp:
            self.driver.save_screenshot(tmp)
        return path


class DemoProcess:
    """`python -m glow_tf.tools.demo CHECKPOINT --port 0 ...` in a child process; `url` once it serves."""

    def __init__(self, checkpoint: str, *args: str, timeout: float = 180.0):
        self.logs = tempfile.mkdtemp(prefix="glow-demo-logs-")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        # Files, not pipes: a pipe nobody reads would block the server once it fills.
        self.stdout = open(os.path.join(self.logs, "stdout"), "w+")
        self.stderr = open(os.path.join(self.logs, "stderr"), "w+")
        self.proc = subprocess.Popen([sys.executable, "-m", "glow_tf.tools.demo", checkpoint, "--port", "0", *args],
                                     env=env, stdout=self.stdout, stderr=self.stderr)
        self.url = self._wait_for_address(timeout)

    def _wait_for_address(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.stdout.name) as f:
                for line in f:
                    if " on http://" in line:
                        return line.split(" on ", 1)[1].split()[0]
            if self.proc.poll() is not None:
                log = self.log()  # before close(), which removes the log files
                self.close()
                raise RuntimeError(f"the demo exited with status {self.proc.returncode}: {log[-2000:]}")
            time.sleep(0.2)
        log = self.log()
        self.close()
        raise TimeoutError(f"the demo printed no address within {timeout:.0f} s: {log[-2000:]}")

    def log(self) -> str:
        with open(self.stdout.name) as out, open(self.stderr.name) as err:
            return out.read() + err.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stdout.close()
        self.stderr.close()
        shutil.rmtree(self.logs, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def wait_ready(browser: Browser, timeout: float = 120.0) -> List[str]:
    """Wait until the page has shown its first image and built its sliders; the slider names."""
    from selenium.webdriver.common.by import By

    browser.wait(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1", timeout,
                 "the page to load its first example")
    browser.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "input.direction") or
                 d.find_element(By.ID, "directions-note").text.startswith("No sliders"), timeout,
                 "the directions")
    return [e.get_attribute("data-name") for e in browser.driver.find_elements(By.CSS_SELECTOR, "input.direction")]


def image_src(browser: Browser, element_id: str) -> str:
    """The src of an <img>, read in one script call: the page replaces some images (the samples) while
    a test looks, and a found element can be gone before its attribute is read."""
    return browser.driver.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.getAttribute('src') || '' : '';",
        element_id)


def wait_changed(browser: Browser, element_id: str, before: str, timeout: float = 60.0) -> str:
    """The new src of an <img> once it differs from `before`."""
    return browser.wait(lambda d: (lambda s: s if s and s != before else None)(image_src(browser, element_id)),
                        timeout, f"#{element_id} to change")


def slide(browser: Browser, element_id: str, keys: str) -> Tuple[str, str]:
    """Move a range input with the keyboard, as a user would; (value before, value after)."""
    from selenium.webdriver.common.by import By

    element = browser.driver.find_element(By.ID, element_id)
    before = element.get_attribute("value")
    element.send_keys(keys)
    return before, element.get_attribute("value")
