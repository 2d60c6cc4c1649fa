"""Issue 14 item 3: the default models are current, priced, and an unpriced model is never a silent $0.

Written from Google's pages (checked 2026-12-05):
- "Model versions and lifecycle"
  (https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/model-versions, formerly
  cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions);
- Vertex AI pricing (https://cloud.google.com/vertex-ai/generative-ai/pricing).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import uuid
from datetime import date
from pathlib import Path

import pytest
import yaml

from backend.assistant import llm_config
from backend.observability import Metrics
from backend.settings import Settings
from testkit.fake_vertex import FakeVertex, offline_credentials, text_reply
from vertex_interface import LLMConfig, create_llm

ROOT = Path(__file__).resolve().parents[2]
CHECKED = date(2026, 12, 5)

# "Latest available models" / Gemini models, as the lifecycle page lists them: model -> retirement
# date ("or later" for the current ones).
DOCUMENTED_RETIREMENT = {
    "gemini-3.8-flash": date(2027, 9, 2),
    "gemini-3.5-flash-lite": date(2027, 7, 21),
    "gemini-3.5-flash": date(2027, 5, 19),
    "gemini-3.1-flash-lite": date(2027, 5, 7),
    "gemini-2.5-pro": date(2026, 10, 16),
    "gemini-2.5-flash": date(2026, 10, 16),
    "gemini-2.5-flash-lite": date(2026, 10, 16),
}


def deploy_default(name: str) -> str:
    m = re.search(rf'^{name}="\$\{{{name}:-([^}}]+)\}}"$', (ROOT / "infra" / "deploy.sh").read_text(), re.M)
    assert m, f"{name} default not found in infra/deploy.sh"
    return m.group(1)


def test_every_default_gemini_model_is_a_current_ga_model() -> None:
    """Model versions and lifecycle: gemini-2.5-flash, released June 17, 2025, retires "October 16,
    2026" with replacement "Gemini 3.5 Flash-Lite or Gemini 3.1 Flash-Lite"; gemini-3.5-flash-lite
    (released July 21, 2026) is available until "July 21, 2027 or later". "After this date, the model
    is no longer accessible" and requests "typically return a 404". So the code default, the
    Settings default and the deploy default must name a model whose retirement is at least six
    months past the date these pages were checked."""
    defaults = {
        "LLMConfig": LLMConfig().gemini_model,
        "Settings": Settings.model_fields["gemini_model"].default,
        "deploy.sh": deploy_default("GEMINI_MODEL"),
    }
    for where, model in defaults.items():
        assert model in DOCUMENTED_RETIREMENT, f"{where}: {model} is not on the lifecycle page"
        retires = DOCUMENTED_RETIREMENT[model]
        assert (retires - CHECKED).days >= 180, f"{where}: {model} retires on {retires}"
    assert len(set(defaults.values())) == 1, defaults


def test_the_rendered_cloud_run_service_gets_the_current_model_and_thinking_level(tmp_path) -> None:
    """The deployed service runs what deploy.sh renders into infra/cloudrun/service.yaml: the same
    current model (lifecycle page above) and the latency-first thinking level."""
    out = tmp_path / "service.yaml"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PROJECT_ID": "acme-support-prod",
        "REGION": "us-central1",
        "TF_STATE_BUCKET": "acme-tf-state",
        "PUBLIC_URL": "https://sidebar.acme.example",
        "CORS_ALLOWED_ORIGINS": "https://1234.apps.zdusercontent.com",
        "COMMERCE_API_URL": "https://shop.acme.example/api",
        "IMAGE_TAG": "v1",
        "RENDERED_SERVICE": str(out),
    }
    subprocess.run(
        ["bash", str(ROOT / "infra" / "deploy.sh"), "--dry-run"], env=env, check=True, capture_output=True
    )
    (container,) = yaml.safe_load(out.read_text())["spec"]["template"]["spec"]["containers"]
    values = {e["name"]: e.get("value") for e in container["env"]}
    assert values["GEMINI_MODEL"] == "gemini-3.5-flash-lite"
    assert values["GEMINI_THINKING_LEVEL"] == "minimal"


def test_the_price_table_covers_the_default_chat_and_embedding_models() -> None:
    """Vertex AI pricing: Gemini 3.5 Flash-Lite $0.30 per 1M input tokens and $2.50 per 1M output
    tokens (thinking tokens bill as output); text-embedding-005 $0.000025 per 1,000 characters
    (~$0.10 per 1M tokens at ~4 characters a token). Both defaults, as the backend builds them from
    Settings, must have a price."""
    config = llm_config(Settings(_env_file=None, llm_backend="vertex", google_cloud_project="acme-support"))
    chat, embed = config.price(config.gemini_model), config.price(config.embedding_model)
    assert chat is not None and (chat.input_per_million, chat.output_per_million) == (0.30, 2.50)
    assert embed is not None and embed.input_per_million == pytest.approx(0.10)


def test_an_unpriced_model_logs_a_warning_once_and_counts_a_metric(caplog) -> None:
    """A model missing from the price table (Vertex AI pricing above lists what each model costs)
    must not show up as a free call: one warning naming it, and every call counted in
    sidebar_llm_unpriced_calls_total, beside the $0 it adds to sidebar_llm_cost_usd_total."""
    model = f"gemini-3.9-flash-{uuid.uuid4().hex[:6]}"  # the warning is once per process and model
    caplog.set_level(logging.WARNING)
    with FakeVertex() as fake:
        fake.script("generateContent", text_reply("a"), text_reply("b"))
        llm = create_llm(
            LLMConfig(backend="vertex", project="p", api_endpoint=fake.base_url, gemini_model=model),
            credentials=offline_credentials(),
        )
        llm.generate("one")
        llm.generate("two")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and model in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]

    totals = llm.ledger.totals()
    assert totals.cost_usd == 0.0 and totals.unpriced_calls == 2
    metrics = Metrics()
    metrics.observe_turn("complete", cost=totals.as_dict())
    assert metrics.registry.get_sample_value("sidebar_llm_unpriced_calls_total") == 2
    assert metrics.registry.get_sample_value("sidebar_llm_cost_usd_total") == 0


def test_settings_reach_the_llm_config() -> None:
    """GEMINI_THINKING_LEVEL / GEMINI_THINKING_BUDGET become the thinking values every call sends
    (REST reference: generationConfig.thinkingConfig.thinkingLevel / thinkingBudget); `default`
    leaves the level to the model."""
    base = {"_env_file": None, "llm_backend": "vertex", "google_cloud_project": "acme-support"}
    config = llm_config(Settings(**base, gemini_thinking_level="low"))
    assert (config.thinking_level, config.thinking_budget) == ("low", None)
    config = llm_config(Settings(**base, gemini_thinking_level="default", gemini_thinking_budget=-1))
    assert (config.thinking_level, config.thinking_budget) == (None, -1)
    assert config.thinking_config(config.gemini_model) == {"thinking_budget": -1}
