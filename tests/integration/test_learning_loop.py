"""The learning loop's offline half over a real server and archive: flag → export → label."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from backend import protocol
from backend.cli import cli
from backend.learning import export_feedback, format_for, parse_since, routing_label, write_examples
from orchestrator.routing.training.evaluation import load_labelled
from store.sessions import SqliteSessionArchive
from testkit.client import SidebarClient

pytestmark = pytest.mark.integration


def flag(client: SidebarClient, message_id: str, **extra) -> None:
    start = len(client.events)
    client.emit(protocol.FEEDBACK, {"message_id": message_id, "rating": "down", **extra})
    client.wait_for(protocol.FEEDBACK_ACK, lambda d: d["message_id"] == message_id, start=start)


@pytest.fixture
def flagged_archive(live_app, tokens, settings) -> Path:
    """Two users' sessions on a real server: turns flagged with and without sources, others not."""
    server = live_app()
    for user, ticket in (("alice", 1001), ("bob", 1002)):
        c = SidebarClient()
        c.connect(server.url, tokens.mint("acme" if user == "alice" else "globex", user, user.title()))
        c.join({"id": ticket, "subject": "Where is my parcel"})
        c.ask("q1", f"{user}: where is order BO-100234")
        c.ask("q2", f"{user}: thanks")
        c.ask("q3", f"{user}: what does the return policy say")
        flag(c, "q1.reply", reasons=["wrong_sources"], expected_agents=["order_lookup", "knowledge_base"])
        flag(c, "q2.reply", reasons=["incorrect"])  # not a routing complaint: not exported
        flag(c, "q3.reply", reasons=["wrong_sources"], comment="secret comment stays out")
        c.disconnect()
    return settings.sqlite_path


def run_cli(settings, *args: str):
    env = {"DATA_DIR": str(settings.data_dir), "ARCHIVE_BACKEND": "sqlite"}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_export_writes_labelled_and_unlabelled_examples(flagged_archive, settings, tmp_path):
    out, todo = tmp_path / "feedback.jsonl", tmp_path / "to_label.jsonl"
    result = run_cli(settings, "export-routing-feedback", "--out", str(out), "--unlabelled", str(todo))
    assert result.exit_code == 0, result.output
    assert "2 labelled examples" in result.output and "2 to label" in result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["text"] for r in rows} == {"alice: where is order BO-100234", "bob: where is order BO-100234"}
    row = rows[0]
    assert set(row) == {"text", "label", "routed", "router", "confidence", "session_id", "message_id", "ts"}
    assert row["label"] == "order_lookup+knowledge_base" and row["message_id"] == "q1.reply"
    # What the (echo) handler's router chose, from the reply's stored routing meta.
    assert (row["routed"], row["router"]) == ("respond", "test")
    assert row["ts"].endswith("Z")
    todo_rows = [json.loads(line) for line in todo.read_text().splitlines()]
    assert [r["label"] for r in todo_rows] == ["", ""] and all(
        "return policy" in r["text"] for r in todo_rows
    )
    assert "secret comment" not in out.read_text() + todo.read_text()
    # The labelled file is a valid eval-router / training file as it stands.
    assert [e.label for e in load_labelled(out)] == ["order_lookup+knowledge_base"] * 2
    # Once a person fills in the labels, the to-label file is one too.
    labelled = [
        dict(r, label=label) for r, label in zip(todo_rows, ["knowledge_base", "respond"], strict=True)
    ]
    todo.write_text("".join(json.dumps(r) + "\n" for r in labelled))
    assert len(load_labelled(todo)) == 2
    for data in (out, todo):  # and eval-router scores both (respond/clarify as not-routed labels)
        result = run_cli(
            settings,
            "eval-router",
            "--router",
            "keyword",
            "--data",
            str(data),
            "--out-of-scope",
            "respond",
            "--out-of-scope",
            "clarify",
            "--out",
            str(tmp_path / "eval"),
        )
        assert result.exit_code == 0, result.output
        report = json.loads((tmp_path / "eval" / f"router_keyword_{data.stem}.json").read_text())
        assert report["decisions"]["n"] == 2
    # The pseudo-label is scored by the router's action, not as an agent name.
    assert set(report["decisions"]["by_kind"]) == {"single", "respond"}


def test_export_filters_by_tenant_and_since_and_writes_csv(flagged_archive, settings, tmp_path):
    out = tmp_path / "acme.csv"
    result = run_cli(settings, "export-routing-feedback", "--out", str(out), "--tenant", "acme")
    assert result.exit_code == 0, result.output
    assert "1 flagged without sources not written (pass --unlabelled FILE)" in result.output
    (example,) = load_labelled(out)
    assert example.text.startswith("alice:") and example.label == "order_lookup+knowledge_base"
    assert out.read_text().splitlines()[0] == "text,label,routed,router,confidence,session_id,message_id,ts"
    future = tmp_path / "none.jsonl"
    result = run_cli(settings, "export-routing-feedback", "--out", str(future), "--since", "2999-01-01")
    assert result.exit_code == 0 and future.read_text() == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "x.txt"], "name it .jsonl or .csv"),
        (["--out", "x.jsonl", "--format", "csv"], "needs a .csv file name"),
        (["--out", "x.jsonl", "--since", "last tuesday"], "not an ISO 8601 date"),
        (["--out", "x.jsonl", "--unlabelled", "x.jsonl"], "different file"),
    ],
)
def test_export_refuses_bad_arguments_clearly(settings, tmp_path, args, message):
    SqliteSessionArchive(settings.sqlite_path).close()
    args = [str(tmp_path / a) if a.endswith((".txt", ".jsonl")) else a for a in args]
    result = CliRunner().invoke(
        cli, ["export-routing-feedback", *args], env={"DATA_DIR": str(settings.data_dir)}
    )
    assert result.exit_code == 2 and message in result.output


