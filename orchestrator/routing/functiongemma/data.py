"""Training data for the FunctionGemma router, generated from the agent manifests.

Each agent's `when_to_use` examples are varied (polite / casual / urgent forms, typos), pairs of
agents make multi-agent examples (two calls = run both in parallel), counter-examples are
routed to the agent they actually belong to (the other agent whose examples they resemble
most), and conversational / vague messages teach `respond_directly` and
`ask_clarifying_question`. Labels are balanced, the split is by SOURCE example (all variants of
one example land in the same split, so test never sees a paraphrase of a training item), and
anything whose normalised text appears in an evaluation set is dropped.
"""

from __future__ import annotations

import csv
import json
import logging
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from agents.base import AgentManifest
from orchestrator.routing.decisions import (
    ACTION_OF,
    CLARIFY,
    CLARIFY_SEEDS,
    RESPOND,
    RESPOND_SEEDS,
    label_from_wire,
)
from orchestrator.routing.functiongemma.format import ARG, FunctionCall

log = logging.getLogger(__name__)

POLITE = (
    "Could you tell me {q}",
    "Hi, {q} — thanks!",
    "Please can you check: {q}",
    "Would you mind looking up {q}",
)
CASUAL = ("hey {q}", "{q} lol", "quick one: {q}", "so {q}")
URGENT = ("URGENT: {q}", "{q} asap please", "need this now — {q}", "customer waiting!! {q}")
JOIN = (" and also ", ". Also, ", " — and ", "; plus ")

_WS = re.compile(r"\s+")
_WORD = re.compile(r"[a-z0-9]+")


def normalise(text: str) -> str:
    return _WS.sub(" ", re.sub(r"[^\w\s]", "", text.lower())).strip()


@dataclass(frozen=True)
class RouterExample:
    text: str
    calls: tuple[str, ...]  # function names, in order (several = parallel agents)
    source: str  # the seed text it was generated from (the split unit)
    kind: (
        str  # "base" | "polite" | "casual" | "urgent" | "typo" | "multi" | "counter" | "respond" | "clarify"
    )

    @property
    def label(self) -> str:
        return "+".join(self.calls)

    def function_calls(self) -> list[FunctionCall]:
        return [FunctionCall(n, {ARG: self.text}) for n in self.calls]


@dataclass(frozen=True)
class DataConfig:
    seed: int = 0
    per_label: int = 40  # examples per single-call label after balancing
    multi: int = 30  # multi-agent examples in all
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    typo_rate: float = 0.5  # share of variants that also get a typo

    def __post_init__(self) -> None:
        if not 0 <= self.val_fraction < 1 or not 0 <= self.test_fraction < 1:
            raise ValueError("val_fraction and test_fraction must be in [0, 1)")
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError("val_fraction + test_fraction leave too little to train on")
        if self.per_label < 1 or self.multi < 0:
            raise ValueError("per_label must be >= 1 and multi >= 0")


def typo(text: str, rng: random.Random) -> str:
    """One keyboard-style slip in a word of 4+ letters: swap, drop or double a letter."""
    words = text.split(" ")
    idx = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not idx:
        return text
    i = rng.choice(idx)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    op = rng.choice(("swap", "drop", "double"))
    if op == "swap":
        w = w[: j - 1] + w[j] + w[j - 1] + w[j + 1 :]
    elif op == "drop":
        w = w[:j] + w[j + 1 :]
    else:
        w = w[:j] + w[j] + w[j:]
    words[i] = w
    return " ".join(words)


def _lower_first(q: str) -> str:
    return q[:1].lower() + q[1:] if q[:2] != q[:2].upper() else q


def variants(q: str, rng: random.Random, typo_rate: float) -> list[tuple[str, str]]:
    q = q.strip().rstrip("?.!")
    low = _lower_first(q)
    out = [("base", q)]
    for kind, templates in (("polite", POLITE), ("casual", CASUAL), ("urgent", URGENT)):
        text = rng.choice(templates).format(q=low)
        if kind == "casual":
            text = text.lower()
        if rng.random() < typo_rate:
            text = typo(text, rng)
        out.append((kind, text))
    out.append(("typo", typo(low, rng)))
    return out


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def counter_label(text: str, owner: str, manifests: Sequence[AgentManifest]) -> str | None:
    """The agent (other than `owner`) whose examples share most words with a counter-example."""
    w = _words(text)
    best, score = None, 0.0
    for m in manifests:
        if m.name == owner:
            continue
        s = max(len(w & _words(e)) / max(1, len(w | _words(e))) for e in m.when_to_use)
        if s > score:
            best, score = m.name, s
    return best if score > 0 else None


