"""Takes the README's screenshot of the TTS Monitor tab (docs/screenshot.png).

    python demo/train.py --logdir /tmp/ttsmon-shot --steps 400 --requests 48
    python demo/screenshot.py /tmp/ttsmon-shot

Starts TensorBoard on the logdir, opens the tab in Debian's headless Chromium
(Playwright), waits until every chart is drawn and saves the top of the page.
"""

from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from tbserver import tensorboard_server  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("logdir")
    parser.add_argument("-o", "--output", default=os.path.join(ROOT, "docs", "screenshot.png"))
    parser.add_argument("--dark", action="store_true")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tensorboard_server(args.logdir) as url, sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(
            viewport={"width": 1440, "height": 1500},
            color_scheme="dark" if args.dark else "light",
        )
        page.goto(url + "#ttsmon")
        frame = page.frame_locator("iframe").first
        frame.locator("body[data-rendered='1']").wait_for(timeout=60_000)
        page.wait_for_timeout(1500)  # let the analytics panels settle
        page.screenshot(path=args.output)
        browser.close()
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
