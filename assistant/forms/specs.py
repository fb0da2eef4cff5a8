"""The fixed forms quillmate knows: how many lines, how many syllables, which lines rhyme.

A form is data (:class:`FormSpec`), so the checker and form-aware generation read the
same rules. Only forms with rules to keep are here; free verse has none, and an ode or
an elegy is a matter of tone, not of counting.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.errors import UsageError


@dataclass(frozen=True)
class FormSpec:
    """The rules of one poetic form.

    Attributes:
        name: The form's name, as a writer would say it.
        lines: The number of lines, or None when it varies (couplets, ballads).
        stanza: For forms without a fixed length: lines come in groups of this many,
            and the syllable pattern and rhyme scheme repeat for each group.
        syllables: (fewest, most) syllables for each line (or each line of the stanza).
        schemes: Accepted rhyme schemes, one letter a line ("AABBA"); "x" marks a line
            that need not rhyme. Several schemes: the poem may follow any one.
        refrains: (line, copy) pairs of 1-based line numbers: ``copy`` repeats ``line``.
        min_rhyme_share: The share of the scheme's rhyme pairs that must rhyme.
        default_lines: How many lines form-aware generation writes when ``lines`` is None.
        description: One line for writers, used in hints and re-asks.
    """

    name: str
    lines: int | None = None
    stanza: int | None = None
    syllables: tuple[tuple[int, int], ...] = ()
    schemes: tuple[str, ...] = ()
    refrains: tuple[tuple[int, int], ...] = ()
    min_rhyme_share: float = 1.0
    default_lines: int | None = None
    description: str = ""

    @property
    def length(self) -> int:
        """The number of lines to write."""
        return self.lines or self.default_lines or self.stanza or 1

    def syllables_for(self, index: int) -> tuple[int, int] | None:
        """(fewest, most) syllables for line ``index`` (0-based), or None when free."""
        if not self.syllables:
            return None
        return self.syllables[index % len(self.syllables)]

    def scheme_for(self, count: int, scheme: str) -> list[str]:
        """Rhyme labels for a poem of ``count`` lines; repeated stanzas get labels of their own."""
        if self.lines is not None:
            return list(scheme[:count]) + ["x"] * max(0, count - len(scheme))
        labels = []
        for i in range(count):
            letter = scheme[i % len(scheme)]
            labels.append("x" if letter == "x" else f"{letter}{i // len(scheme)}")
        return labels

    def target_syllables(self, index: int) -> int | None:
        """The count form-aware generation aims for on line ``index``."""
        bounds = self.syllables_for(index)
        if bounds is None:
            return None
        lo, hi = bounds
        return lo if lo == hi else (lo + hi) // 2


def _r(*pairs: int) -> tuple[tuple[int, int], ...]:
    return tuple((n, n) for n in pairs)


SHAKESPEAREAN = "ABABCDCDEFEFGG"
PETRARCHAN = ("ABBAABBACDECDE", "ABBAABBACDCDCD", "ABBAABBACDEDCE")
_TEN = ((8, 12),)

FORMS: dict[str, FormSpec] = {
    spec.name: spec
    for spec in (
        FormSpec("haiku", lines=3, syllables=_r(5, 7, 5), description="three lines of 5, 7 and 5 syllables"),
        FormSpec("tanka", lines=5, syllables=_r(5, 7, 5, 7, 7), description="five lines of 5, 7, 5, 7 and 7 syllables"),
        FormSpec(
            "cinquain", lines=5, syllables=_r(2, 4, 6, 8, 2), description="five lines of 2, 4, 6, 8 and 2 syllables"
        ),
        FormSpec(
            "limerick",
            lines=5,
            syllables=((7, 11), (7, 11), (4, 7), (4, 7), (7, 11)),
            schemes=("AABBA",),
            description="five lines rhyming AABBA, the third and fourth short",
        ),
        FormSpec(
            "sonnet",
            lines=14,
            syllables=_TEN,
            schemes=(SHAKESPEAREAN, *PETRARCHAN),
            min_rhyme_share=0.7,
            description="fourteen lines of about ten syllables, rhyming ABAB CDCD EFEF GG or ABBAABBA CDECDE",
        ),
        FormSpec(
            "shakespearean sonnet",
            lines=14,
            syllables=_TEN,
            schemes=(SHAKESPEAREAN,),
            min_rhyme_share=0.7,
            description="fourteen lines of about ten syllables, rhyming ABAB CDCD EFEF GG",
        ),
        FormSpec(
            "petrarchan sonnet",
            lines=14,
            syllables=_TEN,
            schemes=PETRARCHAN,
            min_rhyme_share=0.7,
            description="fourteen lines of about ten syllables, rhyming ABBAABBA then CDECDE or CDCDCD",
        ),
        FormSpec(
            "couplets",
            stanza=2,
            syllables=((6, 12),),
            schemes=("AA",),
            min_rhyme_share=0.75,
            default_lines=8,
            description="lines in rhyming pairs (AA BB CC ...)",
        ),
        FormSpec(
            "ballad stanza",
            stanza=4,
            syllables=((7, 9), (5, 7)),
            schemes=("xAxA",),
            min_rhyme_share=0.75,
            default_lines=8,
            description="stanzas of four lines of about 8, 6, 8 and 6 syllables, rhyming ABCB",
        ),
        FormSpec(
            "villanelle",
            lines=19,
            syllables=((7, 12),),
            schemes=("ABAABAABAABAABAABAA",),
            refrains=((1, 6), (3, 9), (1, 12), (3, 15), (1, 18), (3, 19)),
            min_rhyme_share=0.7,
            description="nineteen lines on two rhymes (ABA ... ABAA), lines 1 and 3 returning as refrains",
        ),
    )
}

ALIASES = {
    "ballad": "ballad stanza",
    "shakespearean": "shakespearean sonnet",
    "english sonnet": "shakespearean sonnet",
    "petrarchan": "petrarchan sonnet",
    "italian sonnet": "petrarchan sonnet",
    "couplet": "couplets",
    "heroic couplets": "couplets",
}

FREE_FORMS = ("free verse", "blank verse", "ode", "elegy", "lyric")


def find_form(name: str | None) -> FormSpec | None:
    """The rules for ``name`` ("haiku", "Petrarchan sonnet", "ballad"), or None for a free form."""
    if not name:
        return None
    key = " ".join(name.lower().replace("-", " ").split())
    key = ALIASES.get(key, key)
    return FORMS.get(key)


def get_form(name: str) -> FormSpec:
    """Like :func:`find_form`, but an unknown name is an error that lists the known ones.

    Raises:
        UsageError: the name is not a form with rules.
    """
    spec = find_form(name)
    if spec is None:
        known = ", ".join([*FORMS, *ALIASES])
        raise UsageError(f"'{name}' is not a form quillmate can check.", f"Known forms: {known}; or use auto.")
    return spec
