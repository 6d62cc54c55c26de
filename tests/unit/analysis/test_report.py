"""bench.analysis.report: the HTML page, the verdict first, then the plots and the tables; self-contained;
edge cases (one task, failed runs only, no memory recorded, a sweep folder, keyed runs); and a page that
really renders in Chromium (the verdict before the plots, the compact table within 1400 px)."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.report_results import TASKS, write_comparison
from helpers.results import composed_run, write_results, write_runs
from matplotlib import image as mpimg

from bench.analysis import report
from bench.analysis.plotly_bundle import bundle_name

PNG_SRC = re.compile(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


PLOTS: list[str] = []  # runs without a memory breakdown, fewer than 3 variants to rank: no static plot
COMPARISON_PLOTS = ["memory by what holds it", "critical difference diagram"]
DATA = re.compile(r'<script type="application/json" id="explorer-data">(.*?)</script>', re.S)


def explorer(page: str) -> dict:
    """The data the page's interactive plots draw."""
    return json.loads(DATA.search(page).group(1))


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


PAGE_CHECK = """<script>
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter((i) => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0);
  const verdict = document.getElementById("verdict");
  const fit = document.querySelector("div.fit");
  const out = document.createElement("pre");
  out.id = "page-check";
  out.textContent = JSON.stringify({
    total: imgs.length,
    loaded: ok.length,
    widths: ok.map((i) => i.naturalWidth),
    verdict: verdict.innerText,
    verdict_first: Boolean(verdict.compareDocumentPosition(imgs[0]) & Node.DOCUMENT_POSITION_FOLLOWING),
    fit: [fit.clientWidth, fit.querySelector("table").scrollWidth],
    page: [document.documentElement.clientWidth, document.documentElement.scrollWidth],
  });
  document.body.appendChild(out);
});
</script>"""


CHEAPEST = "trainable parameters: lora; peak memory: lora; train time: dora"


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


@pytest.fixture(scope="module")
def comparison(tmp_path_factory) -> tuple[Path, str]:
    """The comparison of helpers.report_results (3 tasks x 4 variants): its folder and its report."""
    folder = tmp_path_factory.mktemp("comparison")
    write_comparison(folder)
    assert report.main(["--results", str(folder)]) == 0
    return folder, (folder / "report.html").read_text()


def test_comparison_report_verdict_then_plots_then_tables(comparison):
    _, page = comparison
    assert list(images(page)) == COMPARISON_PLOTS
    verdict, first_plot = page.index('<section id="verdict"><h2>Verdict</h2>'), page.index('<div id="pareto"')
    tables = page.index("<h2>Leaderboard</h2>")
    assert verdict < first_plot < page.index("<img ") < tables
    assert tables < page.index("<h3>Every column") < page.index("<details><summary>Every configuration")
    assert page.rindex("<table") > page.index("<details>")  # every configuration: collapsed, last
    assert "<td>rt_polarity</td><td>dora lr=0.001: 84.00 ± 1.24 (95% CI, n=3)</td><td>lora</td>" in page
    assert "Demšar, Statistical comparisons of classifiers over multiple data sets, JMLR 7 (2006)" in page
    assert (
        "Welch&#x27;s t-test over seeds (p &gt;= 0.05; these runs kept no test predictions) on rt_polarity"
        in page
    )
    headline = "lora ties with the best on 3 of 3 tasks (dora as often, at more weights); ia3 and full tie"
    assert headline in page  # the cheapest of those tied on most tasks, by Welch's marks (no predictions)
    assert "the Bayesian signed-rank test over the 3 tasks (equivalent within 1 point; P &gt;= 0.95)" in page
    assert "Setting: model minilm; budget 2 ep x bs 32" in page and "device unknown" in page
    assert "code (git_commit): unknown; no run from a modified tree" in page
    every_column = page[page.index("<h3>Every column") : page.index("<details>")]
    assert all(f"<th>mem_{p}_mb</th>" in every_column for p in ("frozen_weights", "activations", "peak"))
    ranks = page[page.index("<h2>Average rank") : page.index("<figure>")]
    order = [ranks.index(f"<td>{v}</td>") for v in ("dora", "lora", "full", "ia3")]
    assert order == sorted(order)  # best average rank first


def test_report_is_self_contained_with_all_plots(tmp_path, capsys):
    page = build(tmp_path)
    assert f"wrote {tmp_path / 'report.html'}" in capsys.readouterr().out
    pngs = images(page)
    assert list(pngs) == PLOTS
    for alt, pixels in pngs.items():
        assert pixels.shape[0] > 200 and pixels.shape[1] > 400, alt
        assert pixels[..., :3].std() > 0.05, f"{alt} looks blank"
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<link" not in page
    bundle = re.findall(r'<script src="([^"]+)">', page)
    assert bundle == [f"assets/{bundle_name()}"] and (tmp_path / bundle[0]).is_file()
    data = explorer(page)
    assert data["tasks"] == ["cola", "mrpc", "sst2"] and len(data["curves"]) > 0
    assert data["sensitivity"] == []  # rows selected on test: no dev score
    assert "18 runs (15 completed, 3 failed, diverged or oom) on cola, mrpc, rte, sst2" in page
    assert "lora-mrpc-s1: no &#x27;accuracy&#x27; curve in" in page  # the run without history.jsonl
    assert "<td>92.00</td>" in page  # every configuration: sst2 lora lr 5e-4, not the selected one
    rows = [re.findall(r"<td>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", page, re.S)]
    assert ["sst2", "full", "roberta_base", "lr=2e-05", "test", "94.33"] in [r[1:7] for r in rows]
    assert "Score = test metric at the epoch selected on the dev set" in page
    assert "No dev score with an lr (rows selected on test have none): plot skipped." in page
    verdict = page[page.index('<section id="verdict">') : page.index("</section>")]
    assert "<td>sst2</td><td>full lr=2e-05: 94.33 ± 3.79 (95% CI, n=3)</td><td>lora</td>" in verdict
    assert verdict.count("paper protocol: best epoch on the reported split") == 3  # cola, mrpc, sst2
    assert "No verdict over all tasks" in verdict  # 2 variants: no rank test