def test_export_without_an_archive_says_where_it_looked(tmp_path):
    result = CliRunner().invoke(
        cli,
        ["export-routing-feedback", "--out", str(tmp_path / "f.jsonl")],
        env={"DATA_DIR": str(tmp_path / "nowhere"), "ARCHIVE_BACKEND": "sqlite"},
    )
    assert result.exit_code == 1 and "no session archive at" in result.output
    assert not (tmp_path / "nowhere").exists()  # nothing created


def test_export_reports_progress_and_skips_unreadable_sessions(tmp_path, monkeypatch):
    import backend.learning as learning
    from backend.sessions import Session, ThreadMessage

    archive = SqliteSessionArchive(tmp_path / "a.sqlite3")
    for i in range(5):
        s = Session(id=f"s{i}", tenant="t", user_id="u", ticket_id=str(i))
        s.thread = [
            ThreadMessage(id="m", role="user", text=f"question {i}"),
            ThreadMessage(
                id="m.reply",
                role="assistant",
                reply_to="m",
                meta={
                    "routing": {
                        "action": "route",
                        "router": "semantic",
                        "confidence": 0.4,
                        "stages": [[{"agent": "macros"}]],
                    }
                },  # archived before `routes`
            ),
        ]
        s.feedback = [
            {
                "message_id": "m.reply",
                "rating": "down",
                "reasons": ["wrong_sources"],
                "expected_agents": ["respond"],
                "at": 1_700_000_000 + i,
            }
        ]
        archive.save(s.to_record())
    bad = Session(id="s9", tenant="t", user_id="u", ticket_id="9").to_record()
    archive.save(type(bad)(**{**bad.__dict__, "data": {"id": "s9", "thread": "not a list"}}))
    monkeypatch.setattr(learning, "PROGRESS_EVERY", 2)
    seen: list[tuple[int, int]] = []
    result = export_feedback(archive, progress=lambda stats, n: seen.append((stats.sessions, n)))
    assert [e.text for e in result.labelled] == [f"question {i}" for i in range(5)]
    assert {(e.label, e.routed, e.confidence) for e in result.labelled} == {("respond", "macros", 0.4)}
    assert result.stats.sessions == 6 and result.stats.unreadable == 1
    assert seen and seen[0][0] == 2
    path = tmp_path / "f.csv"
    assert write_examples(result.labelled, path, format_for(path, None)) == 5
    assert [e.label for e in load_labelled(path)] == ["respond"] * 5


def test_routing_label_and_since_parsing():
    assert routing_label({"action": "clarify", "routes": []}) == "clarify"
    assert routing_label({"action": "route", "routes": ["a_b", "c_d"]}) == "a_b+c_d"
    assert routing_label(None) == ""
    assert parse_since("1970-01-02") == 86400.0
    assert parse_since("1970-01-01T01:00:00+01:00") == 0.0
    assert parse_since(None) is None


SHADOW_TURNS = [
    ("where is order BO-100234", ["order_lookup"]),
    ("thanks!", ["respond"]),
    ("my parcel is late and I want a refund", ["order_lookup", "knowledge_base"]),
    ("is there a macro for late delivery", None),
    ("do you sell teak benches", None),
]


