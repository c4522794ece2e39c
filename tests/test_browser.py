"""What a person sees: the baked project served by gunicorn, looked at in a real chromium.

The home page and the admin's login page must render with their styles loaded, in development
and in production mode (collected static files served by WhiteNoise, production tried locally
over plain HTTP the way the baked README says). Screenshots are kept in the test's temporary
folder for a human to look at.
"""

import base64
import os

import pytest

from browser import Browser, BrowserUnavailable
from test_operations import served

pytestmark = pytest.mark.slow

MODES = {
    "development": {"DJANGO_DEBUG": "true"},
    # The baked README's way to try production on your own machine.
    "production": {
        "DJANGO_DEBUG": "false",
        "DJANGO_ALLOWED_HOSTS": "localhost,127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
    },
}
# Every stylesheet the page links, its HTTP status and how many rules it holds.
STYLESHEETS = """
[...document.querySelectorAll('link[rel=stylesheet]')].map(link => {
  const entry = performance.getEntriesByName(link.href)[0];
  return [link.href, entry ? entry.responseStatus : 0, link.sheet ? link.sheet.cssRules.length : 0];
})
"""
# How many colours a screenshot holds, counted by the browser itself on a canvas.
COLOURS = """
(async () => {{
  const image = new Image();
  image.src = "data:image/png;base64,{png}";
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = image.width;
  canvas.height = image.height;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const pixels = context.getImageData(0, 0, image.width, image.height).data;
  const colours = new Set();
  for (let i = 0; i < pixels.length; i += 4) {{
    colours.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]);
  }}
  return colours.size;
}})()
"""


@pytest.fixture(scope="module")
def browser():
    try:
        with Browser.start() as started:
            yield started
    except BrowserUnavailable as error:
        if os.environ.get("CI") or os.environ.get("NEON_STANDIN_REQUIRED"):
            pytest.fail(f"The browser test must run here: {error}")
        pytest.skip(str(error))


def look_at(browser, url, screenshot):
    """Open the page, check every stylesheet arrived, save a screenshot and check it shows."""
    page = browser.open(url)
    sheets = page.evaluate(STYLESHEETS)
    assert sheets, f"{url} links no stylesheet"
    for href, status, rules in sheets:
        assert status == 200 and rules > 0, f"{href}: HTTP {status}, {rules} rules"
    png = page.screenshot(screenshot)
    blank = browser.open("about:blank")
    colours = blank.evaluate(COLOURS.format(png=base64.b64encode(png).decode()))
    # A page without its styles, or a blank one, has a handful of colours; anti-aliased text
    # on styled boxes has hundreds.
    assert colours > 50, f"{screenshot} shows only {colours} colours"
    return page


def style(page, selector, prop):
    return page.evaluate(
        f"getComputedStyle(document.querySelector({selector!r})).getPropertyValue({prop!r})"
    )


@pytest.mark.parametrize("mode", MODES)
def test_home_page_and_admin_login_render_styled(migrated_project, browser, mode, tmp_path_factory):
    shots = tmp_path_factory.mktemp(f"screenshots-{mode}")
    with served(migrated_project, **MODES[mode]) as (base, _log):
        home = look_at(browser, f"{base}/", shots / "home.png")
        assert home.evaluate("document.title") == "Served App"
        assert style(home, "body", "background-color") == "rgb(245, 247, 250)"
        assert style(home, ".status", "border-left-color") == "rgb(10, 125, 50)"
        text = home.evaluate("document.body.innerText")
        assert "Connected to the database." in text
        assert ("PostgreSQL" in text) == (mode == "development")  # details only while debugging
        links = home.evaluate("[...document.querySelectorAll('a')].map(a => a.pathname)")
        assert {"/admin/", "/health/"} <= set(links)
        empty = home.evaluate(
            "[...document.querySelectorAll('.card')].filter(c => !c.innerText.trim()).length"
        )
        assert empty == 0, "a box on the home page is empty"

        login = look_at(browser, f"{base}/admin/login/", shots / "admin-login.png")
        assert login.evaluate("document.title").startswith("Log in")
        assert style(login, "#header", "background-color") == "rgb(65, 118, 144)"
        assert login.evaluate("!!document.querySelector('input[name=password]')")