def test_report_one_task(tmp_path):
    page = build(tmp_path, keep=lambda df: df["task"] == "cola")
    assert list(images(page)) == PLOTS
    assert "on cola;" in page and "<td>avg</td>" not in page and "Skipped (no history)" not in page
    assert explorer(page)["tasks"] == ["cola"]


def test_report_failed_runs_only(tmp_path):
    page = build(tmp_path, keep=lambda df: df["status"] != "completed")
    assert images(page) == {} and not DATA.search(page)
    assert "No completed runs: nothing to plot" in page
    assert "4 runs (0 completed, 4 failed, diverged or oom)" in page
    assert "<td>rte</td>" in page and "<td>vera</td>" in page  # still in the table, counted as failed


def test_report_without_memory_skips_that_plot(tmp_path):
    csv_path = write_results(tmp_path)
    df = pd.read_csv(csv_path, dtype=str, keep_default_na=False).assign(peak_memory_mb="")
    df[df["task"] == "cola"].to_csv(csv_path, index=False)
    page = report.build_report(csv_path)
    assert list(images(page)) == [p for p in PLOTS if "memory" not in p]
    assert "peak_memory_mb" not in [a["key"] for a in explorer(page)["axes"]]  # no axis without a value


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


def verdict_rows(text: str) -> dict[str, list[str]]:
    """The per-task rows of the verdict's text (its table: cells split by tabs), by task."""
    return {line.split("\t")[0]: line.split("\t")[1:] for line in text.splitlines() if "\t" in line}


@pytest.mark.slow
def test_report_renders_in_headless_chromium(comparison):
    """The page in a 1400 px window: every plot loads, the verdict comes before the first plot and names
    the best (dora at its dev-selected lr) and the tied (lora), and the compact table fits."""
    folder, page = comparison
    checked = folder / "checked.html"
    checked.write_text(page.replace("</body>", PAGE_CHECK + "</body>"))
    dom = chromium(
        folder / "profile",
        "--window-size=1400,2000",
        "--virtual-time-budget=10000",
        "--dump-dom",
        checked.as_uri(),
    )
    found = re.search(r'<pre id="page-check">(.*?)</pre>', dom.stdout, re.S)
    assert found, f"no check result in the DOM; chromium stderr:\n{dom.stderr[-2000:]}"
    check = json.loads(html.unescape(found.group(1)))
    assert (check["total"], check["loaded"]) == (len(COMPARISON_PLOTS), len(COMPARISON_PLOTS))
    assert min(check["widths"]) > 400
    assert check["verdict_first"]
    text = check["verdict"]
    assert text.startswith("Verdict")
    assert "best dora (average rank 1.00); tied with it (Nemenyi, p >= 0.05): lora, full;" in text
    assert f"cheapest of those (mean over the tasks): {CHEAPEST}. Friedman test over the ranks" in text
    assert (
        "Tied: not told apart from the task's best by Welch's t-test over seeds (p >= 0.05; these runs "
        in text
    )
    rows = verdict_rows(text)
    assert list(rows) == ["task", *TASKS]  # the header, then a row per task
    for task in TASKS:
        best, tied, cheapest = rows[task][:3]
        assert best.startswith("dora lr=0.001: ") and best.endswith(" (95% CI, n=3)"), best
        assert (tied, cheapest) == ("lora", CHEAPEST)
    assert check["fit"][1] <= check["fit"][0], check["fit"]  # the compact table: no horizontal scroll
    assert check["page"][1] <= check["page"][0] <= 1400, check["page"]

    shot = folder / "report.png"
    chromium(
        folder / "profile",
        "--window-size=1400,2400",
        f"--screenshot={shot}",
        (folder / "report.html").as_uri(),
    )
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2400, 1400)
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
    for m in runs:  # scored by role, as the runner records them
        m["best"] = m["final"] = {
            "dev/accuracy": m["best"]["accuracy"],
            "test/accuracy": m["best"]["accuracy"],
        }
        lines = [
            {"epoch": 1.0, "step": s, "dev/accuracy": m["best"]["dev/accuracy"] - 0.1 / s} for s in (1, 2)
        ]
        (Path(m["run_dir"]) / "history.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    page = report.build_report(write_runs(tmp_path, runs))
    assert "3 runs (3 completed, 0 failed, diverged or oom) on rt_polarity" in page
    assert "budgets differ on rt_polarity" in page and "<td>! 3 ep x bs 32, len 128, all/200 ex</td>" in page
    assert "<td>lr=0.0005 r=8 task.max_eval_samples=200</td>" in page
    assert len(explorer(page)["curves"]) == 2 and "Skipped (no history)" not in page
