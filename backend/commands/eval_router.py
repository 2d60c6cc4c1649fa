"""`sidebar-assistant eval-router`: evaluate a router on any labelled file."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

import click


@click.command("eval-router")
@click.option(
    "--router",
    "router_name",
    type=click.Choice(
        ["keyword", "semantic", "semantic-head", "semantic-ft", "functiongemma", "gemini", "cascade"]
    ),
    default="semantic",
    show_default=True,
    help="gemini/cascade call the LLM of LLM_BACKEND (offline: the controller is unavailable, so gemini "
    "fails every example and cascade keeps its local decision).",
)
@click.option(
    "--adapter",
    "adapter_path",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="functiongemma (or cascade with --local functiongemma): LoRA adapter directory "
    "(default: FUNCTIONGEMMA_ADAPTER).",
)
@click.option(
    "--local",
    "cascade_local",
    type=click.Choice(["keyword", "semantic", "semantic-head", "functiongemma"]),
    default=None,
    help="cascade: the local router (default: CASCADE_LOCAL).",
)
@click.option(
    "--local-threshold",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="cascade: local confidence threshold (default: CASCADE_LOCAL_THRESHOLD).",
)
@click.option(
    "--remote-threshold",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="cascade: remote confidence threshold (default: CASCADE_REMOTE_THRESHOLD).",
)
@click.option(
    "--data",
    "data_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Labelled test file: CSV text,label (or text,category), JSON or JSONL.",
)
@click.option(
    "--train",
    "train_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Build one route per label from this file's examples; otherwise labels must be agent names.",
)
@click.option(
    "--manifests",
    "manifests_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Routes from this YAML file of agent manifests (a benchmark suite, e.g. "
    "bench/routing/seed_ecommerce/manifests.yaml) instead of the agent registry.",
)
@click.option(
    "--examples-per-route",
    type=click.IntRange(1, 10_000),
    default=None,
    help="With --train: examples per route (default: all).",
)
@click.option(
    "--out-of-scope",
    "oos_labels",
    multiple=True,
    help="Label of examples that must not be routed to an agent (repeatable, e.g. respond_directly and "
    "ask_clarifying_question); adds an out-of-scope sweep. Labels joining agents with + are multi-agent "
    "questions: the top route may be any of them.",
)
@click.option("--name", default=None, help="Report name (default: router_<router>_<data file stem>).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench/results"),
    show_default=True,
)
def eval_router(
    router_name: str,
    adapter_path: Path | None,
    cascade_local: str | None,
    local_threshold: float | None,
    remote_threshold: float | None,
    data_path: Path,
    train_path: Path | None,
    manifests_path: Path | None,
    examples_per_route: int | None,
    oos_labels: tuple[str, ...],
    name: str | None,
    out_dir: Path,
) -> None:
    """Accuracy, macro-F1, per-route accuracy, confusion matrix (PNG), latency, and the
    confidence-threshold sweep (coverage PNG) cascade thresholds are chosen from; JSON + Markdown."""
    from agents.registry import AgentRegistry, load_manifest_list
    from orchestrator.routing.training.evaluation import (
        evaluate,
        load_labelled,
        manifests_from_examples,
        write_eval_report,
    )

    if train_path and manifests_path:
        raise click.UsageError("--train and --manifests are alternatives: pass one")
    try:
        test = load_labelled(data_path)
        if train_path:
            manifests, label_of = manifests_from_examples(load_labelled(train_path), examples_per_route)
        else:
            manifests = load_manifest_list(manifests_path) if manifests_path else AgentRegistry().manifests()
            label_of = {m.name: m.name for m in manifests}
            parts = {p for e in test if e.label not in oos_labels for p in e.label.split("+")}
            unknown = sorted(parts - set(label_of))
            if unknown:
                raise click.BadParameter(
                    f"labels that are not agents: {unknown[:5]} (pass --train to build routes, or --out-of-scope "
                    "for labels such as respond_directly / ask_clarifying_question)",
                    param_hint="--data",
                )
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    if router_name == "semantic-ft" or (router_name == "semantic-head" and train_path):
        router = _head_router(router_name, manifests, bool(train_path))
    else:
        router = _build(
            router_name, manifests, adapter_path, cascade_local, local_threshold, remote_threshold
        )
    loadavg = [round(x, 2) for x in os.getloadavg()]
    with click.progressbar(length=1, label=f"routing {len(test)} examples with {router_name}") as bar:
        report = evaluate(
            router,
            test,
            manifests,
            dataset=data_path.stem,
            label_of=label_of,
            out_of_scope_label=list(oos_labels) or None,
        )
        bar.update(1)
    paths = write_eval_report(
        report, out_dir, name or f"router_{router_name}_{data_path.stem}", machine=_machine(loadavg)
    )
    click.echo(
        f"accuracy {report.accuracy:.1%}  macro-F1 {report.macro_f1:.3f}  p50 {report.latency_ms['p50']} ms  → {paths['md']}"
    )
    for rec in report.coverage.get("recommended", []):
        t = "none" if rec["threshold"] is None else f"{rec['threshold']:.2f}"
        click.echo(
            f"  ≥{rec['target_accuracy']:.0%} accurate when accepting confidence ≥ {t}: "
            f"{rec['accepted']:.1%} accepted, {rec['escalated']:.1%} escalated"
        )
    if report.router_stats:
        click.echo(f"  paths: {report.router_stats}")
    if report.router_failures:
        click.echo(f"  {report.router_failures['count']} examples failed to route (RoutingError)")


def _head_router(router_name: str, manifests: list, from_train: bool):
    """semantic-head / semantic-ft (fine-tuned MiniLM). With --train the head learns the training
    file's routes as sampled by --examples-per-route, and always picks a route (closed-set
    accuracy; the threshold sweep shows what clarifying would cost). Heads are cached under
    data/cache/router_heads (fine-tuning takes minutes)."""
    from orchestrator.routing.head import SemanticHeadRouter
    from orchestrator.routing.head_model import HeadConfig, SemanticHeadRouterConfig
    from vertex_interface.local_embedder import LocalEmbedder

    embedder = LocalEmbedder()

    def embed(texts: list[str]):
        return embedder.embed(texts, task_type="SEMANTIC_SIMILARITY")

    kind = "finetune" if router_name == "semantic-ft" else "linear"
    extra = {"clarify_threshold": 0.0} if from_train else {}
    config = SemanticHeadRouterConfig(
        head=HeadConfig(kind=kind), cache_dir=Path("data/cache/router_heads"), **extra
    )
    examples = [(t, m.name) for m in manifests for t in m.when_to_use] if from_train else None
    router = SemanticHeadRouter(embed, manifests, config, examples=examples)
    click.echo(f"training the {router_name} head on {len(router.examples)} examples…", err=True)
    router.warm_up()
    return router


def _machine(loadavg: list[float]) -> dict:
    """Latencies mean little without the machine (and how busy it was) they were taken on."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        names = [x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("model name")]
        cpu = names[0].split(":", 1)[1].strip() if names else cpu
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "loadavg_at_start": loadavg,
    }


