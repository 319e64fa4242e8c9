#!/usr/bin/env python3
"""How large the batch report is and how fast it opens (pipeline/report/html.py).

For each batch size, a synthetic batch is made in a temporary folder by the tests' own
``make_batch`` (scores CSV through the scanner's sink, faces CSV, and an ``--evidence-dir`` with
small JPEGs for the 50 worst FAKE clips: a boxed frame and 4 crops each), the report is written,
and Debian's chromium (Playwright, headless) opens it from disk ``--repeats`` times in fresh
pages; medians are reported.

Columns: ``clips``, ``size_mb`` (the HTML file), ``write_s`` (reading the inputs and writing the
page), ``dcl_ms`` (DOMContentLoaded, from navigation start), ``render_ms`` (first table page drawn),
``next_page_ms`` (click "next" to the new page drawn), ``filter_ms`` (typing one filter string to
the table redrawn), ``sort_ms`` (click a column title to the table redrawn).

    python bench/report_size.py [--clips 1000 10000 50000] [--repeats 3] [--scanner-sized-images]
                                [--out bench/results/report_size.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.report.html import ReportConfig, write_report
from tests.integration.test_web_browser import CHROMIUM, CHROMIUM_ARGS
from tests.report.test_html import make_batch

# Time an action inside the page: run it, then wait until the table is redrawn (two frames).
_TIMED = """async (action) => {
  const t0 = performance.now();
  if (action.kind === "click") { document.querySelector(action.selector).click(); }
  else {
    const input = document.querySelector(action.selector);
    input.value = action.value;
    input.dispatchEvent(new Event("input"));
  }
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return performance.now() - t0;
}"""


def measure_page(browser, path: Path) -> dict:
    """One fresh page: load timings and the time of a few interactions, in ms."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(path.as_uri())
    page.wait_for_function("window.reportFirstRenderMs !== undefined")
    result = page.evaluate(
        "() => ({dcl_ms: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd,"
        " render_ms: window.reportFirstRenderMs})"
    )
    result["next_page_ms"] = page.evaluate(_TIMED, {"kind": "click", "selector": "#next"})
    result["sort_ms"] = page.evaluate(_TIMED, {"kind": "click", "selector": "#clip-table th[data-col='1']"})
    result["filter_ms"] = page.evaluate(_TIMED, {"kind": "input", "selector": "#filter", "value": "part07/"})
    context.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, nargs="+", default=[1_000, 10_000, 50_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--scanner-sized-images",
        action="store_true",
        help="evidence images the size the scanner writes (1280x720 frames, 512x256 crop panels) instead of "
        "thumbnails: the embedding budget, not the clip count, then sets the file size",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "report_size.json")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    rows = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for n in args.clips:
            root = Path(tmp) / f"batch{n}"
            sizes = dict(frame_wh=(1280, 720), crop_wh=(512, 256)) if args.scanner_sized_images else {}
            batch = make_batch(root, n, evidence_clips=50, **sizes)
            started = time.perf_counter()
            summary = write_report(
                ReportConfig(
                    batch["scores"], root / "report.html", evidence_dir=batch["evidence"], faces_csv=batch["faces"]
                )
            )
            write_s = time.perf_counter() - started
            pages = [measure_page(browser, root / "report.html") for _ in range(args.repeats)]
            row = {
                "clips": n,
                "images": "scanner-sized" if args.scanner_sized_images else "thumbnails",
                "embedded_images": summary.embedded_images,
                "size_mb": round(summary.size_bytes / 1e6, 2),
                "embedded_mb": round(summary.embedded_bytes / 1e6, 2),
                "write_s": round(write_s, 2),
            }
            row.update({key: round(statistics.median(p[key] for p in pages)) for key in pages[0]})
            rows.append(row)
            print(json.dumps(row), flush=True)
        browser.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"machine": platform.platform(), "repeats": args.repeats, "rows": rows}, indent=1) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
