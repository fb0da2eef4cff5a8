"""The document model: provenance spans, the editing rules, undo/redo, statistics."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from assistant.sessions.document import (
    WRITER,
    Attribution,
    Document,
    check_invariants,
    common_prefix,
    common_suffix,
)
from assistant.sessions.errors import SessionReadOnly
from assistant.sessions.stats import compute_stats


def runs(doc: Document) -> list[tuple[str, str, int | None]]:
    return [(doc.text[s.start : s.end], s.author, s.generation_id) for s in doc.spans()]


def test_typing_builds_one_writer_span() -> None:
    doc = Document()
    for ch in "Once upon a time":
        doc.insert(len(doc), ch)
    assert doc.text == "Once upon a time"
    assert runs(doc) == [("Once upon a time", "writer", None)]
    check_invariants(doc)


def test_accept_then_type_inside_model_text_splits_it() -> None:
    doc = Document("The night. ")
    doc.accept(len(doc), "The sea was dark.", generation_id=1)
    doc.insert(len("The night. The sea"), " really")
    assert runs(doc) == [
        ("The night. ", "writer", None),
        ("The sea", "model", 1),
        (" really", "writer", None),
        (" was dark.", "model", 1),
    ]
    check_invariants(doc)


def test_deleting_inside_model_text_marks_the_span_edited() -> None:
    doc = Document("A ")
    doc.accept(2, "big red boat", generation_id=3)
    doc.delete(2, 6)  # "big "
    assert runs(doc) == [("A ", "writer", None), ("red boat", "edited", 3)]
    doc.replace(2, 5, "blue")  # retype "red" -> "blue": typed text is the writer's
    assert doc.text == "A blue boat"
    assert runs(doc) == [("A blue", "writer", None), (" boat", "edited", 3)]
    check_invariants(doc)


def test_rewrite_replaces_writer_text_with_model_text_as_one_undo_step() -> None:
    doc = Document("He walk slow to the door.")
    doc.apply_rewrite(0, 12, "He walked slowly", generation_id=7, alternative=1)
    assert runs(doc) == [("He walked slowly", "model", 7), (" to the door.", "writer", None)]
    assert doc.spans()[0].alternative == 1
    assert doc.undo() is not None
    assert doc.text == "He walk slow to the door."
    assert runs(doc) == [("He walk slow to the door.", "writer", None)]
    doc.redo()
    assert doc.text == "He walked slowly to the door."


def test_adjacent_identical_attributions_merge() -> None:
    doc = Document()
    doc.accept(0, "ab", generation_id=1)
    doc.accept(2, "cd", generation_id=1)  # same generation and alternative: one span
    assert runs(doc) == [("abcd", "model", 1)]
    doc.accept(4, "ef", generation_id=2)
    assert len(doc.spans()) == 2


def test_typing_is_undone_word_by_word() -> None:
    doc = Document()
    for ch in "hello big world":
        doc.insert(len(doc), ch)
    doc.undo()
    assert doc.text == "hello big "
    doc.undo()
    assert doc.text == "hello "
    doc.undo()
    assert doc.text == ""
    assert doc.undo() is None
    doc.redo()
    assert doc.text == "hello "


def test_backspaces_group_and_accept_is_its_own_step() -> None:
    doc = Document("abcdef")
    doc.accept(6, " XYZ", generation_id=1)
    for i in range(3):
        doc.delete(5 - i, 6 - i)
    assert doc.text == "abc XYZ"
    assert doc.undo() == 6
    assert doc.text == "abcdef XYZ"
    doc.undo()
    assert doc.text == "abcdef"


def test_set_text_applies_the_minimal_edit() -> None:
    doc = Document("The cat sat.")
    doc.accept(len(doc), " It purred.", generation_id=1)
    assert doc.set_text("The cat sat. It purred loudly.") == (22, 22, 29)
    assert runs(doc)[-3:] == [(" It purred", "model", 1), (" loudly", "writer", None), (".", "model", 1)]
    assert doc.set_text(doc.text) is None
    doc.set_text("The dog sat. It purred loudly.")
    assert runs(doc)[0] == ("The dog sat.", "writer", None)


def test_read_only_document_refuses_changes() -> None:
    doc = Document("text", read_only=True)
    with pytest.raises(SessionReadOnly):
        doc.insert(0, "x")


def test_positions_are_checked() -> None:
    doc = Document("abc")
    with pytest.raises(IndexError):
        doc.delete(2, 9)
    with pytest.raises(ValueError):
        doc.insert(0, "x", author="model")  # model text needs a generation id


def test_stats_split_words_by_author_and_model() -> None:
    from assistant.sessions.events import GenerationEvent

    doc = Document("one two ")
    doc.accept(len(doc), "three four five", generation_id=1)
    doc.delete(len(doc) - 3, len(doc))  # "five" -> "f": generation 1 becomes edited
    stats = compute_stats(doc, {1: GenerationEvent(id=1, model="gpt2")})
    assert (stats.words, stats.writer_words, stats.model_words, stats.edited_words) == (5, 2, 0, 3)
    assert stats.by_model[0].model == "gpt2" and stats.by_model[0].edited_words == 3
    assert stats.generated_share == pytest.approx(3 / 5)


def test_long_document_fast_paths_keep_invariants() -> None:
    base = "word " * 20_000
    doc = Document(base)
    for i in range(50):
        doc.accept(i * 1000, " gen ", generation_id=i + 1)
    mid = len(doc) // 2 + 3
    for ch in "typed":
        mid += 1
        doc.insert(mid - 1, ch)
    doc.delete(mid - 2, mid - 1)
    doc.insert(len(doc), "end")
    check_invariants(doc)
    assert doc.text.count("gen") == 50


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("", ""),
        ("abc", "abd"),
        ("x" * 5000, "x" * 5000 + "y"),
        ("x" * 3000 + "a" + "z" * 900, "x" * 3000 + "b" + "z" * 900),
    ],
)
def test_common_prefix_and_suffix(a: str, b: str) -> None:
    def naive_prefix(a: str, b: str) -> int:
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        return n

    p = common_prefix(a, b)
    assert p == naive_prefix(a, b)
    limit = min(len(a), len(b)) - p
    assert common_suffix(a, b, limit) == min(limit, naive_prefix(a[::-1], b[::-1]))


# ---------------------------------------------------------------------------------------------
# Property-based: random edit / accept / rewrite / set_text / undo / redo sequences, checked
# against a character-by-character reference model of the rules.

TEXT = st.text(alphabet="ab \n", min_size=0, max_size=6)
NONEMPTY = st.text(alphabet="ab \n", min_size=1, max_size=6)
POS = st.integers(min_value=0, max_value=10_000)

OPS = st.one_of(
    st.tuples(st.just("insert"), POS, NONEMPTY),
    st.tuples(st.just("type"), POS, st.sampled_from(["a", " ", "\n", "b"])),
    st.tuples(st.just("delete"), POS, POS),
    st.tuples(st.just("replace"), POS, POS, NONEMPTY),
    st.tuples(st.just("accept"), POS, NONEMPTY, st.integers(0, 1)),
    st.tuples(st.just("rewrite"), POS, POS, NONEMPTY),
    st.tuples(st.just("set_text"), POS, POS, TEXT),
    st.tuples(st.just("undo")),
    st.tuples(st.just("redo")),
    st.tuples(st.just("break")),
)


def ref_edit(
    text: str, attrs: list[Attribution], start: int, end: int, new: str, attr: Attribution
) -> tuple[str, list[Attribution]]:
    """The rules, one character at a time."""
    attrs = list(attrs)
    if end > start:
        i = 0
        while i < len(attrs):
            j = i
            while j < len(attrs) and attrs[j] == attrs[i]:
                j += 1
            if attrs[i].author == "model" and min(j, end) > max(i, start):
                attrs[i:j] = [attrs[i].edited()] * (j - i)
            i = j
    return text[:start] + new + text[end:], attrs[:start] + [attr] * len(new) + attrs[end:]


def ref_runs(text: str, attrs: list[Attribution]) -> list[tuple[int, int, Attribution]]:
    out: list[tuple[int, int, Attribution]] = []
    for i, a in enumerate(attrs):
        if out and out[-1][2] == a:
            out[-1] = (out[-1][0], i + 1, a)
        else:
            out.append((i, i + 1, a))
    return out


def ref_set_text(old: str, new: str) -> tuple[int, int, int]:
    p = 0
    while p < min(len(old), len(new)) and old[p] == new[p]:
        p += 1
    s = 0
    while s < min(len(old), len(new)) - p and old[-1 - s] == new[-1 - s]:
        s += 1
    return p, len(old) - s, len(new) - s


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(initial=st.text(alphabet="ab \n", max_size=300), ops=st.lists(OPS, max_size=40))
@example(initial="a", ops=[("insert", 0, "aaaaa"), ("replace", 0, 6, "aaaaaa"), ("undo",)])
def test_random_edit_sequences_keep_spans_tiling_and_undo_exact(initial: str, ops: list[tuple]) -> None:
    doc = Document(initial)
    text, attrs = initial, [WRITER] * len(initial)
    undo_states: list[tuple[str, list[Attribution]]] = []
    redo_states: list[tuple[str, list[Attribution]]] = []
    next_gen = 1
    for op in ops:
        kind = op[0]
        before = (text, attrs)
        groups_before = len(doc._undo)
        n = len(text)
        if kind == "undo":
            pos = doc.undo()
            if undo_states:
                assert pos is not None
                redo_states.append(before)
                text, attrs = undo_states.pop()
            else:
                assert pos is None
        elif kind == "redo":
            pos = doc.redo()
            if redo_states:
                assert pos is not None
                undo_states.append(before)
                text, attrs = redo_states.pop()
            else:
                assert pos is None
        elif kind == "break":
            doc.break_undo_group()
        else:
            if kind in ("insert", "type"):
                pos = op[1] % (n + 1)
                doc.insert(pos, op[2])
                text, attrs = ref_edit(text, attrs, pos, pos, op[2], WRITER)
            elif kind == "accept":
                pos = op[1] % (n + 1)
                doc.accept(pos, op[2], generation_id=next_gen, alternative=op[3])
                text, attrs = ref_edit(text, attrs, pos, pos, op[2], Attribution("model", next_gen, op[3]))
                next_gen += 1
            else:
                a, b = sorted((op[1] % (n + 1), op[2] % (n + 1)))
                if kind == "delete":
                    doc.delete(a, b)
                    text, attrs = ref_edit(text, attrs, a, b, "", WRITER)
                elif kind == "replace":
                    doc.replace(a, b, op[3])
                    text, attrs = ref_edit(text, attrs, a, b, op[3], WRITER)
                elif kind == "rewrite":
                    doc.apply_rewrite(a, b, op[3], generation_id=next_gen)
                    text, attrs = ref_edit(text, attrs, a, b, op[3], Attribution("model", next_gen, 0))
                    next_gen += 1
                else:  # set_text: the app reports the whole new text
                    target = text[:a] + op[3] + text[b:]
                    expected = ref_set_text(text, target)
                    result = doc.set_text(target)
                    if target == text:
                        assert result is None
                    else:
                        assert result == expected
                        s, oe, ne = expected
                        text, attrs = ref_edit(text, attrs, s, oe, target[s:ne], WRITER)
            if (text, attrs) != before:
                redo_states.clear()
                if len(doc._undo) > groups_before:
                    undo_states.append(before)
        check_invariants(doc)
        assert doc.text == text
        assert [(s.start, s.end, s.attribution) for s in doc.spans()] == ref_runs(text, attrs)
        stats = compute_stats(doc)
        assert stats.writer_words + stats.model_words + stats.edited_words == stats.words == len(text.split())
        first_chars = [i for i in range(len(text)) if not text[i].isspace() and (i == 0 or text[i - 1].isspace())]
        assert stats.model_words == sum(1 for i in first_chars if attrs[i].author == "model")
        assert stats.edited_words == sum(1 for i in first_chars if attrs[i].author == "edited")
    # Redo what is left, then undo everything, then redo everything: start and top of history round-trip.
    while doc.can_redo:
        doc.redo()
    final = (doc.text, doc.spans())
    while doc.can_undo:
        doc.undo()
        check_invariants(doc)
    assert doc.text == initial
    while doc.can_redo:
        doc.redo()
        check_invariants(doc)
    assert (doc.text, doc.spans()) == final


@settings(max_examples=100, deadline=None)
@given(a=st.text(alphabet="ab", max_size=700), b=st.text(alphabet="ab", max_size=700))
def test_common_prefix_suffix_match_naive(a: str, b: str) -> None:
    s, oe, _ne = ref_set_text(a, b)
    p = common_prefix(a, b)
    assert p == s
    assert common_suffix(a, b, min(len(a), len(b)) - p) == len(a) - oe
