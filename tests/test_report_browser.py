"""The report as a reader opens it: real headless Chromium, no Python browser driver.

A copy of ``report.html`` gets an inline script, first in ``<head>``, that records
resource-load failures, uncaught errors and ``console.error`` calls, and on ``load``
writes a JSON verdict into the DOM: every ``<img>`` and whether it decoded
(``naturalWidth > 0``), every internal link ``href="#…"`` and whether an element has
that id, and where the results table ends on a 1280×900 window.  Chromium
(``--headless --dump-dom``) prints the DOM; its ``--enable-logging=stderr`` lines
marked ``CONSOLE`` catch what happens after the verdict is written.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from sampled_run import small_run

from mcland.report import REPORT_FILE, build_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WINDOW = (1280, 900)
TIMEOUT = 180  # seconds for one headless page load (a cold start on a busy machine)
VERDICT_ID = "mcland-verdict"
PROBE = """<script>
(function () {
  var errors = [];
  window.addEventListener("error", function (e) {  // capture: also failed <img>, <link>
    var t = e.target;
    errors.push(t && t !== window && t.tagName
      ? "failed to load <" + t.tagName.toLowerCase() + "> " + (t.getAttribute("src") || t.getAttribute("href"))
      : "uncaught: " + e.message);
  }, true);
  var consoleError = console.error;
  console.error = function () {
    var text = Array.prototype.join.call(arguments, " ");
    errors.push("console.error: " + text);
    return consoleError.call(console, "[console.error] " + text);
  };
  window.addEventListener("load", function () {
    var images = Array.prototype.map.call(document.images, function (img) {
      return {src: img.getAttribute("src"), loaded: img.complete && img.naturalWidth > 0};
    });
    var links = Array.prototype.map.call(document.querySelectorAll('a[href^="#"]'), function (a) {
      var id = decodeURIComponent(a.getAttribute("href").slice(1));
      return {href: a.getAttribute("href"), resolves: document.getElementById(id) !== null};
    });
    var table = document.querySelector("#results table");
    var out = document.createElement("pre");
    out.id = "@VERDICT_ID@";
    out.textContent = JSON.stringify({
      images: images, links: links, errors: errors, innerHeight: window.innerHeight,
      resultsTableBottom: table ? table.getBoundingClientRect().bottom : null
    });
    document.body.appendChild(out);
  });
})();
</script>""".replace("@VERDICT_ID@", VERDICT_ID)


def chromium() -> str:
    """The headless browser's path; skips the test when there is none."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no headless Chromium found (install Debian's chromium; .ci/run does)")


def open_in_chromium(report: Path, work: Path) -> tuple[dict, list[str]]:
    """Load ``report`` (a copy with the probe, beside it) in headless Chromium.

    Returns the probe's verdict and Chromium's console lines (``CONSOLE`` in its log).
    """
    browser = chromium()
    probed = report.with_name("probed-" + report.name)
    text = report.read_text(encoding="utf-8")
    head = re.search(r"<head[^>]*>", text)
    assert head is not None, "report has no <head>"
    probed.write_text(text[: head.end()] + PROBE + text[head.end() :], encoding="utf-8")
    cmd = [
        browser,
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={work / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--virtual-time-budget=10000",  # let the page settle before the DOM is dumped
        "--dump-dom",
        probed.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    found = re.search(rf'<pre id="{VERDICT_ID}">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"no verdict in the dumped DOM (exit {proc.returncode}): {proc.stderr[-2000:]}"
    verdict = json.loads(
        found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    )
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line]
    return verdict, console


def problems(verdict: dict, console: list[str]) -> list[str]:
    """Everything a reader would see broken, one line each."""
    out = [f"image not loaded: {i['src']}" for i in verdict["images"] if not i["loaded"]]
    out += [f"link to nothing: {a['href']}" for a in verdict["links"] if not a["resolves"]]
    out += verdict["errors"]
    out += [c for c in console if "Uncaught" in c or "[console.error]" in c]
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    run = small_run(tmp_path_factory)
    return build_report(run, tmp_path_factory.mktemp("browser") / "report")


def test_report_opens_cleanly_in_chromium(report, tmp_path):
    verdict, console = open_in_chromium(report, tmp_path)
    assert problems(verdict, console) == []
    srcs = re.findall(r'<img src="([^"]+)"', report.read_text(encoding="utf-8"))
    assert [i["src"] for i in verdict["images"]] == srcs and len(srcs) >= 4
    assert len(verdict["links"]) >= 7  # the table of contents at least
    # the first screen shows the results: the counts table ends inside the window
    bottom = verdict["resultsTableBottom"]
    assert bottom is not None and bottom <= verdict["innerHeight"]


def test_the_browser_check_sees_a_broken_page(report, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(report.parent, broken)
    page = broken / REPORT_FILE
    text = page.read_text(encoding="utf-8")
    text = text.replace('<img src="fractions.png"', '<img src="no-such-figure.png"', 1)
    text = text.replace('href="#strata"', 'href="#no-such-section"', 1)
    text = text.replace("</body>", "<script>console.error('boom'); notDefined();</script></body>")
    page.write_text(text, encoding="utf-8")
    verdict, console = open_in_chromium(page, tmp_path)
    found = "\n".join(problems(verdict, console))
    assert "image not loaded: no-such-figure.png" in found
    assert "failed to load <img> no-such-figure.png" in found
    assert "link to nothing: #no-such-section" in found
    assert "console.error: boom" in found
    assert "notDefined" in found
