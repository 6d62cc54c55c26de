"""bench.analysis.plotly_bundle: plotly.js once beside the pages: a page below a folder holding the bundle
points at it by a relative path; elsewhere the bundle is written into assets/ beside the page, once; the
committed bundle is the one the installed plotly ships."""

from __future__ import annotations

import filecmp

from helpers.paths import ROOT

from bench.analysis.plotly_bundle import ASSETS, bundle_name, place, shipped


def test_a_page_elsewhere_gets_the_bundle_beside_it_once(tmp_path):
    page = tmp_path / "out" / "report.html"
    assert place(page) == f"{ASSETS}/{bundle_name()}"
    written = tmp_path / "out" / ASSETS / bundle_name()
    assert filecmp.cmp(written, shipped(), shallow=False)
    stamp = written.stat().st_mtime_ns
    assert place(page) == f"{ASSETS}/{bundle_name()}" and written.stat().st_mtime_ns == stamp  # not again


def test_a_page_below_the_bundle_points_up_to_it(tmp_path):
    place(tmp_path / "report.html")
    assert place(tmp_path / "archive" / "compare" / "report.html") == f"../../{ASSETS}/{bundle_name()}"
    assert not (tmp_path / "archive" / "compare" / ASSETS).exists()


def test_the_committed_bundle_is_the_installed_one():
    """The committed reports under results/ load results/assets/<bundle>; make it again with
    `python -m bench report` into results/ when plotly is upgraded."""
    committed = ROOT / "results" / ASSETS / bundle_name()
    assert committed.is_file() and filecmp.cmp(committed, shipped(), shallow=False)
    assert (
        place(ROOT / "results" / "archive" / "compare" / "report.html") == f"../../{ASSETS}/{bundle_name()}"
    )
