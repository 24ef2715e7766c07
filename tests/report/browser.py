"""Headless Chromium (Debian's) for the report's tests: load a page, read what it rendered.

``render_probe`` loads a copy of the page with a probe script added (and allowed, by its
hash, in the page's Content-Security-Policy): once the page has loaded, the probe writes
into the DOM a JSON summary of every chart's drawn lines (their length and box, as laid
out), the errors the page raised and the policy violations it caused; --dump-dom gives it
back, and Chromium's own log gives every console message. ``screenshot`` takes a picture
of the page as it is. Each run is bounded: a timeout, its process group killed, its profile
folder removed.

    python -m tests.report.browser PAGE.html PNG [HEIGHT]   # a screenshot (docs/report.png)
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]
TIMEOUT = 60.0  # a bound on a stuck browser, not a timed assertion
WINDOW = (1280, 2000)

PROBE = """(function () {
  var errors = [];
  addEventListener("error", function (e) {
    errors.push("error: " + (e.message || (e.target && (e.target.src || e.target.href)) || e.type));
  }, true);
  addEventListener("securitypolicyviolation", function (e) {
    errors.push("policy: " + e.violatedDirective + " " + e.blockedURI);
  });
  function line(path) {
    var box = path.getBBox(), style = getComputedStyle(path);
    return {run: +path.dataset.run, series: path.dataset.series, length: path.getTotalLength(),
            width: box.width, height: box.height, stroke: style.stroke,
            dash: style.strokeDasharray};
  }
  function chart(svg) {
    var box = svg.getBoundingClientRect();
    return {chart: svg.dataset.chart, width: box.width, height: box.height,
            lines: [].map.call(svg.querySelectorAll("path.line"), line),
            ticks: svg.querySelectorAll(".axes text").length,
            bands: svg.querySelectorAll(".bands rect").length};
  }
  addEventListener("load", function () {
    setTimeout(function () {  // policy violations are reported a task later
      var out = document.createElement("pre");
      out.id = "probe";
      out.textContent = JSON.stringify({
        charts: [].map.call(document.querySelectorAll("svg[data-chart]"), chart),
        legends: [].map.call(document.querySelectorAll("figure .legend"), function (l) {
          return l.children.length; }),
        background: getComputedStyle(document.body).backgroundColor,
        errors: errors});
      document.body.appendChild(out);
    }, 50);
  });
})();"""


class BrowserError(Exception):
    """Chromium failed, or the page gave no probe result."""


@dataclass(frozen=True)
class Rendered:
    probe: dict[str, Any]  # what the probe wrote
    console: list[str]  # Chromium's log lines of console messages


def _run(args: list[str], timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Chromium with ``args``, in a process group of its own and a throw-away profile."""
    with tempfile.TemporaryDirectory(prefix="qmqp-chromium-") as profile:
        command = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, start_new_session=True,
                                   env={**os.environ, "HOME": profile})
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BrowserError(f"chromium took more than {timeout} s: {command}") from None
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # its helpers too (zygote, crashpad)
            process.communicate()
    if process.returncode != 0:
        raise BrowserError(f"chromium exited {process.returncode}: {err[-2000:]}")
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def with_probe(page: str) -> str:
    """The page with the probe in its head, and its policy allowing that one script."""
    digest = base64.b64encode(hashlib.sha256(PROBE.encode()).digest()).decode()
    policy = "content=\"default-src 'none';"
    if page.count(policy) != 1:
        raise BrowserError("the page has no Content-Security-Policy of default-src 'none'")
    page = page.replace(policy, f"{policy} script-src 'sha256-{digest}';")
    head = re.search(r"<meta http-equiv=\"Content-Security-Policy\"[^>]*>", page)
    assert head is not None
    return page[:head.end()] + f"<script>{PROBE}</script>" + page[head.end():]


def render_probe(page: Path, *flags: str) -> Rendered:
    """Load ``page`` (with the probe) and return what it rendered and logged; ``flags``:
    more for Chromium (--force-dark-mode)."""
    probed = page.with_name(f".probe-{page.name}")
    probed.write_text(with_probe(page.read_text()))
    try:
        done = _run([*flags, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()])
    finally:
        probed.unlink()
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    if found is None:
        raise BrowserError(f"no probe result in the DOM: {done.stdout[:500]!r}")
    import html

    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    return Rendered(json.loads(html.unescape(found[1])), console)


def screenshot(page: Path, png: Path, *flags: str, window: tuple[int, int] = WINDOW) -> None:
    """A picture of ``page`` at ``window``, as it is (no probe), into ``png``."""
    _run([*flags, f"--screenshot={png}", f"--window-size={window[0]},{window[1]}",
          "--hide-scrollbars", page.as_uri()])
    if not png.is_file():
        raise BrowserError(f"chromium wrote no screenshot to {png}")


def png_size(png: Path) -> tuple[int, int]:
    """Width and height from a PNG's header."""
    data = png.read_bytes()[:24]
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise BrowserError(f"{png} is not a PNG")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def available() -> bool:
    return shutil.which(CHROMIUM) is not None


if __name__ == "__main__":
    height = int(sys.argv[3]) if len(sys.argv) > 3 else WINDOW[1]
    screenshot(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve(),
               window=(WINDOW[0], height))
