"""The ``use_words`` setting: a local model is nudged to work given words in, each once."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from assistant.keywords import content_words, uses_words  # noqa: E402
from assistant.templates.library import TemplateLibrary  # noqa: E402
from backends.gpt2 import BUNDLED_MODEL_DIR  # noqa: E402
from backends.settings import GenerationParams  # noqa: E402
from backends.steering import steering_kwargs  # noqa: E402
from backends.word_use import WordUseProcessor  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(BUNDLED_MODEL_DIR))


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _scores(tokenizer):
    return torch.zeros(1, len(tokenizer))


def test_a_begun_word_is_finished(tokenizer) -> None:
    word = _ids(tokenizer, " lantern")
    assert len(word) > 1, "the test needs a word of several tokens"
    prompt = _ids(tokenizer, "Poem: home\n\nThe")
    processor = WordUseProcessor(tokenizer, ["lantern"])
    processor(torch.tensor([prompt]), _scores(tokenizer))
    scores = processor(torch.tensor([prompt + word[:1]]), _scores(tokenizer))
    assert int(scores[0].argmax()) == word[1]


def test_the_first_token_is_favoured_more_as_writing_goes_on(tokenizer) -> None:
    first = _ids(tokenizer, " kitchen")[0]
    prompt = _ids(tokenizer, "Poem: home\n\nThe")
    processor = WordUseProcessor(tokenizer, ["kitchen"])
    early = processor(torch.tensor([prompt]), _scores(tokenizer))[0, first]
    later_ids = prompt + _ids(tokenizer, " old door was open and the light came in")
    later = processor(torch.tensor([later_ids]), _scores(tokenizer))[0, first]
    assert 0 < early < later


def test_a_word_already_written_is_left_alone_and_the_prompt_does_not_count(tokenizer) -> None:
    prompt = _ids(tokenizer, "Keywords: kitchen\n\nThe")
    processor = WordUseProcessor(tokenizer, ["kitchen"])
    first = processor(torch.tensor([prompt]), _scores(tokenizer))
    assert first.abs().sum() > 0  # in the prompt is not written
    written = prompt + _ids(tokenizer, " kitchens were warm")
    scores = processor(torch.tensor([written]), _scores(tokenizer))
    assert scores.abs().sum() == 0


def test_at_a_line_start_the_word_is_begun_without_a_space(tokenizer) -> None:
    prompt = _ids(tokenizer, "Poem: home\n\nA line\n")
    processor = WordUseProcessor(tokenizer, ["kitchen"])
    scores = processor(torch.tensor([prompt]), _scores(tokenizer))
    assert scores[0, _ids(tokenizer, "Kitchen")[0]] > 0
    assert scores[0, _ids(tokenizer, " kitchen")[0]] == 0


def test_steering_adds_the_processor_only_when_asked(tokenizer) -> None:
    assert steering_kwargs(tokenizer, GenerationParams()) == {}
    kwargs = steering_kwargs(tokenizer, GenerationParams(use_words=("kitchen",)))
    assert any(isinstance(p, WordUseProcessor) for p in kwargs["logits_processor"])


def test_the_poem_template_asks_for_its_keywords() -> None:
    poem = TemplateLibrary().get("poem")
    resolved = poem.resolve({"topic": "my grandmother's kitchen", "form": "haiku"})
    assert poem.settings_for(resolved)["use_words"] == ("grandmother", "kitchen")
    slogan = TemplateLibrary().get("slogan")
    assert slogan.settings_for(slogan.resolve({"product": "a bicycle bell"}))["use_words"] == ("bicycle", "bell")


def test_the_bundled_model_works_the_words_in() -> None:
    from assistant import Assistant

    assistant = Assistant(backend="local")
    try:
        text = assistant.run("poem", {"seed": 3, "max_new_tokens": 60}, topic="a lantern in the rain").texts[0]
    finally:
        assistant.close()
    assert uses_words(text, content_words("a lantern in the rain")) == 1.0, text


def test_a_word_just_written_is_not_run_on_into_another(tokenizer) -> None:
    prompt = _ids(tokenizer, "Sayings about a lantern:\n-")
    processor = WordUseProcessor(tokenizer, ["lantern"])
    processor(torch.tensor([prompt]), _scores(tokenizer))
    scores = processor(torch.tensor([prompt + _ids(tokenizer, " A lantern")]), _scores(tokenizer))
    assert scores[0, _ids(tokenizer, "ara")[0]] < 0  # no "lanternara"
    assert scores[0, _ids(tokenizer, " and")[0]] == 0
    # A word the model made its own ("lanterns", "lanternlight") is not asked for again.
    later = processor(torch.tensor([prompt + _ids(tokenizer, " A lanternlight and")]), _scores(tokenizer))
    assert later.abs().sum() == 0
