"""`sidebar-assistant eval-router`: evaluate a router on any labelled file."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("eval-router")
@click.option(
    "--router",
    "router_name",
    type=click.Choice(["keyword", "semantic"]),
    default="semantic",
    show_default=True,
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
    "--examples-per-route",
    type=click.IntRange(1, 10_000),
    default=None,
    help="With --train: examples per route (default: all).",
)
@click.option(
    "--out-of-scope",
    "oos_label",
    default=None,
    help="Label that marks out-of-scope examples (adds a threshold sweep).",
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
    data_path: Path,
    train_path: Path | None,
    examples_per_route: int | None,
    oos_label: str | None,
    name: str | None,
    out_dir: Path,
) -> None:
    """Accuracy, macro-F1, per-route accuracy, confusion matrix (PNG), latency; JSON + Markdown report."""
    from agents.registry import AgentRegistry
    from orchestrator.routing.evaluation import (
        evaluate,
        load_labelled,
        manifests_from_examples,
        write_eval_report,
    )
    from orchestrator.routing.keyword import KeywordRouter
    from orchestrator.routing.semantic import SemanticRouter

    try:
        test = load_labelled(data_path)
        if train_path:
            manifests, label_of = manifests_from_examples(load_labelled(train_path), examples_per_route)
        else:
            manifests = AgentRegistry().manifests()
            label_of = {m.name: m.name for m in manifests}
            unknown = sorted({e.label for e in test} - set(label_of) - {oos_label})
            if unknown:
                raise click.BadParameter(
                    f"labels that are not agents: {unknown[:5]} (pass --train to build routes)",
                    param_hint="--data",
                )
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    if router_name == "keyword":
        router = KeywordRouter(manifests)
    else:
        from vertex_interface.local_embedder import LocalEmbedder

        embedder = LocalEmbedder()
        router = SemanticRouter(lambda t: embedder.embed(t, task_type="SEMANTIC_SIMILARITY"), manifests)
    with click.progressbar(length=1, label=f"routing {len(test)} examples with {router_name}") as bar:
        report = evaluate(
            router, test, manifests, dataset=data_path.stem, label_of=label_of, out_of_scope_label=oos_label
        )
        bar.update(1)
    paths = write_eval_report(report, out_dir, name or f"router_{router_name}_{data_path.stem}")
    click.echo(
        f"accuracy {report.accuracy:.1%}  macro-F1 {report.macro_f1:.3f}  p50 {report.latency_ms['p50']} ms  → {paths['md']}"
    )