def generate(
    manifests: Sequence[AgentManifest], config: DataConfig | None = None, exclude: Iterable[str] = ()
) -> dict[str, list[RouterExample]]:
    """train / val / test examples; nothing whose normalised text is in `exclude` survives."""
    cfg = config or DataConfig()
    rng = random.Random(cfg.seed)
    manifests = [m for m in manifests if m.enabled]
    banned = {normalise(t) for t in exclude}
    by_label: dict[str, list[RouterExample]] = defaultdict(list)
    for m in manifests:
        for q in m.when_to_use:
            for kind, text in variants(q, rng, cfg.typo_rate):
                by_label[m.name].append(RouterExample(text, (m.name,), q, kind))
        for q in m.counter_examples:
            label = counter_label(q, m.name, manifests)
            if label:
                for kind, text in variants(q, rng, cfg.typo_rate)[:3]:
                    by_label[label].append(
                        RouterExample(text, (label,), q, "counter" if kind == "base" else kind)
                    )
    for name, seeds, kind in ((RESPOND, RESPOND_SEEDS, "respond"), (CLARIFY, CLARIFY_SEEDS, "clarify")):
        for q in seeds:
            by_label[name].append(RouterExample(q, (name,), q, kind))
            by_label[name].append(
                RouterExample(q.capitalize() + ("" if q.endswith(("?", "!")) else "."), (name,), q, kind)
            )
            by_label[name].append(RouterExample(typo(q, rng), (name,), q, kind))
    pairs = [(a, b) for a in manifests for b in manifests if a.name < b.name]
    multi = []
    for i in range(cfg.multi if pairs else 0):
        a, b = pairs[i % len(pairs)]
        qa, qb = rng.choice(a.when_to_use).rstrip("?.!"), rng.choice(b.when_to_use).rstrip("?.!")
        first, second = (a, b) if rng.random() < 0.5 else (b, a)
        qf, qs = (qa, qb) if first is a else (qb, qa)
        text = f"{qf}{rng.choice(JOIN)}{_lower_first(qs)}"
        multi.append(RouterExample(text, (first.name, second.name), f"{qf}|{qs}", "multi"))

    # Split by source so paraphrases of one seed never straddle train and test.
    splits: dict[str, list[RouterExample]] = {"train": [], "val": [], "test": []}
    for _label, items in sorted(by_label.items()):
        items = [
            e
            for e in dict.fromkeys(items)
            if normalise(e.text) not in banned and normalise(e.source) not in banned
        ]
        sources = sorted({e.source for e in items})
        rng.shuffle(sources)
        n_test = max(1, round(len(sources) * cfg.test_fraction)) if cfg.test_fraction else 0
        n_val = max(1, round(len(sources) * cfg.val_fraction)) if cfg.val_fraction else 0
        part = {s: "test" for s in sources[:n_test]} | {s: "val" for s in sources[n_test : n_test + n_val]}
        for split in splits:
            chosen = [e for e in items if part.get(e.source, "train") == split]
            if split == "train" and chosen:
                # Balance: every label gets per_label training examples (resampled if short).
                rng.shuffle(chosen)
                chosen = (chosen * (cfg.per_label // len(chosen) + 1))[: cfg.per_label]
            splits[split] += chosen
    multi = [e for e in multi if normalise(e.text) not in banned]
    n = len(multi)
    n_test, n_val = round(n * cfg.test_fraction), round(n * cfg.val_fraction)
    splits["test"] += multi[:n_test]
    splits["val"] += multi[n_test : n_test + n_val]
    splits["train"] += multi[n_test + n_val :]
    # A text that is held out (test first, then val) never also appears in a later split.
    held: set[str] = set()
    for split in ("test", "val", "train"):
        keys = [normalise(e.text) for e in splits[split]]
        if split == "train":
            out = [e for e, k in zip(splits[split], keys, strict=True) if k not in held]
        else:
            firsts = dict(zip(keys, splits[split], strict=True))  # de-duplicated within the split
            out = [e for k, e in firsts.items() if k not in held]
            held |= set(firsts)
        rng.shuffle(out)
        splits[split] = out
    return splits


def save(splits: dict[str, list[RouterExample]], out_dir: str | Path) -> dict[str, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, items in splits.items():
        p = out / f"{split}.jsonl"
        p.write_text(
            "".join(json.dumps(asdict(e) | {"label": e.label}) + "\n" for e in items), encoding="utf-8"
        )
        paths[split] = p
    return paths


# --- feedback from the sidebar (docs/learning_loop.md) ----------------------------------------
MAX_FEEDBACK_BYTES = 50_000_000


def _feedback_rows(path: Path) -> list[dict]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such feedback file")
    if path.stat().st_size > MAX_FEEDBACK_BYTES:
        raise ValueError(f"{path}: larger than {MAX_FEEDBACK_BYTES} bytes")
    raw = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        return list(csv.DictReader(raw.splitlines()))
    rows = []
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{n}: not a JSON line ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{n}: expected an object with text and label")
        rows.append(row)
    return rows


def load_feedback(
    path: str | Path, manifests: Sequence[AgentManifest], *, pseudo: bool = True
) -> tuple[list[RouterExample], Counter[str]]:
    """Examples from an `export-routing-feedback` file (.jsonl or .csv), and why rows were skipped
    (`unlabelled`, `no text`, `unknown label <x>`, ...). Labels are agent names joined with '+',
    or respond / clarify on their own; agents must be enabled in `manifests`."""
    path = Path(path)
    agents = {m.name for m in manifests if m.enabled}
    out: list[RouterExample] = []
    skipped: Counter[str] = Counter()
    for row in _feedback_rows(path):
        text = str(row.get("text") or "").strip()
        label = str(row.get("label") or "").strip()
        if not text:
            skipped["no text"] += 1
            continue
        if not label:
            skipped["unlabelled"] += 1
            continue
        names = list(dict.fromkeys(p.strip() for p in label.split("+") if p.strip()))
        calls = [label_from_wire(n) for n in names]  # the export speaks the protocol's labels
        bad = [n for n, c in zip(names, calls, strict=True) if c not in agents and c not in ACTION_OF]
        if bad:
            skipped[f"unknown label {bad[0]!r}"] += 1
            continue
        if any(c in (RESPOND, CLARIFY) for c in calls) and (len(calls) > 1 or not pseudo):
            skipped[f"label {label!r} not usable" + ("" if pseudo else " without pseudo-functions")] += 1
            continue
        out.append(RouterExample(text, tuple(calls), text, "feedback"))
    return out, skipped


def feedback_examples(
    path: str | Path, manifests: Sequence[AgentManifest], *, pseudo: bool = True
) -> list[RouterExample]:
    """`load_feedback`, reporting skipped rows in the log (unknown labels are skipped, not fatal:
    an agent renamed or disabled since the feedback was given must not stop a training run)."""
    examples, skipped = load_feedback(path, manifests, pseudo=pseudo)
    for why, n in sorted(skipped.items()):
        log.warning("%s: skipped %d feedback row%s: %s", path, n, "s" if n != 1 else "", why)
    return examples


def fold_feedback(
    splits: dict[str, list[RouterExample]], feedback: Sequence[RouterExample], *, weight: int = 3
) -> dict[str, list[RouterExample]]:
    """Feedback goes to train, each example `weight` times (a handful of real corrections must
    count against hundreds of generated ones). A generated example with the same text is dropped
    from every split: the person's label wins, and val/test never hold a training text."""
    if weight < 1:
        raise ValueError("weight must be at least 1")
    keys = {normalise(e.text) for e in feedback}
    out = {name: [e for e in items if normalise(e.text) not in keys] for name, items in splits.items()}
    unique = list(dict.fromkeys(feedback))
    out["train"] = [*out.get("train", []), *(e for e in unique for _ in range(weight))]
    return out