def _build(
    router_name: str,
    manifests: list,
    adapter_path: Path | None,
    cascade_local: str | None,
    local_threshold: float | None,
    remote_threshold: float | None,
):
    """The router through the same factory and settings the app uses; flags override settings."""
    from backend.settings import Settings
    from orchestrator.routing.factory import RouterUnavailable, build_router

    update: dict = {"router": router_name}
    if cascade_local:
        update["cascade_local"] = cascade_local
    if local_threshold is not None:
        update["cascade_local_threshold"] = local_threshold
    if remote_threshold is not None:
        update["cascade_remote_threshold"] = remote_threshold
    if adapter_path is not None:
        update["functiongemma_adapter"] = adapter_path
    # Flags win over the environment and are validated like it (an adapter dir must hold one, …).
    try:
        settings = Settings(**update)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    local = settings.cascade_local if router_name == "cascade" else router_name
    embed = llm = None
    if router_name in ("gemini", "cascade") or local in ("semantic", "semantic-head"):
        from backend.assistant import build_llm

        llm, embedder = build_llm(settings)

        def embed(texts: list[str]):
            return embedder.embed(texts, task_type="SEMANTIC_SIMILARITY")

    from backend.assistant import router_config

    try:
        return build_router(router_name, manifests, embed=embed, llm=llm, config=router_config(settings))
    except RouterUnavailable as exc:
        raise click.ClickException(str(exc)) from None
