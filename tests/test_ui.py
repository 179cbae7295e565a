"""The demo page at /ui, driven in headless Chromium (Debian's chromium + chromium-driver,
installed by `make test`) against a real server on 127.0.0.1. Screenshots go to
test-output/ui/ so a person can look at what a visitor sees."""

import shutil

import numpy as np
import pytest
from live_server import ROOT, Server
from PIL import Image

pytestmark = pytest.mark.slow
SHOTS = ROOT / "test-output" / "ui"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    pytest.skip(
        "chromium and chromedriver are not installed (make test installs them)", allow_module_level=True
    )


@pytest.fixture(scope="module")
def scans(train_corpus, tiny_calibrated, tmp_path_factory):
    """The test glyph the tiny model finds most glyph-like, and a uniform-noise scan."""
    import onnxruntime as ort

    from glyphgate.core.image.preprocess import preprocess

    with open(train_corpus / "test.npy", "rb") as f:
        x = np.load(f)
    session = ort.InferenceSession(str(tiny_calibrated / "model.onnx"), providers=["CPUExecutionProvider"])
    _, energy = session.run(None, {"image": preprocess(x).numpy()})
    folder = tmp_path_factory.mktemp("scans")
    Image.fromarray(x[int(np.argmin(energy))]).save(folder / "glyph.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(
        folder / "noise.png"
    )
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return folder


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1800"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every request a page makes
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def requested_urls(driver) -> list[str]:
    import json

    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def wait(driver, condition, timeout=120):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def verdicts(driver, n):
    from selenium.webdriver.common.by import By

    def ready(d):
        cards = d.find_elements(By.CSS_SELECTOR, "#results .card[data-verdict]")
        return cards if len(cards) >= n else False

    return wait(driver, ready)


@pytest.fixture(scope="module")
def page(tiny_calibrated, tmp_path_factory):
    SHOTS.mkdir(parents=True, exist_ok=True)
    with Server(tiny_calibrated, tmp_path_factory.mktemp("ui") / "serve.log") as server:
        driver = browser()
        try:
            driver.get(server.url + "/ui/")
            wait(driver, lambda d: "Model:" in d.find_element("id", "model-line").text)
            yield driver
        finally:
            driver.quit()


def test_no_page_the_server_serves_calls_outside(page, scans):
    """An archive's server may be air-gapped: the API page at / (BentoML's, which loads Google
    Tag Manager) and the demo page load everything from this server alone."""
    from selenium.webdriver.common.by import By

    base = page.current_url.split("/ui/")[0]
    page.get_log("performance")  # drop what came before
    page.get(base + "/")
    wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#swagger-ui .opblock"))
    page.get(base + "/ui/")
    wait(page, lambda d: "Model:" in d.find_element("id", "model-line").text)
    page.find_element(By.ID, "files").send_keys(str(scans / "glyph.png"))
    verdicts(page, 1)
    urls = requested_urls(page)
    assert any(u.endswith("/docs.json") for u in urls) and any("/ui/app.js" in u for u in urls), urls
    outside = [u for u in urls if not u.startswith((base + "/", "data:", "blob:"))]
    assert not outside, outside
    page.get(base + "/ui/")  # a fresh page, no cards, for the tests after this one
    wait(page, lambda d: "Model:" in d.find_element("id", "model-line").text)


def test_page_shows_verdicts_for_a_glyph_a_non_glyph_and_a_broken_file(page, scans):
    page.find_element("id", "files").send_keys(
        "\n".join(str(scans / n) for n in ("glyph.png", "noise.png", "broken.png"))
    )
    cards = verdicts(page, 3)
    by_name = {}
    for c in cards:
        text = c.text
        name = next(n for n in ("glyph.png", "noise.png", "broken.png") if n in text)
        by_name[name] = (c.get_attribute("data-verdict"), text)
    assert by_name["glyph.png"][0] == "glyph" and "Glyph:" in by_name["glyph.png"][1]
    assert by_name["noise.png"][0] == "flagged" and "Not a glyph" in by_name["noise.png"][1]
    assert by_name["broken.png"][0] == "error" and "damaged or truncated" in by_name["broken.png"][1]
    seen = page.find_elements("css selector", "#results .card img.seen")
    assert len(seen) == 2, seen  # the glyph's and the noise's cards; the broken file's card shows none
    wait(page, lambda d: all(d.execute_script("return arguments[0].complete", im) for im in seen))
    size = "return [arguments[0].naturalWidth, arguments[0].naturalHeight]"
    sizes = [page.execute_script(size, im) for im in seen]
    assert sizes == [[56, 56], [56, 56]], sizes  # the model input, as /preview sends it
    page.save_screenshot(str(SHOTS / "verdicts.png"))


def test_page_generates_a_grid_and_a_chain(page):
    for field, value in (("gen-n", "4"), ("gen-steps", "12"), ("gen-seed", "3")):
        box = page.find_element("id", field)
        box.clear()
        box.send_keys(value)
    page.find_element("id", "gen-go").click()
    wait(page, lambda d: d.find_element("id", "gen-status").text.startswith("done in"))
    for img in ("gen-grid", "gen-chain"):
        assert page.execute_script(f"return document.getElementById('{img}').naturalWidth") > 100
    page.save_screenshot(str(SHOTS / "generate.png"))


def test_page_asks_for_the_token_once_and_then_works(tiny_calibrated, scans, tmp_path):
    with Server(tiny_calibrated, tmp_path / "serve.log", GLYPHGATE_API_TOKEN="s3cret") as server:
        driver = browser()
        try:
            driver.get(server.url + "/ui/")
            wait(driver, lambda d: "Model:" in d.find_element("id", "model-line").text)
            driver.find_element("id", "files").send_keys(str(scans / "glyph.png"))
            card = verdicts(driver, 1)[0]
            assert card.get_attribute("data-verdict") == "error" and "API token" in card.text
            assert driver.find_element("id", "token-box").is_displayed()
            driver.save_screenshot(str(SHOTS / "token-asked.png"))
            driver.find_element("id", "token").send_keys("s3cret")
            driver.find_element("id", "token-save").click()
            driver.find_element("id", "files").send_keys(str(scans / "noise.png"))
            cards = verdicts(driver, 2)
            assert len(cards) == 2 and "noise.png" in cards[0].text  # only the new file is checked
            assert cards[0].get_attribute("data-verdict") == "flagged"
        finally:
            driver.quit()
