"""The Train tab in a real browser (Debian's Chromium through Playwright): a run you can watch (curves drawn while
it runs, progress beside them, never over them), one run at a time (Train disabled while it runs), Cancel, Revert,
the trained checkpoint, and Compare against the extractor before the run."""

from __future__ import annotations

import re
import threading

import pytest
from test_browser_app import TIMEOUT_MS, _cell, _file_links, _open_tab, _wait_header, _wait_toast
from tiny_workspace import build_tiny_workspace, serve_app

from explorer.models import ViTExtractor
from explorer.workspace import workspace as workspace_module

pytestmark = pytest.mark.browser
# Gradio's progress display (its status tracker, shown or not) and the parts it draws over a component.
PROGRESS_ELEMENTS = "[data-testid=status-tracker]:not(.hide), .eta-bar, .progress-bar, .progress-level, .progress-text"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    workspace = build_tiny_workspace(tmp_path_factory.mktemp("browser-training"))
    with serve_app(workspace) as url:
        yield url, workspace


@pytest.fixture
def page(served, browser):
    url, _ = served
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(url)
    page.get_by_role("heading", name="Metric-learning explorer").wait_for(timeout=TIMEOUT_MS)
    yield page
    page.close()


@pytest.fixture
def paused_at_epoch_2(monkeypatch):
    """Training pauses at the first batch of epoch 2 until the test sets the returned event."""
    resume = threading.Event()
    train_extractor = workspace_module.train_extractor

    def paused(*args, progress, **kwargs):
        def report(fraction: float, message: str) -> None:
            progress(fraction, message)
            if message.startswith("epoch 2/"):
                resume.wait(TIMEOUT_MS / 1000)

        return train_extractor(*args, progress=report, **kwargs)

    monkeypatch.setattr(workspace_module, "train_extractor", paused)
    yield resume
    resume.set()


def _start_training(page, epochs: int) -> None:
    _open_tab(page, "Train")
    for label, value in (("epochs", epochs), ("n_labels", 2), ("n_instances", 2)):
        page.get_by_label(label, exact=True).fill(str(value))
    page.locator("#train-start").click()


def _wait_status(page, text: str | re.Pattern) -> None:
    page.locator("#train-status").get_by_text(text).wait_for(timeout=TIMEOUT_MS)


def _plot_marks(page) -> dict[str, int]:
    """How many lines and markers the training curves draw (plotly's SVG)."""
    return page.locator("#train-curves").evaluate(
        """plot => ({
            lines: [...plot.querySelectorAll('.scatterlayer path.js-line')].filter(p => (p.getAttribute('d') || '').length > 2).length,
            markers: plot.querySelectorAll('.scatterlayer path.point').length,
        })"""
    )


def _progress_over(page, elem_id: str) -> list[str]:
    """The visible progress elements whose box overlaps the element `elem_id` (none: nothing covers it)."""
    return page.evaluate(
        """([id, selector]) => {
            const element = document.getElementById(id), box = element.getBoundingClientRect();
            return [...document.querySelectorAll(selector)].filter(e => !e.contains(element)).filter(e => {
                const r = e.getBoundingClientRect(), style = getComputedStyle(e);
                const visible = r.width > 0 && r.height > 0 && style.visibility !== 'hidden' && style.display !== 'none'
                    && style.opacity !== '0';
                return visible && r.left < box.right && r.right > box.left && r.top < box.bottom && r.bottom > box.top;
            }).map(e => e.className);
        }""",
        [elem_id, PROGRESS_ELEMENTS],
    )