def test_shadow_mode_end_to_end_reply_meta_metrics_and_report(
    live_app, tokens, settings, local_llm, embedder, tmp_path
):
    import requests

    from agents.base import ToolSpec
    from agents.registry import AgentRegistry
    from orchestrator.orchestrator import Assistant
    from orchestrator.routing import RoutingContext, SemanticRouter
    from orchestrator.routing.keyword import KeywordRouter
    from orchestrator.routing.shadow import ShadowConfig, ShadowRouter, decision_key
    from testkit.agents import ScriptedAgent, ev

    lookup = [ToolSpec(name="lookup", description="look something up", retrieval=True)]
    manifests = [m.model_copy(update={"tools": lookup}) for m in AgentRegistry().manifests()]
    agents = [
        ScriptedAgent(m, evidence=[ev(f"article:{m.name}", m.title, f"{m.title} says yes.")])
        for m in manifests
    ]
    keyword = KeywordRouter(manifests)
    semantic = SemanticRouter(lambda t: embedder.embed(t, task_type="SEMANTIC_SIMILARITY"), manifests)
    # grace_s: the test must not race the candidate; production never waits (default 0).
    assistant = Assistant(
        agents, ShadowRouter(keyword, semantic, config=ShadowConfig(grace_s=5)), local_llm, None
    )
    server = live_app(handler=assistant)
    c = SidebarClient()
    c.connect(server.url, tokens.mint("acme", "alice", "Alice"))
    state = c.join({"id": 77, "subject": "Late parcel"})
    assert {a["name"] for a in state["agents"]} == {m.name for m in manifests}  # from the Assistant
    for i, (text, expected) in enumerate(SHADOW_TURNS):
        c.ask(f"q{i}", text, timeout=60)
        if expected:
            flag(c, f"q{i}.reply", reasons=["wrong_sources"], expected_agents=expected)
    c.disconnect()

    # What each router decides alone, computed independently of the shadow machinery.
    def label(d) -> set[str]:
        return set(d.agents) if d.action == "route" else {d.action}

    alone = [
        (keyword.route(RoutingContext(t, {}, manifests)), semantic.route(RoutingContext(t, {}, manifests)), e)
        for t, e in SHADOW_TURNS
    ]
    agree = sum(decision_key(k) == decision_key(s) for k, s, _ in alone)
    flagged = [(k, s, e) for k, s, e in alone if e]
    live_ok = sum(label(k) == set(e) for k, s, e in flagged)
    cand_ok = sum(label(s) == set(e) for k, s, e in flagged)
    assert 0 < agree < len(SHADOW_TURNS) and cand_ok > live_ok  # the data exercise both sides

    session = server.services.store.get(state["session_id"])
    meta = session.reply_to("q0").meta
    assert meta.shadow["router"] == "semantic" and meta.shadow["status"] == "ok"
    assert "shadow" not in meta.routing and meta.routing["router"] == "keyword"
    assert "shadow" not in session.routing_history[0]

    metrics = requests.get(server.url + "/metrics", timeout=5).text
    agree_line = 'sidebar_shadow_decisions_total{candidate="semantic",live="keyword",outcome="agree"}'
    assert f"{agree_line} {float(agree)}" in metrics

    out = tmp_path / "reports"
    result = run_cli(settings, "shadow-report", "--out", str(out), "--name", "shadow_test")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "shadow_test.json").read_text())
    (pair,) = report["pairs"]
    assert (pair["live"], pair["candidate"], pair["turns"], pair["answered"]) == ("keyword", "semantic", 5, 5)
    assert pair["agreement"] == round(agree / 5, 4)
    assert pair["flagged"] == {
        "n": len(flagged),
        "live_accuracy": round(live_ok / len(flagged), 4),
        "candidate_accuracy": round(cand_ok / len(flagged), 4),
    }
    assert "keyword vs semantic: 5 turns" in result.output
    md = (out / "shadow_test.md").read_text()
    assert "| keyword | semantic | 5 | 5 (0) |" in md
    assert not any(t in md for t, _ in SHADOW_TURNS)  # label pairs only, never question text


def test_a_candidate_slower_than_its_turn_is_stored_late(live_app, tokens, settings, local_llm, tmp_path):
    import threading

    from agents.base import ToolSpec
    from agents.registry import AgentRegistry
    from backend.turns import record_late_shadow
    from orchestrator.orchestrator import Assistant
    from orchestrator.routing import RoutingDecision
    from orchestrator.routing.keyword import KeywordRouter
    from orchestrator.routing.shadow import ShadowRouter
    from testkit.agents import ScriptedAgent

    release = threading.Event()

    class Slow:
        name = "slow"

        def route(self, ctx):
            release.wait(30)
            return RoutingDecision(action="respond", response="hi")

    lookup = [ToolSpec(name="lookup", description="look something up", retrieval=True)]
    manifests = [m.model_copy(update={"tools": lookup}) for m in AgentRegistry().manifests()]
    # Whoever builds the router passes the hook (create_app does, for the router it builds): here
    # it stores into the session store of the server the handler is given to.
    stores = []
    shadow = ShadowRouter(
        KeywordRouter(manifests), Slow(), on_late=lambda *late: record_late_shadow(stores[0], *late)
    )
    assistant = Assistant([ScriptedAgent(m) for m in manifests], shadow, local_llm, None)
    server = live_app(handler=assistant)
    stores.append(server.services.store)
    c = SidebarClient()
    c.connect(server.url, tokens.mint("acme", "alice", "Alice"))
    state = c.join({"id": 88})
    done = c.ask("q1", "thanks!")
    assert done["message"]["meta"]["shadow"]["status"] == "pending"  # the turn did not wait
    release.set()
    archive = server.services.archive
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        shadow = archive.load(state["session_id"]).data["thread"][1]["meta"]["shadow"]
        if shadow["status"] != "pending":
            break
        time.sleep(0.1)
    assert shadow["status"] == "ok" and shadow["late"] is True and shadow["action"] == "respond"
    c.disconnect()
    result = run_cli(settings, "shadow-report", "--out", str(tmp_path), "--name", "late")
    (pair,) = json.loads((tmp_path / "late.json").read_text())["pairs"]
    assert (pair["turns"], pair["answered"], pair["late"], pair["pending"]) == (1, 1, 1, 0), result.output
