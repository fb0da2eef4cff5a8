"""The ``real_words`` setting: a local model writes only words the CMU dictionary knows."""

from __future__ import annotations

import re
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from assistant.forms.sounds import is_known, words_of  # noqa: E402
from assistant.templates.library import TemplateLibrary  # noqa: E402
from backends.base import GenerationParams, GenerationRequest  # noqa: E402
from backends.gpt2 import BUNDLED_MODEL_DIR, GPT2Backend  # noqa: E402
from backends.real_words import Lexicon, RealWordsProcessor, lexicon  # noqa: E402
from backends.settings import SETTING  # noqa: E402
from backends.steering import steering_kwargs  # noqa: E402
from tests.support.streams import run  # noqa: E402

PROMPT = "Poem: a lantern in the rain\nForm: free verse\n\n"
SEEDS = (1, 2)
_UNFINISHED = re.compile(r"[A-Za-z'’]+$")


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(BUNDLED_MODEL_DIR))


def _ids(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _token(tokenizer: Any, text: str) -> int:
    ids = _ids(tokenizer, text)
    assert len(ids) == 1, f"the test needs {text!r} to be one token"
    return ids[0]


async def _write(prompt: str, *, real_words: bool, seed: int, n: int = 4, tokens: int = 40) -> list[str]:
    backend = GPT2Backend("local", model="bundled")
    params = GenerationParams(
        temperature=1.0, max_new_tokens=tokens, num_alternatives=n, seed=seed, real_words=real_words
    )
    _, result = await run(backend, GenerationRequest.completion(prompt, params))
    assert not result.error, result.error
    return list(result.texts)


def _invented(texts: list[str]) -> list[str]:
    """The words no dictionary knows, in texts cut wherever writing stopped (a word cut off by
    the token limit is left out: it was never finished)."""
    return [word for text in texts for word in words_of(_UNFINISHED.sub("", text)) if not is_known(word)]


async def test_the_bundled_model_writes_only_real_words_with_it_and_invents_some_without() -> None:
    with_it: list[str] = []
    without: list[str] = []
    for seed in SEEDS:
        with_it += await _write(PROMPT, real_words=True, seed=seed)
        without += await _write(PROMPT, real_words=False, seed=seed)
    assert sum(len(words_of(text)) for text in with_it) > 100, with_it  # it still writes
    assert _invented(with_it) == [], with_it
    assert _invented(without), "the bundled model invented no word, so this test could not fail"


async def test_one_alternative_at_a_time_keeps_to_real_words_too() -> None:
    # n=1 goes through the batched decoding loop rather than generate().
    texts = [text for seed in SEEDS for text in await _write(PROMPT, real_words=True, seed=seed, n=1)]
    assert _invented(texts) == [], texts


async def test_a_word_begun_in_the_prompt_is_finished_as_a_real_word() -> None:
    prompt = "Poem: home\nForm: free verse\n\nThe light in the kitc"
    for seed in SEEDS:
        for text in await _write(prompt, real_words=True, seed=seed, tokens=6):
            rest = _UNFINISHED.sub("", text)
            first = re.match(r"[A-Za-z'’]*", rest)
            assert first is not None and len(rest) > len(first.group()), text  # the word ended
            word = "kitc" + first.group()
            assert is_known(word), text


def test_a_token_that_would_make_a_non_word_is_forbidden(tokenizer: Any) -> None:
    processor = RealWordsProcessor(tokenizer)
    row = _ids(tokenizer, "The cat chop")
    assert processor.word_under_way(row) == "chop"
    scores = torch.zeros(1, len(tokenizer))
    chosen = [" and", "ped", "ied", ".", "s"]
    for rank, text in enumerate(chosen):
        scores[0, _token(tokenizer, text)] = 10.0 - rank
    out = processor(torch.tensor([row]), scores)
    allowed = {text for text in chosen if out[0, _token(tokenizer, text)] > float("-inf")}
    # "chop and", "chopped", "chop." and "chops" are words; "chopied" is not.
    assert allowed == {" and", "ped", ".", "s"}
    assert torch.isfinite(out[0]).sum() <= 50  # only the likeliest few are considered


def _batch(tokenizer: Any, *texts: str) -> Any:
    """The texts' tokens as rows of one batch, left-padded with end-of-text as generate() pads them."""
    rows = [_ids(tokenizer, text) for text in texts]
    width = max(map(len, rows))
    return torch.tensor([[tokenizer.eos_token_id] * (width - len(row)) + row for row in rows])


def test_rows_are_judged_each_on_its_own(tokenizer: Any) -> None:
    processor = RealWordsProcessor(tokenizer)
    batch = _batch(tokenizer, "The cat chop", "The dog ran")
    scores = torch.zeros(2, len(tokenizer))
    ied, ped = _token(tokenizer, "ied"), _token(tokenizer, "ped")
    scores[:, [ied, ped]] = torch.tensor([5.0, 4.0])
    out = processor(batch, scores.clone())
    assert out[0, ied] == float("-inf") and out[0, ped] == 4.0  # "chopped", not "chopied"
    assert out[1, ied] == float("-inf") and out[1, ped] == float("-inf")  # neither "ranied" nor "ranped"


def test_a_row_is_never_left_without_a_token(tokenizer: Any) -> None:
    # A dictionary of one word: after "The lan" almost nothing the model likes can finish it.
    rows = torch.tensor([_ids(tokenizer, "The lan")] * 2)
    scores = torch.randn(2, len(tokenizer), generator=torch.Generator().manual_seed(0))
    tern = _token(tokenizer, "tern")
    scores[0, tern] = scores.max() + 1  # row 0 can go on to "lantern"
    # Row 1's likeliest 60 all end the word as "lan", which is no word; "tern" comes next.
    spaced = [tid for tid in range(len(tokenizer)) if tokenizer.decode([tid]).startswith(" ")][:60]
    scores[1] = -10.0
    scores[1, spaced] = 10.0
    scores[1, tern] = -5.0
    narrow = RealWordsProcessor(tokenizer, Lexicon(["lantern"]), wider_k=0)
    out = narrow(rows, scores.clone())
    assert torch.isfinite(out[0]).sum() >= 1 and out[0, tern] == scores[0, tern]
    assert torch.equal(out[1], scores[1])  # left alone rather than forced
    # Looking further down finds the way on for row 1 too.
    out = RealWordsProcessor(tokenizer, Lexicon(["lantern"]))(rows, scores.clone())
    assert out[1, tern] == -5.0 and all(out[1, tid] == float("-inf") for tid in spaced)
    # Every token banned: nothing to choose among, so the row is left as it was.
    banned = torch.full((1, len(tokenizer)), float("-inf"))
    assert torch.equal(RealWordsProcessor(tokenizer)(rows[:1], banned.clone()), banned)
    for seed in range(20):  # and whatever the scores, every row keeps a token
        noise = torch.randn(3, len(tokenizer), generator=torch.Generator().manual_seed(seed))
        ids = _batch(tokenizer, "A lan", "A cat", "Sing")
        assert bool(torch.isfinite(RealWordsProcessor(tokenizer)(ids, noise)).any(dim=-1).all())


def test_the_dictionary_answers_like_the_form_checker_if_more_strictly() -> None:
    words = lexicon()
    for word in ("kitchen", "kitchen's", "don't", "lantern", "a", "dimm'd", "chopied", "nd", "sayeth"):
        assert words.known(word) == is_known(word), word
    # The checker reads a word without its apostrophes too; a model would make too much of that.
    assert is_known("histi'din'e") and not words.known("histi'din'e") and not words.viable("histi'd")
    assert is_known("n") and not words.known("n") and words.known("a") and words.known("i")  # letters alone
    assert words.viable("chop") and words.viable("kitchen'") and words.viable("don'")
    assert not words.viable("chopied") and not words.viable("xq")


def test_it_is_a_switch_off_by_default_and_steering_adds_it_after_the_ban(tokenizer: Any) -> None:
    spec = SETTING["real_words"]
    assert (spec.kind, spec.default, spec.flags) == (bool, False, ("--real-words", "--no-real-words"))
    assert steering_kwargs(tokenizer, GenerationParams()) == {}
    kwargs = steering_kwargs(tokenizer, GenerationParams(real_words=True, ban=("and the",), use_words=("rain",)))
    names = [type(p).__name__ for p in kwargs["logits_processor"]]
    assert names.index("WordUseProcessor") < names.index("PhraseBanProcessor") < names.index("RealWordsProcessor")


def test_the_templates_where_the_bundled_model_writes_turn_it_on() -> None:
    library = TemplateLibrary()
    for name, values in (
        ("poem", {"topic": "the sea"}),
        ("slogan", {"product": "a bicycle bell"}),
        ("image-prompt", {"scene": "a fox in the snow"}),
    ):
        template = library.get(name)
        assert template.settings_for(template.resolve(values))["real_words"] is True, name


async def test_the_settings_tab_offers_it_as_on_off_or_the_default() -> None:
    from textual.widgets import Select

    from tests.support.settings_host import SettingsHost
    from tui.widgets.panels.settings import SettingsView

    app = SettingsHost()
    posted = app.posted
    async with app.run_test(size=(100, 40)) as pilot:
        view = app.query_one(SettingsView)
        switch = view.query_one("#set-real_words", Select)
        view.load({}, {"real_words": True})
        assert switch.is_blank() and switch.prompt == "on"  # the template's default, greyed
        switch.value = False
        await pilot.pause()
        assert posted[-1] == {"real_words": False}
        view.load({"real_words": True}, {})
        assert switch.value is True and switch.prompt == "off"


def test_the_prompts_words_and_the_words_to_use_count_as_real(tokenizer: Any) -> None:
    ends = ["la", " is", "ie"]
    ids = {text: _token(tokenizer, text) for text in ends}

    def allowed(prompt: str, also: tuple[str, ...] = ()) -> set[str]:
        scores = torch.zeros(1, len(tokenizer))
        for rank, text in enumerate(ends):
            scores[0, ids[text]] = 10.0 - rank
        out = RealWordsProcessor(tokenizer, also=also)(torch.tensor([_ids(tokenizer, prompt)]), scores)
        return {text for text in ends if out[0, ids[text]] > float("-inf")}

    assert allowed("A poem about the robot Zorb") == set(ends)  # begun as no known word is: not judged
    assert allowed("Poem: Zorblax\n\nThe robot Zorb") == {"la"}  # on to the name; not "zorbie", nor "zorb is"
    assert allowed("The robot Zorb", also=("Zorblax",)) == {"la"}
