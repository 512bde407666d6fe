"""The edge-serve page in a real headless browser (Debian's chromium, driven by selenium).

The server reads a real video of Fashion-MNIST test images as its camera.  The test reads
the page's DOM: live answers must appear over the stream and in the history, and a photo
chosen in the upload box must come back classified.  Screenshots (desktop and phone size)
are saved under the test's tmp folder, and also to ``$SERVE_SCREENSHOT_DIR`` when set.

Collected only where selenium is installed (the ``[dev]`` extra of ``make test``'s main
venv; see conftest.py): the edge-only venv has no browser driver to run.  Where selenium is
installed, a missing chromium is a failure, not a skip (``.ci/run`` installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import servekit
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from servekit import Server, running

from fmnist_edge.edge.dataset import load_split

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
N_FRAMES = 20


@pytest.fixture(scope="module")
def test_set(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    split = load_split("test")
    return split.images[:N_FRAMES], split.labels[:N_FRAMES]


@pytest.fixture(scope="module")
def camera_server(tmp_path_factory: pytest.TempPathFactory, test_set: tuple) -> Iterator[Server]:
    video = servekit.write_video(tmp_path_factory.mktemp("video") / "garments.avi", test_set[0])
    with running(["--camera", str(video), "--loop", "--fps", "8"]) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """Headless chromium; selenium-manager never runs (both paths are given)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).is_file():
            pytest.fail(f"{path} missing: apt-get install -y chromium chromium-driver "
                        "(.ci/run does this)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--window-size=1280,900",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=ChromeService(executable_path=CHROMEDRIVER),
                              options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: webdriver.Chrome, folder: Path, name: str) -> Path:
    path = folder / name
    assert driver.save_screenshot(str(path)), "screenshot failed"
    assert Image.open(path).size[0] > 300
    extra = os.environ.get("SERVE_SCREENSHOT_DIR")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / name)
    return path


def text(driver: webdriver.Chrome, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def test_live_answers_and_an_upload_appear_on_the_page(browser: webdriver.Chrome,
                                                       camera_server: Server, test_set: tuple,
                                                       tmp_path: Path) -> None:
    images, labels = test_set
    classes = camera_server.json("GET", "/api/info")[1]["classes"]
    browser.get(camera_server.url)
    wait = WebDriverWait(browser, 30, poll_frequency=0.2)

    # Live: the stream is playing, and answers arrive over it and into the history.
    answers = {*classes, "unsure", "no garment found"}  # what the photo pipeline may say
    wait.until(lambda d: text(d, "answer") in classes)
    wait.until(lambda d: d.execute_script(
        "const i = document.getElementById('live'); return !i.hidden && i.naturalWidth > 0"))
    assert browser.find_element(By.ID, "confidence").text.endswith("%")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#history li[data-source=camera]"))
               >= 3)
    seen: set[str] = set()
    wait.until(lambda d: seen.add(text(d, "answer")) or len(seen) >= 3)  # live, not a still
    assert len(seen & set(classes)) >= 2 and seen <= answers, seen
    assert "camera: " in text(browser, "camera-status")

    # Upload: a real test image through the file input, as a phone user picks a photo.
    photo = tmp_path / "trouser.png"
    index = int(np.flatnonzero(labels == classes.index("Trouser"))[0])
    Image.fromarray(images[index]).save(photo)
    browser.find_element(By.ID, "file").send_keys(str(photo))
    wait.until(lambda d: d.find_element(By.ID, "upload-result").is_displayed())
    top = browser.find_elements(By.CSS_SELECTOR, "#upload-top li")
    assert len(top) == 3
    assert top[0].text.startswith("Trouser"), top[0].text
    assert "trouser.png" in text(browser, "upload-timings")
    uploads = browser.find_elements(By.CSS_SELECTOR, "#history li[data-source=upload]")
    assert uploads and uploads[0].text.startswith("Trouser")
    screenshot(browser, tmp_path, "page.png")

    # A phone: one column, the upload box below the live view, nothing wider than the screen.
    browser.set_window_size(390, 844)
    live = browser.find_element(By.ID, "live-panel").rect
    upload = browser.find_element(By.ID, "upload-panel").rect
    assert upload["y"] >= live["y"] + live["height"] - 1
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(browser, tmp_path, "page-phone.png")
    browser.set_window_size(1280, 900)

    problems = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not problems, json.dumps(problems)[:500]  # no CSP violation, no script error


