"""Banned and favoured phrases on the local backend, with the bundled model through transformers.

Every edition of the bundled model has favourite phrases ("and the", "a great", ...): under
greedy decoding it writes one within a few words of "Once upon a time". The tests find the
edition's favourite rather than naming it, and check that, banned, it never appears, however it
would be spelt in tokens.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from backends.base import ChatMessage, GenerationRequest, GenerationResult, StopFilter
from backends.errors import InvalidParameters
from backends.gpt2 import GPT2Backend
from backends.openai_backend import OpenAIBackend
from backends.settings import GenerationParams, ParamOverrides
from backends.steering import BannedPhraseCut, PhraseBan, sequence_bias, spellings, token_texts
from tests.support.fake_openai_server import FakeOpenAI
from tests.support.serve_harness import serve_model

PROMPT = "Once upon a time"
AND_THE = re.compile(r"\band the\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def backend() -> GPT2Backend:
    return GPT2Backend("local", model="bundled")


def generate(backend: GPT2Backend, prompt: str = PROMPT, **params: Any) -> GenerationResult:
    async def run() -> GenerationResult:
        request = GenerationRequest.completion(prompt, GenerationParams(**{"max_new_tokens": 60, **params}))
        async for event in backend.stream(request):
            if isinstance(event, GenerationResult):
                return event
        raise AssertionError("no result")

    return asyncio.run(run())


def _pairs(text: str) -> list[str]:
    words = re.findall(r"[a-z]+", text.lower())
    return [f"{a} {b}" for a, b in pairwise(words)]


def favourite_pair(backend: GPT2Backend, prompt: str, max_new_tokens: int) -> str:
    """The two words the model writes most often after ``prompt``, among those its greedy text holds."""
    text = generate(backend, prompt, temperature=0, max_new_tokens=max_new_tokens).text
    greedy = [pair for pair in _pairs(text) if pair not in _pairs(prompt)]
    sampled = generate(backend, prompt, temperature=0.9, seed=0, num_alternatives=10, max_new_tokens=40)
    counts = {pair: sum(_pairs(t).count(pair) for t in sampled.texts) for pair in greedy}
    return max(greedy, key=lambda pair: (counts[pair], greedy.count(pair)))


def phrase(words: str) -> re.Pattern[str]:
    return re.compile(rf"\b{re.escape(words)}\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def favourite(backend: GPT2Backend) -> str:
    """The edition's favourite after PROMPT: in its greedy 40 tokens and often in sampled ones."""
    return favourite_pair(backend, PROMPT, max_new_tokens=40)


# -- the matcher, on the bundled model's own vocabulary ---------------------------------


@pytest.fixture(scope="module")
def texts(backend: GPT2Backend) -> tuple[str, ...]:
    return token_texts(backend._load_sync().tokenizer)


@pytest.fixture(scope="module")
def vocabulary(texts: tuple[str, ...]) -> dict[str, int]:
    return {text: tid for tid, text in enumerate(texts)}


def test_the_token_that_would_finish_the_phrase_is_banned_and_longer_words_are_not(
    vocabulary: dict[str, int], texts: tuple[str, ...]
) -> None:
    ban = PhraseBan(["and the"], texts)
    assert vocabulary[" the"] in ban.banned("She laughed and")
    assert vocabulary[" them"] not in ban.banned("She laughed and"), "'and them' is not 'and the'"
    assert vocabulary[" the"] not in ban.banned("She played in the band"), "'band the' is not 'and the'"
    assert vocabulary[" the"] not in ban.banned("She laughed or")


def test_case_and_leading_space_variants_are_banned(vocabulary: dict[str, int], texts: tuple[str, ...]) -> None:
    ban = PhraseBan(["  AND   The "], texts)
    assert ban.phrases == ("and the",)
    for before in ("AND", "And", "and", "\nand", " and"):
        assert vocabulary[" the"] in ban.banned(before), before
    assert vocabulary[" The"] in ban.banned("and")


def test_a_phrase_spanning_a_token_boundary_is_caught_wherever_it_is_cut() -> None:
    # A vocabulary where "and the" can be spelt many ways; the ban judges the text, not the tokens.
    vocabulary = ["x", "an", "d", " th", "e", "en", "d the", " the", "e.", "e sea", " and the", " and thee", "band the"]
    ban = PhraseBan(["and the"], vocabulary)

    def banned(text: str) -> set[str]:
        return {vocabulary[t] for t in ban.banned(text)}

    everywhere = {" and the"}  # holds the whole phrase; " and thee" and "band the" do not
    assert banned("we ran an") == {"d the"} | everywhere
    assert banned("we ran and th") == {"e", "e.", "e sea"} | everywhere, "'en' makes 'then', which is allowed"
    assert banned("we ran and") == {" the"} | everywhere
    assert banned("we ran") == everywhere
    assert banned("we rand th") == everywhere


