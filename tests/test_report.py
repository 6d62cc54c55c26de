"""The HTML report: self-contained, the right plots, edge cases, and plots that really render in Chromium."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.results import composed_run, write_results, write_runs
from matplotlib import image as mpimg

from bench import report

PNG_SRC = re.compile(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')
PLOTS = [
    "score vs trainable parameters",
    "score vs peak memory (MB)",
    "score vs train time (s)",
    "score per variant",
    "learning curves",
]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
IMG_CHECK = """<script>
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter((i) => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0);
  const out = document.createElement("pre");
  out.id = "img-check";
  const widths = ok.map((i) => i.naturalWidth);
  out.textContent = JSON.stringify({total: imgs.length, loaded: ok.length, widths: widths});
  document.body.appendChild(out);
});
</script>"""


def keep_rows(csv_path: Path, keep) -> Path:
    """Rewrite the CSV with only the rows ``keep(df)`` selects."""
    df = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    df[keep(df)].to_csv(csv_path, index=False)
    return csv_path


def images(page: str) -> dict[str, np.ndarray]:
    """alt -> decoded RGBA pixels of every embedded PNG."""
    return {
        alt: mpimg.imread(io.BytesIO(base64.b64decode(data)), format="png")
        for alt, data in PNG_SRC.findall(page)
    }


def build(tmp_path: Path, keep=None) -> str:
    csv_path = write_results(tmp_path)
    if keep is not None:
        keep_rows(csv_path, keep)
    assert report.main(["--results", str(tmp_path)]) == 0
    return (tmp_path / "report.html").read_text()


def test_pareto_mask():
    x = np.array([1.0, 2.0, 3.0, 4.0, 2.0])
    y = np.array([50.0, 60.0, 55.0, 70.0, 60.0])
    assert report.pareto_mask(x, y).tolist() == [True, True, False, True, False]  # ties: the first one


def test_report_is_self_contained_with_all_plots(tmp_path, capsys):
    page = build(tmp_path)
    assert f"wrote {tmp_path / 'report.html'}" in capsys.readouterr().out
    pngs = images(page)
    assert list(pngs) == PLOTS
    for alt, pixels in pngs.items():
        assert pixels.shape[0] > 200 and pixels.shape[1] > 400, alt
        assert pixels[..., :3].std() > 0.05, f"{alt} looks blank"
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<link" not in page and "<script" not in page
    assert "18 runs (15 completed, 3 failed, diverged or oom) on cola, mrpc, rte, sst2" in page
    assert "lora-mrpc-s1: no &#x27;accuracy&#x27; curve in" in page  # the run without history.jsonl
    assert "<td>92.00</td>" in page and "<td>81.33</td>" in page  # the leaderboard table
    assert "score = main metric at the best epoch, as the papers report" in page


def test_report_one_task(tmp_path):
    page = build(tmp_path, keep=lambda df: df["task"] == "cola")
    assert list(images(page)) == PLOTS
    assert "on cola;" in page and "<td>avg</td>" not in page and "Skipped (no history)" not in page


def test_report_failed_runs_only(tmp_path):
    page = build(tmp_path, keep=lambda df: df["status"] != "completed")
    assert images(page) == {}
    assert "No completed runs: nothing to plot" in page
    assert "4 runs (0 completed, 4 failed, diverged or oom)" in page
    assert "<td>rte</td>" in page and "<td>vera</td>" in page  # still in the table, counted as failed


def test_report_without_memory_skips_that_plot(tmp_path):
    csv_path = write_results(tmp_path)
    df = pd.read_csv(csv_path, dtype=str, keep_default_na=False).assign(peak_memory_mb="")
    df[df["task"] == "cola"].to_csv(csv_path, index=False)
    page = report.build_report(csv_path)
    assert list(images(page)) == [p for p in PLOTS if "memory" not in p]
    assert "No run recorded peak_memory_mb: plot skipped." in page


def test_report_missing_csv(tmp_path, capsys):
    with pytest.raises(SystemExit):
        report.main(["--results", str(tmp_path)])
    assert f"no runs CSV at {tmp_path / 'runs.csv'}" in capsys.readouterr().err


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail(
            "headless Chromium is needed for this test: apt-get update && apt-get install -y chromium"
        )
    return subprocess.run(
        [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.slow
def test_report_renders_in_headless_chromium(tmp_path):
    page = build(tmp_path)
    checked = tmp_path / "checked.html"
    checked.write_text(page.replace("</body>", IMG_CHECK + "</body>"))
    dom = chromium(tmp_path / "profile", "--virtual-time-budget=10000", "--dump-dom", checked.as_uri())
    found = re.search(r'<pre id="img-check">(.*?)</pre>', dom.stdout)
    assert found, f"no check result in the DOM; chromium stderr:\n{dom.stderr[-2000:]}"
    check = json.loads(found.group(1))
    assert (check["total"], check["loaded"]) == (len(PLOTS), len(PLOTS))
    assert min(check["widths"]) > 400

    shot = tmp_path / "report.png"
    chromium(
        tmp_path / "profile",
        "--window-size=1300,2400",
        f"--screenshot={shot}",
        (tmp_path / "report.html").as_uri(),
    )
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2400, 1300)
    not_white = (pixels < 0.95).any(axis=-1).mean()
    coloured = (pixels.max(axis=-1) - pixels.min(axis=-1) > 0.3).mean()  # the plots' markers and bars
    assert not_white > 0.05 and coloured > 0.005, (not_white, coloured)


def test_report_one_run_and_results_default_is_peft_bench_results(tmp_path, monkeypatch, capsys):
    """``--results`` defaults to $PEFT_BENCH_RESULTS; one run is "1 run"."""
    keep_rows(write_results(tmp_path), lambda df: df.index == 0)
    monkeypatch.setenv("PEFT_BENCH_RESULTS", str(tmp_path))
    assert report.main([]) == 0
    assert f"wrote {tmp_path / 'report.html'}" in capsys.readouterr().out
    assert "1 run (1 completed, 0 failed, diverged or oom) on sst2" in (tmp_path / "report.html").read_text()


def test_report_of_a_sweep_folder(tmp_path):
    write_results(tmp_path)
    sweep = tmp_path / "sweeps" / "2024-05-03_09-00-00_cola"
    page = report.build_report(sweep)
    assert "5 runs (5 completed, 0 failed, diverged or oom) on cola;" in page
    assert list(images(page)) == PLOTS and "Skipped (no history)" not in page


def test_report_of_keyed_runs_shows_their_budgets(tmp_path, compose):
    """Runs recorded with config_key and settings: one row per configuration, the budget flag in the
    table, and each row's runs found for its learning curve (by its label)."""
    runs = [
        composed_run(compose, tmp_path, ["variant=dora", *extra, f"seed={seed}"], score)
        for extra, seed, score in [([], 0, 0.80), ([], 1, 0.82), (["task.max_eval_samples=200"], 0, 0.9)]
    ]
    for m in runs:
        lines = [{"epoch": 1.0, "step": s, "accuracy": m["best"]["accuracy"] - 0.1 / s} for s in (1, 2)]
        (Path(m["run_dir"]) / "history.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    page = report.build_report(write_runs(tmp_path, runs))
    assert "3 runs (3 completed, 0 failed, diverged or oom) on rt_polarity" in page
    assert "budgets differ on rt_polarity" in page and "<td>! 3 ep x bs 32, len 128, all/200 ex</td>" in page
    assert "<td>lr=0.0005 r=8 task.max_eval_samples=200</td>" in page
    assert "learning curves" in images(page) and "Skipped (no history)" not in page
