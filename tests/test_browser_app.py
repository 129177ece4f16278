"""The app in a real browser (Debian's Chromium through Playwright): the main views work as a user drives them."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tiny_workspace import build_tiny_workspace, serve_app

from explorer import const as C
from explorer.ui.plotly_click import plotly_js_url
from explorer.workspace.exploration import label_choice
from explorer.workspace.files import sessions_folder

pytestmark = pytest.mark.browser
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    workspace = build_tiny_workspace(tmp_path_factory.mktemp("browser"))
    with serve_app(workspace) as url:
        yield url, workspace


@pytest.fixture
def page(served, browser):
    url, _ = served
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    page.get_by_role("heading", name="Metric-learning explorer").wait_for(timeout=TIMEOUT_MS)
    yield page
    page.close()


def _open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def _cell(page, elem_id: str, row: int, column: int):
    """A shown cell of a Gradio Dataframe (its hidden sizing table is not matched)."""
    return page.locator(f"#{elem_id} [data-testid=cell-{row}-{column}]")


def _image_source(page, elem_id: str) -> str | None:
    image = page.locator(f"#{elem_id} img")
    return image.get_attribute("src") if image.count() else None


def _wait_new_image(page, elem_id: str, old: str | None) -> None:
    page.wait_for_function(
        """([id, old]) => { const img = document.querySelector(`#${id} img`);
                            return img && img.complete && img.naturalWidth > 0 && img.getAttribute('src') !== old; }""",
        arg=[elem_id, old],
        timeout=TIMEOUT_MS,
    )


def test_page_loads_with_metrics_and_pictures_ready(page, served):
    _, workspace = served
    assert workspace.dataset.name in page.locator("#header").inner_text()
    _open_tab(page, "Metrics")
    page.locator("#metrics-table").get_by_text("OVERALL").filter(visible=True).first.wait_for(timeout=TIMEOUT_MS)
    _open_tab(page, "Queries")
    page.wait_for_function("() => document.querySelector('#query-grid img')?.naturalWidth > 0", timeout=TIMEOUT_MS)


def test_choosing_query_ids_and_n_instances_shows_their_grid(page, served):
    _, workspace = served
    _open_tab(page, "Queries")
    old = _image_source(page, "query-grid")
    old_height = page.evaluate("() => document.querySelector('#query-grid img').naturalHeight")
    four = ", ".join(str(i) for i in workspace.items.query_items[[1, 4, 5, 9]])  # item ids of four queries
    page.locator("#query-ids textarea, #query-ids input").first.fill(four)
    page.locator("#query-instances input[type=number]").fill("3")
    page.locator("#query-show").click()
    _wait_new_image(page, "query-grid", old)
    new_height = page.evaluate("() => document.querySelector('#query-grid img').naturalHeight")
    assert new_height > old_height  # four rows instead of three


def test_bad_query_ids_show_the_message_and_the_page_keeps_working(page, served):
    _, workspace = served
    _open_tab(page, "Queries")
    page.locator("#query-ids textarea, #query-ids input").first.fill("999")
    page.locator("#query-show").click()
    page.get_by_text(f"this dataset has {len(workspace.df)} items (0..{len(workspace.df) - 1})").first.wait_for(
        timeout=TIMEOUT_MS
    )


def test_worst_queries_render_and_a_row_click_opens_that_query_in_the_same_tab(page):
    _open_tab(page, "Worst queries")
    old = _image_source(page, "worst-grid")
    page.locator("#worst-count input[type=number]").fill("2")
    page.locator("#worst-show").click()
    _wait_new_image(page, "worst-grid", old)
    first_id = _cell(page, "worst-table", 0, 0).inner_text().strip()  # an item id
    _cell(page, "worst-table", 0, 1).click()
    _wait_new_image(page, "worst-item-row", None)
    assert page.locator("#worst-item-row").is_visible()  # the row opens here: the user keeps their place
    assert page.locator("#worst-grid").is_visible()
    assert page.locator("#worst-item-row-id input").input_value() == first_id


def test_clicking_a_projection_point_opens_its_retrieval_row(page, served):
    _, workspace = served
    _open_tab(page, "Embeddings")
    page.wait_for_selector("#projection-plot .plotly-click-plot .main-svg", timeout=TIMEOUT_MS)
    coords = workspace.projection_coords("pca")
    item = int(workspace.items.query_items[0])
    position = page.evaluate(
        """([x, y]) => {
            const plot = document.querySelector('#projection-plot .plotly-click-plot');
            const layout = plot._fullLayout;
            const box = plot.getBoundingClientRect();
            return [box.left + layout._size.l + layout.xaxis.d2p(x), box.top + layout._size.t + layout.yaxis.d2p(y)];
        }""",
        [float(coords[item, 0]), float(coords[item, 1])],
    )
    page.mouse.move(*position)
    page.mouse.click(*position)
    _wait_new_image(page, "clicked-row", None)


def test_uploading_an_image_searches_the_gallery(page, served):
    _, workspace = served
    _open_tab(page, "Search")
    row = int(workspace.items.gallery_items[3])
    page.locator("#search-image input[type=file]").set_input_files(workspace.items.paths[row])
    page.wait_for_selector("#search-image img", timeout=TIMEOUT_MS)
    page.locator("#search-run").click()
    _wait_new_image(page, "search-result", None)
    _cell(page, "search-table", 0, 1).wait_for(timeout=TIMEOUT_MS)
    assert _cell(page, "search-table", 0, 1).inner_text().strip() == str(row)  # nearest: the uploaded image itself
    label = workspace.df[C.LABELS_COLUMN].iloc[row]
    assert _cell(page, "search-table", 0, 2).inner_text().strip() == label_choice(workspace.items, label)


# -- the features that change a session's data, model or extractor ----------------------------------------------


def _header(page) -> str:
    return page.locator("#header").inner_text()


def _wait_header(page, text: str) -> None:
    page.wait_for_function(
        "text => document.querySelector('#header')?.innerText.includes(text)", arg=text, timeout=TIMEOUT_MS
    )


def _wait_toast(page, text: str) -> None:
    page.locator(".toast-body").filter(has_text=text).first.wait_for(timeout=TIMEOUT_MS)


def _file_links(page, elem_id: str) -> dict[str, str]:
    """{file name: URL} of the download links a gr.File shows."""
    links = page.locator(f"#{elem_id} a[download]").evaluate_all(
        "links => links.map(a => [a.getAttribute('download'), a.href])"
    )
    return dict(links)


@pytest.fixture(scope="module")
def image_folder_zip(served, tmp_path_factory) -> Path:
    """A zip of an image folder (`pets/<label>/<image>`) made of three labels of the tiny dataset."""
    _, workspace = served
    archive = tmp_path_factory.mktemp("zips") / "pets.zip"
    labels = workspace.df[C.LABELS_COLUMN].to_numpy()
    with zipfile.ZipFile(archive, "w") as zipped:
        for row, path in enumerate(workspace.items.paths):
            if labels[row] in sorted(set(labels))[:3]:
                zipped.write(path, f"pets/class_{labels[row]}/{row}{Path(path).suffix}")
    return archive


def test_uploading_an_image_folder_zip_switches_only_this_session(page, browser, served, image_folder_zip):
    url, workspace = served
    _open_tab(page, "Data")
    page.locator("#data-zip input[type=file]").set_input_files(str(image_folder_zip))
    _wait_header(page, "pets (12 images, 3 labels")
    page.wait_for_function(
        "() => document.querySelector('#data-summary [data-testid=cell-0-1]')?.innerText.trim() === 'pets'",
        timeout=TIMEOUT_MS,
    )
    other = browser.new_page()
    try:
        other.goto(url)
        other.get_by_role("heading", name="Metric-learning explorer").wait_for(timeout=TIMEOUT_MS)
        assert workspace.dataset.name in _header(other)
        assert "pets" not in _header(other)
    finally:
        other.close()


def test_a_file_that_is_not_a_zip_gets_a_clear_message(page, tmp_path, served):
    _, workspace = served
    not_a_zip = tmp_path / "photos.zip"
    not_a_zip.write_text("not a zip")
    _open_tab(page, "Data")
    page.locator("#data-zip input[type=file]").set_input_files(str(not_a_zip))
    _wait_toast(page, "photos.zip is not a zip file")
    assert workspace.dataset.name in _header(page)


def test_loading_a_server_path_and_a_bad_path(page, served):
    _, workspace = served
    _open_tab(page, "Data")
    source = page.locator("#data-source textarea, #data-source input").first
    source.fill("/no/such/folder")
    page.locator("#data-load").click()
    _wait_toast(page, "'folder' is neither a built-in dataset")  # messages name no server folders
    assert page.locator("#header .error").count() == 0  # the error shows on the Data tab's status, not the header
    source.fill(str(Path(workspace.dataset.root)))
    page.locator("#data-load").click()
    _wait_header(page, f"{len(workspace.df)} images")
    page.locator("#data-status").get_by_text("Loaded.").wait_for(timeout=TIMEOUT_MS)


def test_downloading_the_checkpoint_gives_a_loadable_file(page, served, tmp_path):
    _, workspace = served
    _open_tab(page, "Model")
    page.locator("#model-download").click()
    page.wait_for_selector("#model-file a[download$='.safetensors']", timeout=TIMEOUT_MS)
    with page.expect_download() as download:
        page.locator("#model-file a[download$='.safetensors']").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    page.get_by_label("checkpoint", exact=True).check()
    page.locator("#model-apply").click()
    _wait_toast(page, "needs a checkpoint file")
    page.locator("#model-checkpoint input[type=file]").set_input_files(str(saved))
    page.locator("#model-apply").click()
    _wait_header(page, f"checkpoint {saved.name}")
    assert workspace.extractor.choice.name in page.locator("#model-name input").input_value()


def test_export_files_download_and_are_valid(page, served, tmp_path):
    _, workspace = served
    _open_tab(page, "Export")
    page.locator("#export-run").click()
    page.wait_for_selector("#export-files a[download='projection_pca.csv']", timeout=TIMEOUT_MS)
    saved = {}
    for name in ("embeddings.npy", "embeddings.parquet", "metrics.csv", "metrics.json", "projection_pca.csv"):
        with page.expect_download() as download:
            page.locator(f"#export-files a[download='{name}']").click()
        saved[name] = tmp_path / name
        download.value.save_as(saved[name])
    assert np.load(saved["embeddings.npy"]).shape == workspace.embeddings().shape
    table = pd.read_parquet(saved["embeddings.parquet"])
    assert {C.PATHS_COLUMN, C.LABELS_COLUMN, C.EMBEDDING_COLUMN} <= set(table.columns) and len(table) == len(
        workspace.df
    )
    assert set(pd.read_csv(saved["metrics.csv"]).columns) == {"category", "metric", "k", "value"}
    assert "OVERALL/cmc/1" in json.loads(saved["metrics.json"].read_text())["metrics"]
    assert {"x", "y"} <= set(pd.read_csv(saved["projection_pca.csv"]).columns)


def test_the_app_serves_no_arbitrary_files(page, served):
    url, workspace = served
    dataset_image = workspace.items.paths[0]  # rendered server-side: never served as a file
    for path in ("/etc/passwd", str(Path(__file__).resolve()), dataset_image):
        assert page.request.get(f"{url.rstrip('/')}/gradio_api/file={path}").status in (403, 404)
    assert page.request.get(f"{url.rstrip('/')}/{plotly_js_url()}").status == 200


def test_a_sessions_files_are_removed_when_its_page_closes(served, browser):
    url, workspace = served
    sessions = sessions_folder(workspace.cache_dir)
    before = set(sessions.iterdir()) if sessions.exists() else set()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    _open_tab(page, "Export")
    page.locator("#export-run").click()
    page.wait_for_selector("#export-files a[download='projection_pca.csv']", timeout=TIMEOUT_MS)
    (mine,) = set(sessions.iterdir()) - before
    assert any(mine.rglob("embeddings.npy"))
    page.close()
    deadline = time.monotonic() + 120  # Gradio ends a session a little after its page is gone
    while mine.exists() and time.monotonic() < deadline:
        time.sleep(1)
    assert not mine.exists()


def test_the_header_says_which_mode_runs(page):
    assert "Local mode" in page.locator("#mode").inner_text()
