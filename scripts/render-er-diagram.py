#!/usr/bin/env python3
"""Render a Mermaid ER diagram (from `sqlmigrate schema --format mermaid`) in headless Chromium,
check that every table of the diagram was drawn, and optionally save a picture of it.

    sqlmigrate schema --format mermaid --output /tmp/er.mmd
    python3 scripts/render-er-diagram.py /tmp/er.mmd [--png docs/er-diagram.png]

Needs Chromium (Debian: apt-get install chromium) and Mermaid's browser build
(npm install mermaid, in .cache/mermaid unless --mermaid names mermaid.min.js).
Prints one line per table found and exits 1 if any is missing from the drawing.
"""
from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "mermaid"


def mermaid_script(given: str | None) -> Path:
    if given:
        return Path(given)
    script = CACHE / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
    if not script.exists():
        if shutil.which("npm") is None:
            sys.exit("render-er-diagram: npm is not installed (needed once to fetch mermaid)")
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--prefix", str(CACHE), "mermaid@11"], check=True)
    return script


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("render-er-diagram: Chromium is not installed (Debian: apt-get install chromium)")


def page(diagram: str, script: Path) -> str:
    return f"""<!doctype html><html><head><meta charset="utf-8">
<script>{script.read_text(encoding="utf-8")}</script></head>
<body style="background:white">
<pre class="mermaid">{html.escape(diagram)}</pre>
<script>
mermaid.initialize({{startOnLoad: false, theme: "default"}});
mermaid.run().then(() => document.body.setAttribute("data-rendered", "yes"),
                   (e) => document.body.setAttribute("data-rendered", "error: " + e));
</script></body></html>"""


def entities(diagram: str) -> list[str]:
    return re.findall(r"^\s{4}(\S+) \{$", diagram, re.MULTILINE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("diagram", help="a Mermaid erDiagram file")
    parser.add_argument("--png", help="also save a screenshot of the drawing here")
    parser.add_argument("--mermaid", help="path of mermaid.min.js (default: npm install into .cache/mermaid)")
    args = parser.parse_args()
    diagram = Path(args.diagram).read_text(encoding="utf-8")
    browser = chromium()
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "er.html"
        source.write_text(page(diagram, mermaid_script(args.mermaid)), encoding="utf-8")
        flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000",
                 f"--user-data-dir={work}/profile"]
        dom = subprocess.run(flags + ["--dump-dom", source.as_uri()], capture_output=True, text=True,
                             timeout=120).stdout
        if args.png:
            subprocess.run(flags + ["--hide-scrollbars", "--window-size=1400,1500",
                                    f"--screenshot={Path(args.png).resolve()}", source.as_uri()],
                           capture_output=True, timeout=120, check=True)
    rendered = re.search(r'data-rendered="([^"]*)"', dom)
    if not rendered or rendered.group(1) != "yes":
        print(f"not rendered: {rendered.group(1) if rendered else 'mermaid did not finish'}")
        return 1
    drawn = set(re.findall(r'class="[^"]*entityLabel[^"]*"[^>]*>(?:<[^>]+>)*([^<]+)<', dom))
    drawn |= set(re.findall(r"<(?:span|p|text)[^>]*>([^<]+)</(?:span|p|text)>", dom))
    missing = 0
    for name in entities(diagram):
        shown = name.strip('"')
        found = shown in drawn
        missing += not found
        print(f"{'drawn' if found else 'MISSING'}: {shown}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