def test_without_a_camera_the_page_says_so_and_uploads_work(browser: webdriver.Chrome,
                                                            test_set: tuple,
                                                            tmp_path: Path) -> None:
    images, _ = test_set
    with running([]) as srv:
        browser.get(srv.url)
        wait = WebDriverWait(browser, 30, poll_frequency=0.2)
        wait.until(lambda d: d.find_element(By.ID, "no-camera").is_displayed())
        assert text(browser, "no-camera") == "No camera"
        assert "no camera" in text(browser, "camera-status")
        assert not browser.find_element(By.ID, "live").is_displayed()
        photo = tmp_path / "boot.png"
        Image.fromarray(images[0]).save(photo)
        browser.find_element(By.ID, "file").send_keys(str(photo))
        wait.until(lambda d: d.find_element(By.ID, "upload-result").is_displayed())
        assert browser.find_elements(By.CSS_SELECTOR, "#upload-top li")[0].text.startswith(
            "Ankle boot")
        screenshot(browser, tmp_path, "page-no-camera.png")


def test_a_token_server_page_asks_for_the_token_then_works(browser: webdriver.Chrome,
                                                           test_set: tuple,
                                                           tmp_path: Path) -> None:
    images, _ = test_set
    with running(["--token", "page-token"]) as srv:
        browser.get(srv.url)
        wait = WebDriverWait(browser, 30, poll_frequency=0.2)
        wait.until(lambda d: d.find_element(By.ID, "token-form").is_displayed())
        assert "missing token" in text(browser, "model")
        browser.find_element(By.ID, "token").send_keys("page-token")
        browser.find_element(By.CSS_SELECTOR, "#token-form button").click()
        wait.until(lambda d: "classes" in text(d, "model"))
        photo = tmp_path / "boot.png"
        Image.fromarray(images[0]).save(photo)
        browser.find_element(By.ID, "file").send_keys(str(photo))
        wait.until(lambda d: d.find_element(By.ID, "upload-result").is_displayed())
        browser.execute_script("sessionStorage.clear()")


def test_the_picture_shows_the_frame_the_answer_is_for(browser: webdriver.Chrome,
                                                       tmp_path_factory: pytest.TempPathFactory,
                                                       test_set: tuple) -> None:
    """The overlay's answer and the MJPEG picture under it belong to the same frame.

    (Browsers show a multipart part only when the next part's head arrives; sent late, the
    picture lagged the answer by one frame.)  Slow video so each frame is on screen a while.
    """
    images, _ = test_set
    video = servekit.write_video(tmp_path_factory.mktemp("slow") / "slow.avi", images)
    expected = [_small(servekit.frame_of(img, i)) for i, img in enumerate(images)]
    with running(["--camera", str(video), "--loop", "--fps", "2"]) as srv:
        browser.get(srv.url)
        wait = WebDriverWait(browser, 30, poll_frequency=0.05)
        matches = []
        for _ in range(3):
            before = browser.find_element(By.ID, "answer").get_attribute("data-frame")
            wait.until(lambda d, b=before: d.find_element(By.ID, "answer")
                       .get_attribute("data-frame") not in (b, None))
            time.sleep(0.2)  # half a frame: the picture has had time to decode
            frame = int(str(browser.find_element(By.ID, "answer").get_attribute("data-frame"))
                        .split()[-1])
            shown = np.array(browser.execute_script(SHOWN_PIXELS), np.float64)
            now, previous = (expected[(frame - 1) % N_FRAMES],
                             expected[(frame - 2) % N_FRAMES])
            matches.append((_corr(shown, now), _corr(shown, previous)))
        assert all(cur > 0.9 and cur > prev for cur, prev in matches), matches


#: The picture currently shown in the page's <img>, as 64x48 grey values.
SHOWN_PIXELS = """
const img = document.getElementById('live');
const c = document.createElement('canvas'); c.width = 64; c.height = 48;
const g = c.getContext('2d'); g.drawImage(img, 0, 0, 64, 48);
const d = g.getImageData(0, 0, 64, 48).data; const out = [];
for (let i = 0; i < d.length; i += 4) out.push((d[i] + d[i + 1] + d[i + 2]) / 3);
return out;
"""


def _small(frame: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(frame).convert("L").resize((64, 48), Image.Resampling.BOX),
                      np.float64).ravel()


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])