def test_the_curves_are_drawn_while_training_runs_and_no_progress_covers_them(page, paused_at_epoch_2, tmp_path):
    _start_training(page, epochs=4)
    _wait_status(page, re.compile(r"Training: epoch 2/4, batch 1/2"))
    page.wait_for_function(
        "() => document.querySelectorAll('#train-curves .scatterlayer path.point').length >= 2", timeout=TIMEOUT_MS
    )
    page.locator("#train-curves").scroll_into_view_if_needed()
    screenshot = tmp_path / "training-epoch-2-of-4.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    marks = _plot_marks(page)
    assert marks["lines"] >= 4 and marks["markers"] >= 2, marks  # per-batch lines; epoch 0 and 1 validation points
    assert _progress_over(page, "train-curves") == []
    assert _progress_over(page, "train-status") != []  # Gradio marks the run as going beside the curves ...
    assert re.search(r"· \d+% done", page.locator("#train-status").inner_text())  # ... and the status says how far
    ticks = page.locator("#train-curves .xtick text").evaluate_all("texts => texts.map(t => t.textContent)")
    assert ticks and all(re.fullmatch(r"\d+", tick) for tick in ticks), ticks  # whole epochs
    assert page.locator("#train-start").is_disabled()  # one run at a time
    paused_at_epoch_2.set()
    _wait_status(page, "Finished 4 epoch(s)")
    assert _cell(page, "train-history", 0, 0).inner_text().strip() == "0"  # epoch 0, before training, first
    assert _cell(page, "train-history", 4, 0).inner_text().strip() == "4"
    page.wait_for_function("() => !document.querySelector('#train-start').disabled", timeout=TIMEOUT_MS)


def test_training_then_every_view_compare_revert_and_the_checkpoint(page, tmp_path):
    _start_training(page, epochs=2)
    _wait_status(page, "Finished 2 epoch(s)")
    status = page.locator("#train-status").inner_text()
    kept = re.search(r"using epoch (\d) of 2 \((best OVERALL/cmc/1 = [\d.]+)", status)
    assert kept, status
    _wait_header(page, f"trained here, epoch {kept.group(1)} of 2 in use")
    page.locator("#train-download").click()
    page.wait_for_selector("#train-checkpoint a[download='trained.safetensors']", timeout=TIMEOUT_MS)
    with page.expect_download() as download:
        page.locator("#train-checkpoint a[download='trained.safetensors']").click()
    saved = tmp_path / "trained.safetensors"
    download.value.save_as(saved)
    assert ViTExtractor(saved).checkpoint_metadata.training["epoch_in_use"] == int(kept.group(1))
    assert "trained.safetensors" in _file_links(page, "train-checkpoint")
    page.locator("#train-revert").click()
    _wait_status(page, "Reverted")
    page.wait_for_function("() => !document.querySelector('#header').innerText.includes('trained')")
    _open_tab(page, "Compare")
    page.locator("#compare-run").click()
    _cell(page, "compare-deltas", 0, 0).wait_for(timeout=TIMEOUT_MS)
    assert _cell(page, "compare-deltas", 0, 0).inner_text().strip() == "OVERALL/cmc/1"
    assert float(_cell(page, "compare-deltas", 0, 3).inner_text()) == 0  # reverted: the extractor before the run


def test_cancel_stops_a_long_training_run_and_train_can_be_pressed_again(page):
    _start_training(page, epochs=200)
    # Tiny epochs go by fast: the status shows a batch of some epoch or the validation after one.
    _wait_status(page, re.compile(r"Training: (epoch \d+/200|validating after epoch \d+)"))
    assert page.locator("#train-start").is_disabled()
    page.locator("#train-cancel").click()
    _wait_status(page, "Cancelled")
    page.wait_for_function("() => !document.querySelector('#train-start').disabled", timeout=TIMEOUT_MS)


def test_bad_training_settings_get_a_message_and_train_stays_usable(page):
    _open_tab(page, "Train")
    page.locator("#train-image-size input").fill("5")
    page.locator("#train-start").click()
    _wait_toast(page, "image size must be between 32 and 1024, got 5")
    page.wait_for_function("() => !document.querySelector('#train-start').disabled", timeout=TIMEOUT_MS)


def test_revert_and_download_before_training_say_to_train_first(page):
    _open_tab(page, "Train")
    page.locator("#train-revert").click()
    _wait_toast(page, "Nothing to revert")
    page.locator("#train-download").click()
    _wait_toast(page, "No trained checkpoint yet")


def test_compare_before_training_says_to_train_first(page):
    _open_tab(page, "Compare")
    page.locator("#compare-run").click()
    _wait_toast(page, "Nothing to compare yet")
