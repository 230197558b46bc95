"""Open a Snakemake report in headless Chromium: check that it renders, and take screenshots.

The report (``snakemake --report results/report.zip``, unzipped) is a React
app over a ``results`` / ``categories`` table. :func:`check_report` loads a
copy of its ``report.html`` with a small script appended that opens every
category, loads every result file the way the viewer does (images as
images, others by request) and writes what it found into the page, which
Chromium's ``--dump-dom`` returns. :func:`screenshot` opens one category
(and one result) and saves a PNG.

:func:`page_text` and :func:`screenshot_page` do the same for a page of the docs site.

Used by the report and docs tests, and by hand for the README's screenshots::

    .venv/bin/python tests/_browser.py check results/report.zip
    .venv/bin/python tests/_browser.py screenshot results/report.zip docs/report.png \\
        --category Evaluation --result val_scores.png
    .venv/bin/python tests/_browser.py page site/index.html docs/site.png
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

__all__ = [
    "CHROMIUM_FLAGS",
    "find_chromium",
    "unpack_report",
    "check_report",
    "screenshot",
    "page_text",
    "screenshot_page",
]

# Headless, offline, no GPU, no sandbox (containers), no background traffic.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--allow-file-access-from-files",
)

_CHECK_JS = r"""
<script>
(async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const load = (entry) => new Promise((resolve) => {
    if (entry.mime_type.startsWith("image/")) {
      const im = new Image();
      im.onload = () => resolve(im.naturalWidth > 0 ? im.naturalWidth + "x" + im.naturalHeight : "empty");
      im.onerror = () => resolve("error");
      im.src = entry.data_uri;
    } else {
      const req = new XMLHttpRequest();
      req.onload = () => resolve(req.responseText.length > 0 ? "ok" : "empty");
      req.onerror = () => resolve("error");
      req.open("GET", entry.data_uri);
      req.send();
    }
  });
  const out = { categories: {}, results: {} };
  await sleep(200);
  for (const cat of Object.keys(categories).sort()) {
    app.setView({ navbarMode: "menu" });  // back to the menu first, as a reader would
    await sleep(200);
    app.showCategory(cat);
    await sleep(300);
    const paths = Object.values(categories[cat]).flat();
    out.categories[cat] = {
      expected: paths.length,
      rows: Math.max(0, document.querySelectorAll("table tr").length - 1),
      text: document.getElementById("app").innerText.slice(0, 4000),
    };
  }
  for (const [path, entry] of Object.entries(results)) {
    out.results[path] = { name: entry.name, mime: entry.mime_type, loaded: await load(entry) };
  }
  const pre = document.createElement("pre");
  pre.id = "faceparse-check";
  const tag = ["FACEPARSE", "CHECK"];  // joined only in the output, never in this source
  pre.textContent = tag.join("-") + JSON.stringify(out) + ["END", "CHECK"].join("-");
  document.body.appendChild(pre);
})();
</script>
"""

_SHOW_JS = """
<script>
(async () => {{
  await new Promise((r) => setTimeout(r, 200));
  const category = {category};
  const result = {result};
  if (category) app.showCategory(category);
  await new Promise((r) => setTimeout(r, 300));
  if (result) {{
    const path = Object.keys(results).find((p) => results[p].name === result || p.endsWith("/" + result));
    if (path) app.setView({{ content: results[path].mime_type.startsWith("image/") ? "img" : "html",
                             contentPath: results[path].data_uri, resultPath: path }});
  }}
}})();
</script>
"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


def unpack_report(report: str | Path, into: str | Path) -> Path:
    """The ``report.html`` of a report: unzipped into ``into`` for a .zip, else the file itself."""
    report = Path(report)
    if report.suffix != ".zip":
        return report
    with zipfile.ZipFile(report) as zf:
        zf.extractall(into)
        html = [n for n in zf.namelist() if n.endswith("/report.html") or n == "report.html"]
    if not html:
        raise ValueError(f"{report}: no report.html inside")
    return Path(into) / html[0]


def _with_script(report_html: Path, script: str, name: str) -> Path:
    """A copy of ``report_html`` next to it (so the data/ links resolve) with ``script`` appended."""
    text = report_html.read_text(encoding="utf-8")
    idx = text.rfind("</body>")
    copy = report_html.with_name(name)
    copy.write_text(text[:idx] + script + text[idx:] if idx >= 0 else text + script, encoding="utf-8")
    return copy


def _run(chromium: str, args: list[str], profile: Path, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def check_report(report: str | Path, chromium: str | None = None, timeout: int = 180) -> dict:
    """Render the report headless; ``{"categories": {cat: {"expected", "rows", "text"}},
    "results": {path: {"name", "mime", "loaded"}}}`` where ``loaded`` is ``WxH`` for an image,
    ``ok`` for another file, ``error``/``empty`` when it is missing."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("chromium is not installed (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="report-check-") as tmp:
        html = _with_script(unpack_report(report, tmp), _CHECK_JS, "report_check.html")
        proc = _run(
            chromium, ["--virtual-time-budget=30000", "--dump-dom", html.as_uri()], Path(tmp) / "profile", timeout
        )
    match = re.search(r"FACEPARSE-CHECK(.*?)END-CHECK", proc.stdout, re.S)
    if proc.returncode != 0 or not match:
        raise RuntimeError(f"chromium did not render the report (rc {proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(
        match.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
    )


def screenshot(
    report: str | Path,
    out_png: str | Path,
    *,
    category: str | None = None,
    result: str | None = None,
    size: tuple[int, int] = (1280, 800),
    chromium: str | None = None,
    colours: int | None = 256,
    timeout: int = 180,
) -> Path:
    """A PNG of the report, optionally showing ``category`` and the result named ``result``;
    reduced to ``colours`` palette entries to stay small."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("chromium is not installed (apt-get install -y chromium)")
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="report-shot-") as tmp:
        script = _SHOW_JS.format(category=json.dumps(category), result=json.dumps(result))
        html = _with_script(unpack_report(report, tmp), script, "report_shot.html")
        raw = Path(tmp) / "shot.png"
        proc = _run(
            chromium,
            ["--virtual-time-budget=15000", f"--window-size={size[0]},{size[1]}", f"--screenshot={raw}", html.as_uri()],
            Path(tmp) / "profile",
            timeout,
        )
        if proc.returncode != 0 or not raw.is_file():
            raise RuntimeError(f"chromium screenshot failed (rc {proc.returncode}): {proc.stderr[-2000:]}")
        _save_png(raw, out_png, colours)
    return out_png


