"""Open a page in headless Chromium and report whether each of its images loaded."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images).map(i => ({alt: i.alt, ok: i.complete && i.naturalWidth > 0}));
  document.title = "PROBE" + JSON.stringify(images);
});
</script>"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def image_status(page: Path) -> list[dict]:
    """Load a copy of `page` (with a probe script added) in headless Chromium; each image's alt and whether it loaded."""
    probe = page.with_name(f".probe-{page.name}")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    try:
        result = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
             "--dump-dom", probe.resolve().as_uri()],
            capture_output=True, text=True, timeout=120, check=True,
        )
    finally:
        probe.unlink(missing_ok=True)
    match = re.search(r"<title>PROBE(.*?)</title>", result.stdout, re.S)
    assert match, f"the probe did not run; Chromium printed: {result.stdout[:500]} {result.stderr[-500:]}"
    return json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
