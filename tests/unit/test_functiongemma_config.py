"""FunctionGemma settings that must agree between training and inference: the declarations the
adapter learnt (pseudo-functions, quoted examples) are taken from its saved training config."""

from __future__ import annotations

import json

import pytest

from orchestrator.routing.functiongemma.router import FunctionGemmaConfig, adapter_consistent
from orchestrator.routing.functiongemma.train import TrainConfig, config_from_args


def test_router_adopts_the_adapters_declaration_settings(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    trained = TrainConfig(output_dir=str(tmp_path), description_examples=3, pseudo_functions=False)
    (tmp_path / "train_config.json").write_text(trained.model_dump_json())
    cfg = adapter_consistent(FunctionGemmaConfig(adapter_path=str(tmp_path), description_examples=0))
    assert cfg.description_examples == 3 and cfg.pseudo_functions is False
    assert cfg.adapter_path == str(tmp_path)  # everything else as configured


def test_adapter_without_saved_config_keeps_the_configured_settings(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    cfg = FunctionGemmaConfig(adapter_path=str(tmp_path), description_examples=2)
    assert adapter_consistent(cfg) == cfg


def test_a_directory_that_is_not_an_adapter_is_refused(tmp_path):
    (tmp_path / "train_config.json").write_text(json.dumps({"description_examples": 3}))
    with pytest.raises(FileNotFoundError, match="not a LoRA adapter"):
        adapter_consistent(FunctionGemmaConfig(adapter_path=str(tmp_path)))


def test_train_cli_sets_declaration_examples(tmp_path):
    out = str(tmp_path / "out")
    assert config_from_args(["--output-dir", out]).description_examples == 0
    assert config_from_args(["--output-dir", out, "--description-examples", "3"]).description_examples == 3
    with pytest.raises(SystemExit) as exc:
        config_from_args(["--output-dir", out, "--description-examples", "11"])
    assert exc.value.code == 2