_PAGE_JS = r"""
<script>
window.addEventListener("load", () => setTimeout(() => {
  const shown = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const nav = [...document.querySelectorAll("nav.md-nav--primary a.md-nav__link, "
                                            + "nav.md-nav--primary label.md-nav__link")]
    .filter(shown).map((a) => a.innerText.trim());
  const tables = [...document.querySelectorAll("article table tr")].filter(shown)
    .map((tr) => [...tr.querySelectorAll("td")].map((td) => td.innerText.trim()));
  const pre = document.createElement("pre");
  const tag = ["FACEPARSE", "CHECK"];  // joined only in the output, never in this source
  pre.textContent = tag.join("-") + JSON.stringify({ nav, tables }) + ["END", "CHECK"].join("-");
  document.body.appendChild(pre);
}, 300));
</script>
"""


def page_text(
    html: str | Path, chromium: str | None = None, size: tuple[int, int] = (1280, 800), timeout: int = 120
) -> dict:
    """What a page of the docs site shows at ``size``: ``{"nav": [link texts of the primary
    navigation that are on screen], "tables": [[cell texts] per visible table row]}``."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("chromium is not installed (apt-get install -y chromium)")
    html = Path(html)
    copy = _with_script(html, _PAGE_JS, f".check-{html.name}")
    try:
        with tempfile.TemporaryDirectory(prefix="site-check-") as tmp:
            proc = _run(
                chromium,
                ["--virtual-time-budget=10000", f"--window-size={size[0]},{size[1]}", "--dump-dom", copy.as_uri()],
                Path(tmp) / "profile",
                timeout,
            )
    finally:
        copy.unlink()
    match = re.search(r"FACEPARSE-CHECK(.*?)END-CHECK", proc.stdout, re.S)
    if proc.returncode != 0 or not match:
        raise RuntimeError(f"chromium did not render {html} (rc {proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(
        match.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
    )


def screenshot_page(
    html: str | Path,
    out_png: str | Path,
    *,
    size: tuple[int, int] = (1280, 800),
    chromium: str | None = None,
    colours: int | None = 256,
    timeout: int = 120,
) -> Path:
    """A PNG of one HTML page (a page of the docs site), reduced to ``colours`` palette entries."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("chromium is not installed (apt-get install -y chromium)")
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="page-shot-") as tmp:
        raw = Path(tmp) / "shot.png"
        proc = _run(
            chromium,
            [
                "--virtual-time-budget=10000",
                f"--window-size={size[0]},{size[1]}",
                f"--screenshot={raw}",
                Path(html).resolve().as_uri(),
            ],
            Path(tmp) / "profile",
            timeout,
        )
        if proc.returncode != 0 or not raw.is_file():
            raise RuntimeError(f"chromium screenshot failed (rc {proc.returncode}): {proc.stderr[-2000:]}")
        _save_png(raw, out_png, colours)
    return out_png


def _save_png(raw: Path, out_png: Path, colours: int | None) -> None:
    from PIL import Image

    from faceparse.report.figures import quantize

    with Image.open(raw) as im:
        im = quantize(im, colours) if colours else im.convert("RGB")
        im.save(out_png, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    check = sub.add_parser("check", help="render the report and list what loaded")
    check.add_argument("report")
    shot = sub.add_parser("screenshot", help="save a PNG of the report")
    shot.add_argument("report")
    shot.add_argument("out")
    shot.add_argument("--category")
    shot.add_argument("--result", help="a result's file name to show, e.g. val_scores.png")
    shot.add_argument("--size", default="1280x800")
    page = sub.add_parser("page", help="save a PNG of one HTML page (e.g. site/index.html of make docs)")
    page.add_argument("html")
    page.add_argument("out")
    page.add_argument("--size", default="1280x800")
    args = parser.parse_args(argv)
    if args.cmd == "check":
        found = check_report(args.report)
        bad = {p: r for p, r in found["results"].items() if r["loaded"] in ("error", "empty")}
        for cat, info in found["categories"].items():
            print(f"{cat}: {info['rows']} rows for {info['expected']} results")
        print(f"{len(found['results'])} results, {len(bad)} missing: {sorted(bad)}")
        return 1 if bad else 0
    w, h = (int(v) for v in args.size.split("x"))
    if args.cmd == "page":
        print(screenshot_page(args.html, args.out, size=(w, h)))
        return 0
    print(screenshot(args.report, args.out, category=args.category, result=args.result, size=(w, h)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
