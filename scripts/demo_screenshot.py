"""Screenshot of the demo page in headless Chromium, as shown in the README (docs/demo.png).

    python -m scripts.demo_screenshot logs/fashion_small --output docs/demo.png \
        --example 2 --alphas Dress=0.6 --mix_with 7

Run from the checkout: it drives the browser with the tests' helpers (tests/browser.py). Starts the demo on the model, waits for its directions, picks an example, moves the sliders named in
--alphas with the keyboard, picks the mix's second image, draws samples and saves the whole page as PNG
(written atomically).
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from glow_common.errors import run_cli
from glow_tf.errors import ConfigError
from glow_tf.tools import common

PROG = "python -m scripts.demo_screenshot"


def settings(text: str, names) -> list:
    """[(name, value)] from 'Dress=0.6,Coat=-0.3', checked against the page's sliders."""
    out = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.rpartition("=")
        if name not in names:
            raise ConfigError(f"--alphas: no slider {name!r}; the page has {', '.join(names)}")
        try:
            out.append((name, float(value)))
        except ValueError:
            raise ConfigError(f"--alphas: {value!r} (for {name}) is not a number") from None
    return out


def pick(br, container: str, index: int, image_id: str) -> None:
    """Click example `index` of a thumbnail row and wait for the image it fills."""
    from selenium.webdriver.common.by import By

    from tests import browser as b

    buttons = br.driver.find_elements(By.CSS_SELECTOR, f"#{container} button")
    if not 0 <= index < len(buttons):
        raise ConfigError(f"example {index}: the page offers {len(buttons)} examples")
    if "selected" in (buttons[index].get_attribute("class") or ""):
        return
    before = b.image_src(br, image_id)
    buttons[index].click()
    b.wait_changed(br, image_id, before)


def main(argv: Optional[Sequence[str]] = None) -> str:
    p = common.parser(PROG, __doc__)
    p.add_argument("checkpoint", help="the logdir (or checkpoint) to serve")
    p.add_argument("--output", default="docs/demo.png", help="PNG to write (default %(default)s)")
    p.add_argument("--example", type=int, default=0, help="index of the example to edit (default %(default)s)")
    p.add_argument("--alphas", default="", help="comma-separated NAME=VALUE slider settings, e.g. Dress=0.6")
    p.add_argument("--mix_with", type=int, default=1, help="index of the mix's second example (default %(default)s)")
    p.add_argument("--width", type=int, default=1280, help="window width in pixels (default %(default)s)")
    args = p.parse_args(argv)

    from tests import browser as b

    reason = b.missing()
    if reason:
        raise ConfigError(reason)
    try:
        return _shoot(args, b)
    except (RuntimeError, TimeoutError) as err:  # the demo did not start, or the page never got ready
        raise ConfigError(str(err)) from None


def _shoot(args, b) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    with b.DemoProcess(args.checkpoint) as demo, b.Browser(width=args.width) as br:
        br.driver.get(demo.url)
        names = b.wait_ready(br, timeout=600)
        pick(br, "examples", args.example, "recon-image")
        pick(br, "mix-examples", args.mix_with, "mix-b")
        for name, value in settings(args.alphas, names):
            element = next(e for e in br.driver.find_elements(By.CSS_SELECTOR, "input.direction")
                           if e.get_attribute("data-name") == name)
            before = b.image_src(br, "manip-image")
            b.slide(br, element.get_attribute("id"),
                    (Keys.ARROW_RIGHT if value > 0 else Keys.ARROW_LEFT) * round(abs(value) / 0.05))
            b.wait_changed(br, "manip-image", before)
        br.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#samples img")) > 0, 60, "the samples")
        br.driver.execute_script("window.scrollTo(0, 0); document.activeElement.blur();")
        path = br.full_page_png(args.output)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    sys.exit(run_cli(PROG, main))
