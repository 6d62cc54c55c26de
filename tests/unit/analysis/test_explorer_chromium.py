"""bench.analysis.explorer in Debian's headless Chromium, driven through the DevTools protocol by
Playwright (pointed at /usr/bin/chromium: no browser download), on helpers.report_results' comparison
(3 tasks x 4 variants, known answers): the page loads with every request but file:// blocked and none
attempted; a filter and an axis choice change the points drawn (read from plotly's ``gd.data``); no two
text labels' boxes overlap; the tables sort and export the rows shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.report_results import TASKS, write_comparison

from bench.analysis import report

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.is_file():
    pytest.skip(f"no headless Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency")

pytestmark = pytest.mark.slow

PLOTS = len(TASKS) + 1 + len(TASKS)  # Pareto per task, the lr small multiples, the curves per task
OVERLAPS = """() => {
  const boxes = [...document.querySelectorAll(".js-plotly-plot svg text")]
    .filter((t) => t.textContent.trim() && getComputedStyle(t).visibility !== "hidden")
    .map((t) => [t.textContent.trim(), t.getBoundingClientRect()])
    .filter(([, r]) => r.width > 0 && r.height > 0);
  const out = [];
  boxes.forEach(([a, p], i) => boxes.slice(i + 1).forEach(([b, q]) => {
    const w = Math.min(p.right, q.right) - Math.max(p.left, q.left);
    const h = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
    if (w > 1 && h > 1) out.push([a, b]);
  }));
  return [boxes.length, out];
}"""
POINTS = """() => [...document.querySelectorAll("#pareto .js-plotly-plot")].map((gd) => [gd.dataset.task,
  gd.data.filter((t) => t.mode === "markers").map((t) => [t.name, t.x, t.y, t.text, t.error_y.arrayminus]),
  gd.data.find((t) => t.name === "Pareto frontier").x])"""


@pytest.fixture(scope="module")
def page_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("explorer")
    write_comparison(folder)
    assert report.main(["--results", str(folder)]) == 0
    return folder / "report.html"


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, page_file):
    """The report in a 1400 x 900 window, every request but file:// blocked and listed in ``page.tried``,
    the page's errors in ``page.errors``."""
    tab = browser.new_page(viewport={"width": 1400, "height": 900})
    tab.tried, tab.errors = [], []

    def route(r):
        if r.request.url.startswith("file://"):
            return r.continue_()
        tab.tried.append(r.request.url)
        return r.abort()

    tab.route("**/*", route)
    tab.on("pageerror", lambda e: tab.errors.append(str(e)))
    tab.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    tab.goto(page_file.as_uri())
    tab.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length === {PLOTS}")
    yield tab
    tab.close()


def test_the_page_loads_with_no_network(page):
    assert page.tried == [] and page.errors == []
    assert page.evaluate("typeof Plotly") == "object"
    assert page.evaluate("document.querySelector('script[src]').getAttribute('src')").startswith("assets/")
    verdict, explore = page.locator("#verdict").bounding_box(), page.locator("#pareto").bounding_box()
    assert verdict["y"] < explore["y"]  # the verdict first


def test_each_point_says_its_configuration_seeds_ci_and_runs(page):
    drawn = {task: (points, front) for task, points, front in page.evaluate(POINTS)}
    assert list(drawn) == list(TASKS)
    points, front = drawn["rt_polarity"]
    by_name = {name: (x, y, text, low) for name, x, y, text, low in points}
    assert sorted(by_name) == ["dora", "full", "ia3", "lora"]
    x, y, [text], [low] = by_name["dora"]
    assert (x, y) == ([120_000], [84.0])
    assert "configuration: lr=0.001" in text and "seeds: 0, 1, 2; runs: 3 completed, 0 failed" in text
    assert "score: 84 [82.76, 85.24] 95% CI" in text and "best or tied with it" in text
    assert low == pytest.approx(1.24, abs=0.01)  # the whisker: the leaderboard's ci95
    assert front == [10_000, 100_000, 120_000]  # ia3, lora, dora: full costs more and scores less


def test_a_filter_and_an_axis_change_the_points_drawn(page):
    page.uncheck("input[name=variant][value=lora]")
    page.uncheck("input[name=task][value=rt_rating]")
    drawn = page.evaluate(POINTS)
    assert [task for task, *_ in drawn] == ["rt_polarity", "tweet_polarity"]
    assert all(sorted(name for name, *_ in points) == ["dora", "full", "ia3"] for _, points, _ in drawn)
    sens = page.evaluate("document.querySelector('#sensitivity .js-plotly-plot').data.map((t) => t.name)")
    assert "lora" not in sens and "dora" in sens
    shown = page.locator("div.fit table").locator("tbody tr:visible td:nth-child(3)")
    assert set(shown.all_inner_texts()) == {"dora", "full", "ia3"}  # the tables follow the filters
    page.select_option("#x-axis", "peak_memory_mb")
    points = {name: x for name, x, *_ in page.evaluate(POINTS)[0][1]}
    assert points == {"dora": [1000.0], "full": [2000.0], "ia3": [900.0]}


def test_no_two_text_labels_overlap(page):
    count, overlaps = page.evaluate(OVERLAPS)
    assert count > 100 and overlaps == []
    page.select_option("#x-axis", "train_time_s")
    page.uncheck("input[name=variant][value=full]")
    assert page.evaluate(OVERLAPS)[1] == []


def test_the_tables_sort_and_export_the_rows_shown(page):
    table = page.locator("div.fit table")
    header = table.locator("th", has_text="mean_x100")
    header.click()
    column = table.locator("thead th").all_inner_texts().index("mean_x100") + 1
    means = [float(v) for v in table.locator(f"tbody td:nth-child({column})").all_inner_texts()]
    assert means == sorted(means) and len(means) == 16
    header.click()
    means = [float(v) for v in table.locator(f"tbody td:nth-child({column})").all_inner_texts()]
    assert means == sorted(means, reverse=True)
    page.uncheck("input[name=task][value=rt_rating]")
    page.uncheck("input[name=task][value=tweet_polarity]")
    csv = page.evaluate("window.peftBench.csv(document.querySelector('div.fit table'))").splitlines()
    assert csv[0].startswith("rank,task,variant,model,hparams,mean_x100")
    assert sorted(line.split(",")[1] for line in csv[1:]) == ["avg"] * 4 + ["rt_polarity"] * 4
    shown = [float(line.split(",")[column - 1]) for line in csv[1:]]
    assert shown == sorted(shown, reverse=True)  # in the order shown
    with page.expect_download() as download:
        page.locator("div.fit button.csv").click()
    assert Path(download.value.path()).read_text().splitlines() == csv
