"""The question-language check that sends German questions to the German articles first."""

import pytest

from agents.language import detect_language


@pytest.mark.parametrize(
    "text",
    [
        "wie lange hat ein kunde zeit, ware zurückzuschicken?",
        "kd aus zürich will was zurückgeben, wer trägt das porto?",
        "was kostet normaler versand nach österreich?",
        "die rückgabe",
    ],
)
def test_german_questions(text):
    assert detect_language(text) == "de"


@pytest.mark.parametrize(
    "text",
    [
        "how long is the return window",
        "customer in münchen wants a refund, how long does it take",
        "is the lumo kit in stock",
        "",
    ],
)
def test_english_questions_even_with_german_place_names(text):
    assert detect_language(text) == "en"