def test_200_phrases_cost_little_per_token(backend: GPT2Backend, texts: tuple[str, ...]) -> None:
    words = [w.strip() for w in texts if w.strip().isalpha() and len(w.strip()) > 3][:400]
    phrases = [*[f"{a} {b}" for a, b in zip(words[::2], words[1::2], strict=False)][:199], "and the"]
    assert len(phrases) == 200
    ban = PhraseBan(phrases, texts)
    text = generate(backend, temperature=0, max_new_tokens=40).text
    started = time.perf_counter()
    for end in range(len(text)):
        ban.banned(PROMPT + text[:end])
    per_step = (time.perf_counter() - started) / max(1, len(text))
    assert per_step < 0.005, f"{per_step * 1000:.2f} ms per step with 200 phrases"


# -- generation ------------------------------------------------------------------------


def test_greedy_writes_the_phrase_and_a_ban_keeps_it_out(backend: GPT2Backend, favourite: str) -> None:
    plain = generate(backend, temperature=0)
    assert phrase(favourite).search(plain.text), "the bundled model's favourite should appear without a ban"
    banned = generate(backend, temperature=0, ban=(favourite.title(),))
    assert not phrase(favourite).search(PROMPT + banned.text), banned.text
    assert banned.complete and len(banned.text.split()) > 20


def test_no_banned_phrase_in_50_seeded_generations_and_the_words_stay_real(
    backend: GPT2Backend, favourite: str
) -> None:
    texts: list[str] = []
    for seed in range(5):
        result = generate(backend, temperature=0.9, seed=seed, num_alternatives=10, max_new_tokens=40, ban=(favourite,))
        texts.extend(result.texts)
    assert len(texts) == 50
    assert sum(len(phrase(favourite).findall(PROMPT + t)) for t in texts) == 0
    # Without the ban the same seeds write it often: the ban, not luck, keeps it out.
    unbanned = generate(backend, temperature=0.9, seed=0, num_alternatives=10, max_new_tokens=40)
    assert sum(len(phrase(favourite).findall(t)) for t in unbanned.texts) >= 1
    words = [w.lower() for t in texts for w in re.findall(r"[A-Za-z]+", t)]
    assert sum(w in _COMMON for w in words) / len(words) > 0.4, "mostly real, common words"


_COMMON = frozenset(
    word
    for line in (
        "a the and to of in was he she it his her that said i you with for as had on but not they at so be all",
        "there one what then went when him them by is would have from were this which no my little out up came",
        "into could will an great did now do very me we king time who",
    )
    for word in line.split()
)


def test_a_ban_works_with_beam_search_and_many_phrases(backend: GPT2Backend) -> None:
    result = generate(
        backend,
        temperature=0,
        num_beams=3,
        num_alternatives=2,
        max_new_tokens=30,
        ban=("and the", "little girl", "great deal"),
    )
    for text in result.texts:
        assert not AND_THE.search(text) and "little girl" not in text.lower() and "great deal" not in text.lower()


def test_a_bias_changes_the_choice(backend: GPT2Backend) -> None:
    door = "She opened the door"
    plain = generate(backend, door, temperature=0)
    liked = favourite_pair(backend, door, max_new_tokens=60)
    rarer = generate(backend, door, temperature=0, bias=((liked, -8.0),))
    assert len(phrase(liked).findall(rarer.text)) < len(phrase(liked).findall(plain.text)), liked
    assert "queen" not in plain.text.lower()
    likelier = generate(backend, door, temperature=0, bias=(("Queen", 6.0),))
    assert "queen" in likelier.text.lower()


def test_bias_reaches_every_spelling_and_each_token_in_context(backend: GPT2Backend) -> None:
    tokenizer = backend._load_sync().tokenizer
    assert spellings("little girl") == ["little girl", " little girl", "Little girl", " Little girl"]
    weights = sequence_bias(tokenizer, [("little girl", -4.0)])
    ids = tuple(tokenizer(" little girl", add_special_tokens=False)["input_ids"])
    assert weights[ids[:1]] == -4.0 and weights[ids] == -4.0, "the first token everywhere, the rest after it"


# -- the setting, declared once --------------------------------------------------------


