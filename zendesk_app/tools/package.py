"""Validate the ZAF app against Zendesk's manifest rules, then zip it for upload.

    python zendesk_app/tools/package.py --url https://assistant.example.com [--out PATH]

zcli's `apps:validate` asks a Zendesk account to validate (login and network needed), so the
rules of Zendesk's manifest reference that matter for this app are checked here instead:
required keys and types, known locations, location URLs (https), parameters and their
translations, the default locale's file, and the logo sizes.

The sidebar URL is `{{setting.backend_url}}/zendesk/sidebar`: Zendesk fills `{{setting.<name>}}`
in a location URL with the installation's setting (its own validator, zendesk_apps_support
`invalid_location_uri_error`, skips URL checks for such URLs, signed ones included, since 2019),
so each installation points at its own backend. `--url` sets the setting's default.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import struct
import sys
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

APP_DIR = Path(__file__).resolve().parents[1]

TOP_LEVEL_KEYS = {
    "name", "author", "defaultLocale", "private", "location", "version", "frameworkVersion",
    "signedUrls", "parameters", "domainWhitelist", "singleInstall", "requirementsOnly",
    "marketingOnly", "oauth", "remoteInstallationURL", "termsConditionsURL", "experiments",
}  # fmt: skip
REQUIRED_KEYS = {"name", "author", "defaultLocale", "location", "frameworkVersion"}
LOCATIONS = {
    "support": {
        "ticket_sidebar", "new_ticket_sidebar", "user_sidebar", "organization_sidebar",
        "top_bar", "nav_bar", "background", "ticket_editor", "modal",
    },
    "sell": {"deal_card", "lead_card", "person_card", "company_card", "top_bar", "background"},
    "chat": {"chat_sidebar", "background"},
}  # fmt: skip
LOCATION_OPTIONS = {"url", "flexible", "autoLoad", "autoHide", "signed", "size"}
PARAMETER_TYPES = {"text", "password", "checkbox", "url", "number", "multiline", "hidden", "oauth"}
PARAMETER_KEYS = {"name", "type", "required", "secure", "default", "scopes", "domain"}
LOGOS = {"logo.png": (320, 320), "logo-small.png": (128, 128)}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_VERSION = re.compile(r"^\d+\.\d+(\.\d+)?$")
_PARAM_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_SETTING = re.compile(r"\{\{\s*setting\.([A-Za-z0-9_]+)\s*\}\}")


def _png_size(path: Path) -> tuple[int, int] | None:
    head = path.read_bytes()[:24]
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def _check_url(where: str, url: Any, errors: list[str], params: dict[str, dict] | None = None) -> None:
    if not isinstance(url, str) or not url:
        errors.append(f"{where}: url must be a non-empty string")
        return
    if url.startswith("assets/"):
        return  # a page shipped inside the app
    if params is not None and _SETTING.search(url):
        url = _render_settings(where, url, params, errors)
        if url is None:
            return
    parsed = urlparse(url)
    if parsed.scheme != "https" or not parsed.netloc:
        errors.append(f"{where}: url must be an absolute https URL or an assets/ path, got {url!r}")


def _render_settings(where: str, url: str, params: dict[str, dict], errors: list[str]) -> str | None:
    """The location URL with each `{{setting.x}}` replaced by x's default, or None if it cannot be.

    Zendesk fills the placeholder from the installation's settings, so it must name a declared,
    required, non-secure setting (a secure value would end up in a URL the browser sees) whose
    default shows what the finished URL looks like."""
    ok = True
    for name in _SETTING.findall(url):
        param = params.get(name)
        if param is None:
            errors.append(f"{where}: url uses {{{{setting.{name}}}}} but no parameter {name!r} is declared")
            ok = False
        elif param.get("secure"):
            errors.append(
                f"{where}: url uses the secure setting {name!r}; secure values never reach the browser"
            )
            ok = False
        elif not param.get("required"):
            errors.append(
                f"{where}: url uses the setting {name!r}, which must be required (an empty URL loads nothing)"
            )
            ok = False
        elif not isinstance(param.get("default"), str) or not param["default"]:
            errors.append(f"{where}: url uses the setting {name!r}, which needs a default to check the URL")
            ok = False
        elif param["default"].endswith("/") and _SETTING.search(url).end() < len(url):
            errors.append(
                f"{where}: the default of {name!r} ends with '/', which doubles the slash in {url!r}"
            )
            ok = False
    if not ok:
        return None
    return _SETTING.sub(lambda m: params[m.group(1)]["default"], url)


def validate_manifest(manifest: Any) -> list[str]:
    """Every rule broken by this manifest, as readable messages (empty when valid)."""
    errors: list[str] = []
    if not isinstance(manifest, dict):
        return ["manifest.json must hold a JSON object"]
    for key in sorted(REQUIRED_KEYS - manifest.keys()):
        errors.append(f"missing required key {key!r}")
    for key in sorted(manifest.keys() - TOP_LEVEL_KEYS):
        errors.append(f"unknown key {key!r}")
    if "name" in manifest and (not isinstance(manifest["name"], str) or not manifest["name"].strip()):
        errors.append("name must be a non-empty string")
    author = manifest.get("author")
    if "author" in manifest:
        if not isinstance(author, dict):
            errors.append("author must be an object with name and email")
        else:
            if not isinstance(author.get("name"), str) or not author["name"].strip():
                errors.append("author.name is required")
            if not isinstance(author.get("email"), str) or not _EMAIL.match(author["email"]):
                errors.append("author.email must be an email address")
            if "url" in author:
                _check_url("author", author["url"], errors)
    if "defaultLocale" in manifest and not (
        isinstance(manifest["defaultLocale"], str)
        and re.match(r"^[a-z]{2}(-[a-z]{2})?$", manifest["defaultLocale"])
    ):
        errors.append("defaultLocale must be a locale such as 'en'")
    if "frameworkVersion" in manifest and manifest["frameworkVersion"] != "2.0":
        errors.append("frameworkVersion must be '2.0' (iframe apps)")
    if "version" in manifest and not (
        isinstance(manifest["version"], str) and _VERSION.match(manifest["version"])
    ):
        errors.append("version must look like '1.2.3'")
    for flag in ("private", "signedUrls", "singleInstall", "requirementsOnly", "marketingOnly"):
        if flag in manifest and not isinstance(manifest[flag], bool):
            errors.append(f"{flag} must be true or false")
    declared = {
        p["name"]: p
        for p in manifest.get("parameters") or []
        if isinstance(p, dict) and isinstance(p.get("name"), str)
    }
    location = manifest.get("location")
    if "location" in manifest:
        if not isinstance(location, dict) or not location:
            errors.append("location must map products to their locations")
        else:
            for product, places in location.items():
                if product not in LOCATIONS:
                    errors.append(f"location: unknown product {product!r}")
                    continue
                if not isinstance(places, dict) or not places:
                    errors.append(f"location.{product} must map locations to URLs")
                    continue
                for place, spec in places.items():
                    where = f"location.{product}.{place}"
                    if place not in LOCATIONS[product]:
                        errors.append(f"{where}: unknown location")
                    elif isinstance(spec, str):
                        _check_url(where, spec, errors, declared)
                    elif isinstance(spec, dict):
                        _check_url(where, spec.get("url"), errors, declared)
                        for option in sorted(spec.keys() - LOCATION_OPTIONS):
                            errors.append(f"{where}: unknown option {option!r}")
                        for option in ("flexible", "autoLoad", "autoHide", "signed"):
                            if option in spec and not isinstance(spec[option], bool):
                                errors.append(f"{where}.{option} must be true or false")
                    else:
                        errors.append(f"{where} must be a URL or an object with a url")
    parameters = manifest.get("parameters", [])
    if not isinstance(parameters, list):
        errors.append("parameters must be a list")
        parameters = []
    seen: set[str] = set()
    for i, param in enumerate(parameters):
        where = f"parameters[{i}]"
        if not isinstance(param, dict):
            errors.append(f"{where} must be an object")
            continue
        name = param.get("name")
        if not isinstance(name, str) or not _PARAM_NAME.match(name):
            errors.append(f"{where}.name must match {_PARAM_NAME.pattern}")
        elif name in seen:
            errors.append(f"{where}: duplicate parameter {name!r}")
        else:
            seen.add(name)
        if param.get("type", "text") not in PARAMETER_TYPES:
            errors.append(f"{where}.type must be one of {sorted(PARAMETER_TYPES)}")
        for key in sorted(param.keys() - PARAMETER_KEYS):
            errors.append(f"{where}: unknown key {key!r}")
        for key in ("required", "secure"):
            if key in param and not isinstance(param[key], bool):
                errors.append(f"{where}.{key} must be true or false")
        if param.get("secure") and param.get("type") in {"checkbox", "hidden"}:
            errors.append(f"{where}: a {param['type']} parameter cannot be secure")
    return errors


def validate_app(app_dir: Path = APP_DIR, manifest: dict[str, Any] | None = None) -> list[str]:
    """The manifest rules plus the files Zendesk expects next to it."""
    try:
        manifest = manifest if manifest is not None else json.loads((app_dir / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return [f"manifest.json: {exc}"]
    errors = validate_manifest(manifest)
    locale = manifest.get("defaultLocale", "en")
    tpath = app_dir / "translations" / f"{locale}.json"
    try:
        translations = json.loads(tpath.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        errors.append(f"translations/{locale}.json: {exc}")
        translations = {}
    app = translations.get("app", {}) if isinstance(translations, dict) else {}
    if not isinstance(app, dict) or not isinstance(app.get("name"), str):
        errors.append(f"translations/{locale}.json: app.name is required")
        app = {}
    for param in manifest.get("parameters", []) or []:
        name = param.get("name") if isinstance(param, dict) else None
        label = ((app.get("parameters") or {}).get(name) or {}).get("label") if name else None
        if name and not isinstance(label, str):
            errors.append(f"translations/{locale}.json: app.parameters.{name}.label is required")
    visible = any(
        place != "background"
        for places in (manifest.get("location") or {}).values()
        if isinstance(places, dict)
        for place in places
    )
    if visible:
        for logo, size in LOGOS.items():
            path = app_dir / "assets" / logo
            if not path.exists():
                errors.append(f"assets/{logo} is required")
            elif _png_size(path) != size:
                errors.append(f"assets/{logo} must be a {size[0]}x{size[1]} PNG, got {_png_size(path)}")
    return errors


def with_backend_url(manifest: dict[str, Any], backend_url: str) -> dict[str, Any]:
    """The manifest with one deployment as the `backend_url` setting's default.

    The location URL keeps its `{{setting.backend_url}}` placeholder: Zendesk fills it from each
    installation's setting, so an admin can point an installation at another backend without a
    new package."""
    base = backend_url.rstrip("/")
    out = json.loads(json.dumps(manifest))
    for param in out.get("parameters", []):
        if param.get("name") == "backend_url":
            param["default"] = base
    return out


def build_package(out: Path, backend_url: str | None = None, app_dir: Path = APP_DIR) -> Path:
    manifest = json.loads((app_dir / "manifest.json").read_text())
    if backend_url:
        manifest = with_backend_url(manifest, backend_url)
    errors = validate_app(app_dir, manifest)
    if errors:
        raise ValueError("the app is not valid:\n  " + "\n  ".join(errors))
    out.parent.mkdir(parents=True, exist_ok=True)
    files = sorted(p for d in ("assets", "translations") for p in (app_dir / d).rglob("*") if p.is_file())
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest, indent=2) + "\n")
        for path in files:
            zf.write(path, path.relative_to(app_dir).as_posix())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--url", default=os.environ.get("PUBLIC_URL"), help="backend base URL (default: PUBLIC_URL)"
    )
    parser.add_argument("--out", type=Path, default=APP_DIR / "dist" / "sidebar-assistant.zip")
    args = parser.parse_args(argv)
    try:
        path = build_package(args.out, args.url)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    where = args.url or "the placeholder default in manifest.json (pass --url or set PUBLIC_URL)"
    print(f"manifest valid; package for {where}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
