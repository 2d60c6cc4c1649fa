"""The Zendesk app package: manifest rules, translations, logos, and the zip for upload."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "zendesk_package", ROOT / "zendesk_app" / "tools" / "package.py"
)
assert _spec and _spec.loader
package = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(package)

MANIFEST = json.loads((ROOT / "zendesk_app" / "manifest.json").read_text())


def test_the_committed_app_is_valid():
    assert package.validate_app() == []
    assert MANIFEST["signedUrls"] is True
    assert MANIFEST["frameworkVersion"] == "2.0"
    assert MANIFEST["location"]["support"]["ticket_sidebar"]["url"].endswith("/zendesk/sidebar")


def broken(**changes) -> dict:
    manifest = json.loads(json.dumps(MANIFEST))
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        target = manifest
        for part in path:
            target = target[part]
        if value is ...:
            del target[last]
        else:
            target[last] = value
    return manifest


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": ...}, "missing required key 'name'"),
        ({"author__email": "nobody"}, "author.email must be an email address"),
        ({"frameworkVersion": "1.0"}, "frameworkVersion must be '2.0'"),
        ({"signedUrls": "yes"}, "signedUrls must be true or false"),
        ({"colour": "blue"}, "unknown key 'colour'"),
        ({"version": "one"}, "version must look like"),
        ({"location": {"support": {"ticket_sidebar": "http://insecure.example.com/"}}}, "absolute https URL"),
        ({"location": {"support": {"ticket_sidebarr": "https://x.example.com/"}}}, "unknown location"),
        ({"location": {"zopim": {"chat_sidebar": "https://x.example.com/"}}}, "unknown product"),
        (
            {
                "location": {
                    "support": {"ticket_sidebar": {"url": "https://x.example.com", "flexible": "yes"}}
                }
            },
            "flexible must be",
        ),
        (
            {"parameters": [{"name": "a", "type": "text"}, {"name": "a", "type": "text"}]},
            "duplicate parameter",
        ),
        ({"parameters": [{"name": "a", "type": "colour"}]}, "type must be one of"),
        ({"parameters": [{"name": "a b"}]}, "name must match"),
    ],
)
def test_manifest_rules(changes, message):
    errors = package.validate_manifest(broken(**changes))
    assert any(message in e for e in errors), errors


def test_translations_and_logos_are_checked(tmp_path):
    app = tmp_path / "app"
    shutil.copytree(ROOT / "zendesk_app", app, ignore=shutil.ignore_patterns("node_modules", "dist"))
    manifest = broken(parameters=[*MANIFEST["parameters"], {"name": "unlabelled", "type": "text"}])
    assert "translations/en.json: app.parameters.unlabelled.label is required" in package.validate_app(
        app, manifest
    )
    shutil.copy(app / "assets" / "logo-small.png", app / "assets" / "logo.png")
    assert any("logo.png must be a 320x320 PNG" in e for e in package.validate_app(app))
    (app / "assets" / "logo.png").unlink()
    assert "assets/logo.png is required" in package.validate_app(app)


def test_package_zip_points_at_the_deployment(tmp_path):
    out = package.build_package(tmp_path / "app.zip", "https://assistant.acme.test/")
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
    assert {"manifest.json", "translations/en.json", "assets/logo.png", "assets/logo-small.png"} <= names
    assert not any(n.startswith(("src/", "node_modules/", "tools/")) for n in names)
    # The URL stays a template Zendesk fills per installation; --url is the setting's default.
    assert (
        manifest["location"]["support"]["ticket_sidebar"]["url"] == "{{setting.backend_url}}/zendesk/sidebar"
    )
    assert manifest["location"]["support"]["ticket_sidebar"]["flexible"] is True
    assert manifest["parameters"][0]["default"] == "https://assistant.acme.test"
    with pytest.raises(ValueError, match="absolute https URL"):
        package.build_package(tmp_path / "bad.zip", "http://assistant.acme.test")
    assert package.main(["--url", "https://ok.example.com", "--out", str(tmp_path / "cli.zip")]) == 0
    assert package.main(["--url", "ftp://nope", "--out", str(tmp_path / "cli2.zip")]) == 1


def _zendesk_location_url(manifest: dict, settings: dict[str, str]) -> str:
    """What Zendesk loads for an installation: `{{setting.<name>}}` filled from its settings."""
    url = manifest["location"]["support"]["ticket_sidebar"]["url"]
    return re.sub(r"\{\{\s*setting\.([A-Za-z0-9_]+)\s*\}\}", lambda m: settings[m.group(1)], url)


def test_the_backend_url_setting_decides_where_the_sidebar_loads_from():
    """An installation's `backend_url` setting is where Zendesk loads the signed sidebar from.

    Zendesk fills `{{setting.<name>}}` placeholders in a location URL from the installation's
    settings; its own manifest validator accepts such URLs, signed ones included
    (zendesk/zendesk_apps_support, lib/zendesk_apps_support/validations/manifest.rb,
    `invalid_location_uri_error`: "return nil if path.include?('{{setting.')"; commits
    "New {{setting.}} for urls" and "Remove signed setting uri validation"). Parameters are declared
    as the manifest reference describes (https://developer.zendesk.com/documentation/apps/app-developer-guide/manifest/#parameters).
    Before, the URL was fixed at package time and the setting changed nothing.
    """
    (param,) = [p for p in MANIFEST["parameters"] if p["name"] == "backend_url"]
    assert param["required"] is True and param["secure"] is False and param["type"] == "url"
    a = _zendesk_location_url(MANIFEST, {"backend_url": "https://eu.assistant.acme.test"})
    b = _zendesk_location_url(MANIFEST, {"backend_url": "https://us.assistant.acme.test"})
    assert a == "https://eu.assistant.acme.test/zendesk/sidebar"
    assert b == "https://us.assistant.acme.test/zendesk/sidebar"
    # The packaged default renders to a valid https sidebar URL too.
    assert _zendesk_location_url(MANIFEST, {"backend_url": param["default"]}).startswith("https://")


@pytest.mark.parametrize(
    ("url", "params", "message"),
    [
        ("{{setting.nope}}/zendesk/sidebar", [], "no parameter 'nope' is declared"),
        (
            "{{setting.key}}/zendesk/sidebar",
            [{"name": "key", "type": "text", "secure": True, "required": True, "default": "https://x.test"}],
            "secure setting 'key'",
        ),
        (
            "{{setting.base}}/zendesk/sidebar",
            [{"name": "base", "type": "url", "required": False, "default": "https://x.test"}],
            "must be required",
        ),
        (
            "{{setting.base}}/zendesk/sidebar",
            [{"name": "base", "type": "url", "required": True, "default": "http://x.test"}],
            "absolute https URL",
        ),
        (
            "{{setting.base}}/zendesk/sidebar",
            [{"name": "base", "type": "url", "required": True, "default": "https://x.test/"}],
            "doubles the slash",
        ),
    ],
)
def test_setting_placeholders_in_location_urls_are_checked(url, params, message):
    manifest = broken(parameters=params)
    manifest["location"]["support"]["ticket_sidebar"]["url"] = url
    errors = package.validate_manifest(manifest)
    assert any(message in e for e in errors), errors