def test_settings_read_phrases_and_weights_in_every_form() -> None:
    assert ParamOverrides(bias={"and the": -5})["bias"] == (("and the", -5),)
    assert ParamOverrides(bias=["and the=-5", "a=b=2"])["bias"] == (("and the", -5.0), ("a=b", 2.0))
    assert ParamOverrides(bias=[["sea", 3]])["bias"] == (("sea", 3),)
    assert ParamOverrides(ban="and the")["ban"] == ("and the",)
    with pytest.raises(InvalidParameters, match="phrase bias must be phrases with weights"):
        ParamOverrides(bias=["and the"])
    with pytest.raises(InvalidParameters, match="from -100 to 100"):
        ParamOverrides(bias={"x": 500})


def _quillmate(*args: str, home: Path) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "QUILLMATE_HOME": str(home), "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "assistant", *args], capture_output=True, env=env, timeout=180)


def test_run_takes_ban_and_bias_flags(isolated_home: Path, favourite: str) -> None:
    args = (
        "run",
        "continue",
        "--var",
        f"text={PROMPT}",
        "--model",
        "bundled",
        "--temperature",
        "0",
        "--max-tokens",
        "40",
        "--json",
    )
    plain = _quillmate(*args, home=isolated_home)
    assert plain.returncode == 0, plain.stderr.decode()
    assert phrase(favourite).search(json.loads(plain.stdout.splitlines()[0])["text"])
    out = _quillmate(*args, "--ban", favourite, "--ban", "little girl", "--bias", "King=2", home=isolated_home)
    assert out.returncode == 0, out.stderr.decode()
    text = json.loads(out.stdout.splitlines()[0])["text"]
    assert text and not phrase(favourite).search(text)


def test_a_bad_bias_flag_is_one_clear_line(isolated_home: Path) -> None:
    out = _quillmate(
        "run", "continue", "--var", "text=x", "--model", "bundled", "--bias", "and the", home=isolated_home
    )
    assert out.returncode != 0
    err = out.stderr.decode()
    assert "phrase bias must be phrases with weights, as PHRASE=WEIGHT" in err
    assert "Traceback" not in err


def test_serve_honours_ban_in_the_request(
    request: pytest.FixtureRequest, bundled_model_dir: Path, favourite: str
) -> None:
    served = serve_model(request, bundled_model_dir)
    body = {"model": "local", "prompt": PROMPT, "max_tokens": 40, "temperature": 0}
    plain = httpx.post(f"{served.url}/completions", json=body, timeout=120).json()
    assert phrase(favourite).search(plain["choices"][0]["text"])
    banned = httpx.post(f"{served.url}/completions", json=body | {"ban": [favourite], "bias": {"King": 1}}, timeout=120)
    assert banned.status_code == 200, banned.text
    assert not phrase(favourite).search(banned.json()["choices"][0]["text"])
    bad = httpx.post(f"{served.url}/completions", json=body | {"bias": {"x": "much"}}, timeout=30)
    assert bad.status_code == 400 and "bias" in bad.text


# -- OpenAI-compatible backends: the text ends before a banned phrase ----------------------


def test_the_cut_holds_back_what_may_become_a_banned_phrase_and_ends_before_it() -> None:
    cut = BannedPhraseCut(["and the"], StopFilter(()))
    shown = "".join(cut.feed(piece) for piece in ("The fox ran", " AND", "  th", "e")) + cut.flush()
    assert shown == "The fox ran " and cut.stopped
    kept = BannedPhraseCut(["and the"], StopFilter(()))
    shown = "".join(kept.feed(piece) for piece in ("The fox ran", " and", " th", "en", " slept")) + kept.flush()
    assert shown == "The fox ran and then slept" and not kept.stopped


def test_an_openai_compatible_backend_ends_the_text_before_a_banned_phrase() -> None:
    def run(fake: FakeOpenAI, **params: Any) -> GenerationResult:
        backend = OpenAIBackend.from_options("test", {"model": "gpt-test", "base_url": fake.url("ok"), "timeout": 5})
        request = GenerationRequest.chat(
            [ChatMessage.of("user", "Say hello.")], GenerationParams(max_new_tokens=8, **params)
        )

        async def collect() -> list[Any]:
            return [event async for event in backend.stream(request)]

        events = asyncio.run(collect())
        assert isinstance(events[-1], GenerationResult)
        return events[-1]

    with FakeOpenAI() as fake:  # it streams "Hello", " there", " friend"
        result = run(fake, ban=("THERE friend",), bias=(("friend", 2.0),))
        assert result.text == "Hello " and result.finish_reason == "stop"
        assert "ban" not in fake.requests[-1].body, "the server is never sent the ban"
        messages = [n.message for n in result.notices]
        assert any("ends the text just before" in m for m in messages)
        assert any("cannot honour bias" in m for m in messages)
        assert run(fake, ban=("the",)).text == "Hello there friend", "'there' is not 'the'"
