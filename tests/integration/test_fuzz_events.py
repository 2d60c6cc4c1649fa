"""A CI-sized run of the security suite's fuzzer (the full 10,000 cases run in `make security`)."""

import pytest

from bench.security_suite import fuzz_events

pytestmark = pytest.mark.integration


def test_fuzzed_events_never_cause_a_server_error_or_a_lost_connection(live_app, tokens):
    server = live_app(settings={"rate_limit_per_minute": 0})
    result = fuzz_events(server.url, tokens.mint("fuzz", "fuzzer"), cases=150)
    assert result["cases"] == 150
    assert (result["internal_errors"], result["disconnects"], result["no_answer"]) == (0, 0, 0), result
    assert result["healthy"]
    assert result["codes"].get("invalid_payload", 0) > 50  # the fuzzer does reach validation
