"""Screenshot of the demo page in headless Chromium, as shown in the README (docs/demo.png).

    python -m glow_tf.tools.demo.screenshot logs/fashion_small --output docs/demo.png

Starts the demo on the model, waits for its directions, picks an example, moves two sliders and the mix
slider, draws samples and saves the whole page as PNG (written atomically).
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from glow_tf import tools_common
from glow_tf.tools_common import ToolError

PROG = "glow_tf.tools.demo.screenshot"


def main(argv: Optional[Sequence[str]] = None) -> str:
    p = tools_common.parser(PROG, __doc__)
    p.add_argument("checkpoint", help="the logdir (or checkpoint) to serve")
    p.add_argument("--output", default="docs/demo.png", help="PNG to write (default %(default)s)")
    p.add_argument("--example", type=int, default=0, help="index of the example to edit (default %(default)s)")
    p.add_argument("--width", type=int, default=1280, help="window width in pixels (default %(default)s)")
    args = p.parse_args(argv)

    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from glow_tf.tools.demo import browser as b

    reason = b.missing()
    if reason:
        raise ToolError(reason)
    with b.DemoProcess(args.checkpoint) as demo, b.Browser(width=args.width) as br:
        br.driver.get(demo.url)
        names = b.wait_ready(br, timeout=600)
        buttons = br.driver.find_elements(By.CSS_SELECTOR, "#examples button")
        if not 0 <= args.example < len(buttons):
            raise ToolError(f"--example {args.example}: the page offers {len(buttons)} examples")
        before = b.image_src(br, "recon-image")
        buttons[args.example].click()
        if args.example:
            b.wait_changed(br, "recon-image", before)
        for i in range(min(2, len(names))):
            before = b.image_src(br, "manip-image")
            b.slide(br, f"direction-{i}", Keys.ARROW_RIGHT * (12 if i == 0 else 8))
            b.wait_changed(br, "manip-image", before)
        before = b.image_src(br, "mix-image")
        b.slide(br, "mix-slider", Keys.ARROW_LEFT * 2)
        b.wait_changed(br, "mix-image", before)
        br.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#samples img")) > 0, 60, "the samples")
        path = br.full_page_png(args.output)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    sys.exit(tools_common.run(PROG, main))
