"""The demo page in a real browser: headless Debian Chromium, driven by Selenium, against
`python -m glow_tf.tools.demo` serving a tiny Fashion-MNIST Glow trained by train.py.

Every control is used as a user would: clicks, the file chooser, the keyboard on the sliders. What the
page shows is read back from the <img> elements' PNG data URIs and checked against the files uploaded.
Skipped, with the reason, where chromium, chromium-driver or selenium are missing.
"""

import os

import numpy as np
import pytest
from PIL import Image

from tests import browser as b
from tests.data_fixtures import needs_fashion
from tests.demo_fixtures import foolbox_fashion, fresh_copy, from_uri, tiny_logdir
from tests.tool_fixtures import assert_reconstructs

pytestmark = [needs_fashion, pytest.mark.skipif(b.missing() is not None, reason=str(b.missing()))]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A served demo and a browser on its page, ready (first example shown, sliders built)."""
    logdir = fresh_copy(tiny_logdir(tmp_path_factory), tmp_path_factory, "browser")
    with b.DemoProcess(logdir) as served, b.Browser() as br:
        br.driver.get(served.url)
        names = b.wait_ready(br)
        yield br, names, served


def by_id(br, element_id):
    from selenium.webdriver.common.by import By

    return br.driver.find_element(By.ID, element_id)


def shown(br, element_id):
    return from_uri(b.image_src(br, element_id))


def choose_file(br, element_id, path):
    before = b.image_src(br, "recon-image")
    by_id(br, element_id).send_keys(os.path.abspath(path))
    return before


def test_page_loads_with_examples_directions_and_samples(page):
    from selenium.webdriver.common.by import By

    br, names, _ = page
    assert br.driver.title == "Glow demo"
    assert "fashion_mnist 28\u00d728\u00d71" in by_id(br, "model-info").text
    assert len(br.driver.find_elements(By.CSS_SELECTOR, "#examples button")) == 8
    assert names and set(names) <= {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                                    "Sneaker", "Bag", "Ankle boot"}
    assert "validation images" in by_id(br, "directions-note").text
    br.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#samples img")) == 8, 60, "the samples")
    assert not by_id(br, "error").is_displayed()
    # The first example is shown with its reconstruction.
    assert_reconstructs(shown(br, "recon-image"), shown(br, "input-image"))


def test_upload_shows_the_image_as_the_model_sees_it_and_its_reconstruction(page):
    br, _, _ = page
    path = foolbox_fashion(3)
    before = choose_file(br, "upload", path)
    b.wait_changed(br, "recon-image", before)
    with Image.open(path) as img:
        expected = np.asarray(img.convert("L"))[..., None]
    br.wait(lambda d: np.array_equal(shown(br, "input-image"), expected), 30, "the uploaded image")
    assert_reconstructs(shown(br, "recon-image"), expected)
    assert os.path.basename(path) in by_id(br, "alignment").text and "centre crop" in by_id(br, "alignment").text
    link = br.driver.find_element("css selector", 'a.download[data-for="recon-image"]')
    assert link.get_attribute("href") == b.image_src(br, "recon-image")
    assert link.get_attribute("download").endswith("_reconstruction.png")


def test_moving_a_slider_changes_the_image_and_reset_restores_it(page):
    from selenium.webdriver.common.keys import Keys

    br, _, _ = page
    br.wait(lambda d: b.image_src(br, "manip-image"), 30, "the edited image")
    reconstruction = shown(br, "recon-image")
    br.wait(lambda d: np.array_equal(shown(br, "manip-image"), reconstruction), 30, "sliders at zero")
    before = b.image_src(br, "manip-image")
    old, new = b.slide(br, "direction-1", Keys.ARROW_RIGHT * 10)
    assert float(old) == 0 and float(new) == pytest.approx(0.5)
    b.wait_changed(br, "manip-image", before)
    assert not np.array_equal(shown(br, "manip-image"), reconstruction)
    assert br.driver.find_element("css selector", 'a.download[data-for="manip-image"]').get_attribute("href") \
        == b.image_src(br, "manip-image")
    by_id(br, "reset-sliders").click()
    br.wait(lambda d: np.array_equal(shown(br, "manip-image"), reconstruction), 30, "the reset")


def test_mix_slider_moves_between_the_two_images(page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    br, _, _ = page
    before = b.image_src(br, "mix-b")
    br.driver.find_elements(By.CSS_SELECTOR, "#mix-examples button")[5].click()
    b.wait_changed(br, "mix-b", before)
    a, b_end = shown(br, "mix-a"), shown(br, "mix-b")
    assert not np.array_equal(a, b_end)
    b.slide(br, "mix-slider", Keys.HOME)
    br.wait(lambda d: np.array_equal(shown(br, "mix-image"), a), 30, "the mix at alpha 0 to show A")
    b.slide(br, "mix-slider", Keys.END)
    br.wait(lambda d: np.array_equal(shown(br, "mix-image"), b_end), 30, "the mix at alpha 1 to show B")
    b.slide(br, "mix-slider", Keys.ARROW_LEFT * 10)
    assert by_id(br, "mix-value").text == "0.50"
    br.wait(lambda d: not np.array_equal(shown(br, "mix-image"), b_end), 30, "the mix at alpha 0.5")
    middle = shown(br, "mix-image")
    assert not np.array_equal(middle, a)
    # Halfway is nearer to each end than the ends are to each other.
    distance = lambda p, q: np.abs(p.astype(int) - q.astype(int)).sum()  # noqa: E731
    assert distance(middle, a) < distance(a, b_end) and distance(middle, b_end) < distance(a, b_end)


def test_bad_upload_shows_the_error_and_the_page_still_works(page, tmp_path):
    br, _, _ = page
    bad = tmp_path / "holiday.png"
    bad.write_text("not a picture at all\n")
    choose_file(br, "upload", bad)
    br.wait(lambda d: by_id(br, "error").is_displayed(), 30, "the error message")
    assert "holiday.png is not an image" in by_id(br, "error-text").text
    small = tmp_path / "small.png"
    Image.new("L", (12, 12)).save(small)
    choose_file(br, "upload", small)
    br.wait(lambda d: "smaller than the model's 28x28" in by_id(br, "error-text").text, 30, "the size error")
    # A good upload afterwards works and clears the message.
    before = choose_file(br, "upload", foolbox_fashion(7))
    b.wait_changed(br, "recon-image", before)
    assert not by_id(br, "error").is_displayed()


def test_random_samples_follow_the_seed(page):
    from selenium.webdriver.common.by import By

    br, _, _ = page
    br.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#samples img")) == 8, 60, "the samples")
    first = b.image_src(br, "sample-0")
    seed = by_id(br, "seed")
    seed.clear()
    seed.send_keys("12345")
    by_id(br, "draw").click()
    changed = b.wait_changed(br, "sample-0", first)
    assert changed.startswith("data:image/png;base64,")
    # The samples are replaced on every draw, so their link is read in one script call.
    link = br.wait(lambda d: d.execute_script(
        "const a = document.querySelector('#samples a.download');"
        "return a && a.download.includes('seed12345') ? [a.href, a.download] : null;"), 30, "the new links")
    assert link[0] == b.image_src(br, "sample-0") and link[1].startswith("sample_t0.70_seed12345_")
    seed.clear()
    seed.send_keys("0")
    by_id(br, "draw").click()
    br.wait(lambda d: b.image_src(br, "sample-0") == first, 30, "seed 0's samples again")
