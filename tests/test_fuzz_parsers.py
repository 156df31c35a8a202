"""Property-based fuzzing of every parser: random and mutated inputs raise nothing but ParseError, and never hang.

Each example runs under a SIGALRM watchdog (a hang fails the test instead of stalling CI), and the example
counts keep the whole module to a few seconds; FUZZ_EXAMPLES=2000 FUZZ_RANDOM=1 runs a longer, fresh campaign.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_parse_exports import ATOM, BIBTEX, CSL_JSON, CSV_SEMICOLON, JSON_PLAIN, JSONL, RIS

from assistant.api import DEMO_CORPUS
from assistant.corpus import decode, parse_text
from assistant.corpus.exports import EXPORT_SNIFFERS, parse_csl_json
from assistant.corpus.records import ParseError
from assistant.corpus.scraped import SCRAPED_SNIFFERS

WATCHDOG_SECONDS = 5
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=list(HealthCheck), derandomize=not os.environ.get("FUZZ_RANDOM"))

PARSERS = {name: parse for name, _, parse in EXPORT_SNIFFERS} | {"csl-json": parse_csl_json}
TEXTS = {"bibtex": BIBTEX, "ris": RIS, "csl-json": CSL_JSON, "json": JSON_PLAIN, "jsonl": JSONL, "csv": CSV_SEMICOLON,
         "arxiv-atom": ATOM}
SAMPLES = {name: (PARSERS[name], text) for name, text in TEXTS.items()}
SEED_PAGE = sorted(DEMO_CORPUS.iterdir())[2].read_text(encoding="utf-8")[:6000]
MARKUP = ["{", "}", "[", "]", "\\", '"', ",", "\n", "@", "<", ">", "&", "\ud800", "\x00", "\x1b", "[/]", "TY  - ",
          "ER  - ", "999999999999999999999999", "NaN", "Infinity", "null", "[[[[", "{{{{", "$", "%"]


@contextlib.contextmanager
def watchdog(seconds: int = WATCHDOG_SECONDS) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"parser still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def only_parse_errors(parse: Callable[[], object]) -> None:
    with watchdog():
        try:
            parse()
        except ParseError as error:
            assert "\n" not in str(error), "a parse error must be one line"


@st.composite
def mutated(draw: st.DrawFn, sample: str) -> str:
    """A valid sample cut, spliced, duplicated and salted with characters parsers treat specially."""
    text = sample
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["cut", "insert", "delete", "repeat", "nest"]))
        if action == "cut":
            text = text[:at]
        elif action == "insert":
            text = text[:at] + draw(st.sampled_from(MARKUP) | st.text(max_size=20)) + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 200)):]
        elif action == "repeat":
            text = text[:at] + text[at : at + 50] * draw(st.integers(2, 50)) + text[at:]
        else:
            depth = draw(st.integers(50, 3000))
            opener, closer = draw(st.sampled_from([("[", "]"), ("{", "}"), ("<a>", "</a>")]))
            text = text[:at] + opener * depth + "x" + closer * draw(st.integers(0, depth)) + text[at:]
    return text


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_parsers_survive_mutated_exports(name: str) -> None:
    parse, sample = SAMPLES[name]

    @FUZZ
    @given(text=mutated(sample))
    def check(text: str) -> None:
        only_parse_errors(lambda: parse(text, f"fuzz.{name}"))

    check()


CRASHERS = {  # inputs that broke a parser before issue 11, found by the attack run and by longer campaigns
    "deep arrays": "[" * 100_000 + "]" * 100_000,
    "deep objects": '{"a":' * 100_000 + "1" + "}" * 100_000,
    "deep objects, one a line": ('{"a":' * 5_000 + "1" + "}" * 5_000 + "\n") * 2,
    "huge integer": '[{"id": ' + "9" * 1_000_000 + ', "abstract": "Words."}]',
    "lone surrogate": '[{"title": "\\ud800", "abstract": "Words \\udfff."}]',
    "CSL flat date parts": '[{"issued": {"date-parts": [2021, 3]}, "author": [42, null], "abstract": "Words."}]',
    "CSL null date parts": '[{"issued": {"date-parts": [null]}, "container-title": {"x": 1}, "abstract": "W."}]',
    "300 nested braces": "@article{k, title = {" + "{" * 300 + "x" + "}" * 300 + "}, abstract = {Words.}}",
    "RIS continuation after a broken tag": "TY  - JOUR\nAB  - x\nER  - \n\nTY\n  - CHAP\nN2  - y\nER  - \n",
    "CSV header of long lines": '"a\nb\nc",x\n1,2\n',
    "NaN and Infinity": '[{"id": NaN, "year": Infinity, "abstract": "Words."}]',
}


@pytest.mark.parametrize("crasher", sorted(CRASHERS))
def test_every_parser_survives_known_crashers(crasher: str) -> None:
    text = CRASHERS[crasher]
    for name, (parse, _) in SAMPLES.items():
        only_parse_errors(lambda parse=parse, name=name: parse(text, f"crasher.{name}"))
    only_parse_errors(lambda: parse_text(text, "crasher.txt"))


@FUZZ
@given(text=st.text(max_size=2000) | st.lists(st.sampled_from(MARKUP) | st.text(max_size=8), max_size=200).map("".join))
def test_every_parser_and_sniffer_survives_random_text(text: str) -> None:
    for _, sniff, parse in EXPORT_SNIFFERS:
        with watchdog():
            assert sniff(text) in (True, False)
        only_parse_errors(lambda parse=parse: parse(text, "random.txt"))
    for _, sniff, _parse in SCRAPED_SNIFFERS:
        with watchdog():
            assert sniff(text) in (True, False)
    only_parse_errors(lambda: parse_text(text, "random.txt"))


@FUZZ
@given(text=mutated(SEED_PAGE))
def test_scraped_page_detection_and_parsing_survive_mutations(text: str) -> None:
    only_parse_errors(lambda: parse_text(text, "page.txt"))


@FUZZ
@given(data=st.binary(max_size=3000))
def test_decoding_then_parsing_random_bytes(data: bytes) -> None:
    only_parse_errors(lambda: parse_text(decode(data), "bytes.bin"))
