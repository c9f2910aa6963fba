"""The HTML KPI report opened in headless Chromium (Debian's `chromium`, no network): every
chart's SVG marks have a real size once laid out, and the screenshot shows each chart's
colours inside its box. Skips without chromium unless ITSM_REQUIRE_BROWSER=1 (CI)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from itsmflow.app.kpi_html import render_html
from itsmflow.app.kpis import compute
from tests.cli.test_kpis import T0, UNTIL, WEEK

WINDOW = (1400, 1000)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--force-color-profile=srgb",
         f"--window-size={WINDOW[0]},{WINDOW[1]}"]
CSP = "default-src 'none'; style-src 'unsafe-inline'"
# Runs in a measured copy only: the report itself carries no script and its CSP forbids one.
MEASURE = """<script>
for (const chart of document.querySelectorAll('figure.chart')) {
  const marks = [...chart.querySelectorAll('svg .mark')];
  const drawn = marks.filter(m => {
    const box = m.getBBox(), style = getComputedStyle(m);
    return box.width > 0 && box.height > 0 && style.fill !== 'none' && style.visibility === 'visible';
  });
  const r = chart.querySelector('svg').getBoundingClientRect();
  chart.dataset.marks = marks.length;
  chart.dataset.drawn = drawn.length;
  chart.dataset.box = [r.left, r.top, r.right, r.bottom].map(Math.round).join(',');
}
</script>"""
EXPECTED_MARKS = {"chart-trend": 14, "chart-sla": 5, "chart-changes": 5}
COLOURS = {
    "chart-trend": {"opened": (0x25, 0x63, 0xEB), "resolved": (0x16, 0xA3, 0x4A)},
    "chart-sla": {"response": (0x25, 0x63, 0xEB), "resolution": (0x93, 0x33, 0xEA)},
    "chart-changes": {"successful": (0x16, 0xA3, 0x4A), "failed": (0xDC, 0x26, 0x26),
                      "backed-out": (0xF5, 0x9E, 0x0B), "rejected": (0x6B, 0x72, 0x80)},
}


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)
    if found:
        return found
    if os.environ.get("ITSM_REQUIRE_BROWSER") == "1":
        pytest.fail("ITSM_REQUIRE_BROWSER=1 but chromium is not installed (apt-get install -y chromium)")
    pytest.skip("chromium is not installed (apt-get install -y chromium); ITSM_REQUIRE_BROWSER=1 makes this fail")


def browse(chromium: str, profile: Path, page: Path, *args: str) -> str:
    result = subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


class Figures(HTMLParser):
    """id → data-* attributes of every <figure class="chart">."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, dict[str, str]] = {}

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "figure" and values.get("class") == "chart":
            self.found[values["id"]] = {k[5:]: v for k, v in values.items() if k.startswith("data-")}


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB(A) rows of an 8-bit, non-interlaced PNG (what Chromium writes)."""
    position, idat = 8, b""
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0
        elif kind == b"IDAT":
            idat += body
    raw, size = zlib.decompress(idat), 3 if colour == 2 else 4
    stride, rows, previous = width * size, [], bytes(width * size)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 2:  # "up", most rows: one pass without the per-byte branches
            line = bytearray((a + b) & 255 for a, b in zip(line, previous))
        for i in range(stride if kind in (1, 3, 4) else 0):
            left = line[i - size] if i >= size else 0
            up, corner = previous[i], previous[i - size] if i >= size else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                estimate = left + up - corner
                pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        previous = bytes(line)
        rows.append(previous if size == 3 else bytes(b for i, b in enumerate(previous) if i % 4 != 3))
    return width, height, rows


def colour_counts(rows: list[bytes], box: tuple[int, ...], colours: dict[str, tuple[int, int, int]]) -> dict:
    """Pixels of exactly each colour inside the box (fills are exact with an sRGB profile)."""
    left, top, right, bottom = box
    names = {bytes(colour): name for name, colour in colours.items()}
    counts = dict.fromkeys(colours, 0)
    for row in rows[top:bottom]:
        for x in range(left, right):
            name = names.get(row[3 * x:3 * x + 3])
            if name:
                counts[name] += 1
    return counts


def test_charts_render_in_headless_chromium(chromium, tmp_path):
    page = render_html(compute(WEEK, T0, UNTIL))
    assert f'content="{CSP}"' in page
    report, measured = tmp_path / "kpis.html", tmp_path / "measured.html"
    report.write_text(page, encoding="utf-8")
    measured.write_text(page.replace(CSP, CSP + "; script-src 'unsafe-inline'").replace("</body>", MEASURE + "</body>"),
                        encoding="utf-8")

    parser = Figures()
    parser.feed(browse(chromium, tmp_path / "profile", measured, "--dump-dom"))
    assert set(parser.found) == set(EXPECTED_MARKS)
    for chart_id, expected in EXPECTED_MARKS.items():
        data = parser.found[chart_id]
        assert (int(data["marks"]), int(data["drawn"])) == (expected, expected), chart_id

    browse(chromium, tmp_path / "profile", report, f"--screenshot={tmp_path / 'shot.png'}")
    width, height, rows = png_pixels((tmp_path / "shot.png").read_bytes())
    assert (width, height) == WINDOW
    for chart_id, colours in COLOURS.items():
        box = tuple(int(v) for v in parser.found[chart_id]["box"].split(","))
        assert box[2] <= width and box[3] <= height, f"{chart_id} is outside the window: {box}"
        counts = colour_counts(rows, box, colours)
        assert all(count >= 40 for count in counts.values()), (chart_id, counts)
