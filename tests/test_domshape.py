"""A streamed host's `virsh domstats` read by the shape of its previous sample
(sources/domshape.py): always what parse_domstats() makes of the same text, or its error.

The texts are the libvirt lab's two real samples (tests/data/lab-libvirt9-qemu7-tcg), the
simulator's 11-VM host, and hypothesis' edits of them: digits changed, inserted and
deleted anywhere (keys, names, indents), characters of every kind put in or taken out.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetmon.analyse.pipeline import analyse_output
from fleetmon.errors import ProbeParseError
from fleetmon.model import HostReport, Status
from fleetmon.sim.answer import Answer, ScriptInfo
from fleetmon.sim.captures import load_captures
from fleetmon.sim.hosts import endpoints, make_fleet
from fleetmon.sim.render import Moment
from fleetmon.sources import MAX_DIGITS, domshape
from fleetmon.sources.domshape import Shape, Unshaped, parse_domstats_shaped, shape_of
from fleetmon.sources.sections import pair_output, split_tick
from fleetmon.sources.virsh import parse_domstats

LAB = Path(__file__).parent / "data" / "lab-libvirt9-qemu7-tcg"
SAMPLE1 = (LAB / "sample1" / "domstats--raw.txt").read_text()
SAMPLE2 = (LAB / "sample2" / "domstats--raw.txt").read_text()
INFO = ScriptInfo(nonce="0123456789abcdef", interval_s=2.0, hypervisor="auto")


def _shape(text: str) -> Shape:
    shape = shape_of(text, parse_domstats(text))
    assert isinstance(shape, Shape)
    return shape


def _full(text: str) -> Any:
    """parse_domstats(text), or the error it raises."""
    try:
        return parse_domstats(text)
    except ProbeParseError as e:
        return ("error", str(e))


def _shaped(text: str, known: Shape | Unshaped | None) -> Any:
    try:
        return parse_domstats_shaped(text, known)[0]
    except ProbeParseError as e:
        return ("error", str(e))


def _count_shapes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts shape_of() is asked to make a shape of, from now on."""
    made: list[str] = []
    real = domshape.shape_of
    monkeypatch.setattr(domshape, "shape_of", lambda *a: made.append(a[0]) or real(*a))
    return made


def test_the_labs_second_sample_is_read_by_the_firsts_shape() -> None:
    shape = _shape(SAMPLE1)
    read, kept = parse_domstats_shaped(SAMPLE2, shape)
    assert kept is shape  # read by it, not parsed again
    full = parse_domstats(SAMPLE2)
    assert read == full
    assert [d.name for d in read] == [d.name for d in full]
    assert read[0].num("cpu.time") != parse_domstats(SAMPLE1)[0].num("cpu.time")
    # Every field, its type and value, and the names read from the text.
    assert all(dict(a.fields) == dict(b.fields) for a, b in zip(read, full, strict=True))


def _sim_domstats(ticks: int) -> list[str]:
    """The simulator's domstats of its 11-VM KVM host at consecutive ticks."""
    (host,) = [h for h in make_fleet(5, "kvm", 1, {}, endpoints("127.0.1.1", 5, 22, 1))][4:]
    ans = Answer(load_captures(), host, INFO, "", "")
    texts = [
        ans.tick(k, Moment(10.0 + 2 * k, 1_790_000_000.0 + 2 * k), k == 1)
        for k in range(1, ticks + 1)
    ]
    return [split_tick(t, INFO.nonce).sections["virsh_domstats"].text for t in texts]


def test_a_simulated_stream_is_read_by_one_shape_made_at_its_second_sample(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made = _count_shapes(monkeypatch)
    known: Shape | Unshaped | None = None
    shapes = []
    for text in _sim_domstats(8):
        read, known = parse_domstats_shaped(text, known)
        assert read == parse_domstats(text)
        shapes.append(known)
    assert isinstance(shapes[0], Unshaped)  # a layout seen once: its skeleton only
    assert isinstance(shapes[1], Shape)
    assert all(s is shapes[1] for s in shapes[2:])
    assert len(made) == 1


_DIGIT = st.sampled_from("0123456789")
_ANY = st.sampled_from("0123456789 =\n'-.abcDomain:\t")


@st.composite
def _edits(draw: st.DrawFn, text: str) -> str:
    """Up to 6 edits of `text`: a digit changed, inserted or deleted, or any character
    inserted or deleted, anywhere."""
    chars = list(text)
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(chars) - 1))
        kind = draw(st.sampled_from(["digit", "insert digit", "delete", "insert any"]))
        if kind == "digit" and chars[at].isdigit():
            chars[at] = draw(_DIGIT)
        elif kind == "insert digit":
            chars.insert(at, draw(_DIGIT))
        elif kind == "delete":
            del chars[at]
        else:
            chars.insert(at, draw(_ANY))
    return "".join(chars)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_an_edited_text_read_by_a_shape_is_what_the_parser_makes_of_it(data: Any) -> None:
    shape = _shape(SAMPLE1)
    text = data.draw(_edits(SAMPLE2))
    assert _shaped(text, shape) == _full(text)


def test_every_single_digit_inserted_or_deleted_reads_as_the_parser_does() -> None:
    """Every place of the lab's sample with a digit put in, and every digit taken out: the
    edits that keep a text's characters but digits, the ones a shape must judge."""
    shape = _shape(SAMPLE1)
    digits = [i for i, c in enumerate(SAMPLE2) if c.isdigit()]
    texts = [SAMPLE2[:i] + "7" + SAMPLE2[i:] for i in range(len(SAMPLE2) + 1)]
    texts += [SAMPLE2[:i] + SAMPLE2[i + 1 :] for i in digits]
    read = 0
    for text in texts:
        assert _shaped(text, shape) == _full(text), text
        read += parse_domstats_shaped(text, shape)[1] is shape if _full(text)[0] != "error" else 0
    assert read > len(digits)  # most of them read by the shape, not parsed


@st.composite
def _digit_edits(draw: st.DrawFn, text: str) -> str:
    """Up to 6 digits put in or taken out anywhere: a text of the same characters but
    digits, the only kind a shape reads."""
    chars = list(text)
    for _ in range(draw(st.integers(1, 6))):
        digits = [i for i, c in enumerate(chars) if c.isdigit()]
        if digits and draw(st.booleans()):
            del chars[draw(st.sampled_from(digits))]
        else:
            chars.insert(draw(st.integers(0, len(chars))), draw(_DIGIT))
    return "".join(chars)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_shape_of_an_odd_text_reads_its_digit_edits_as_the_parser_does(data: Any) -> None:
    """Shapes of edited texts (odd values, names, layouts that still parse), then texts
    that differ from them in digits alone: read as parse_domstats() reads them."""
    template = data.draw(_edits(SAMPLE1))
    try:
        shape = shape_of(template, parse_domstats(template))
    except ProbeParseError:
        return
    if shape is not None:
        text = data.draw(_digit_edits(template))
        assert _shaped(text, shape) == _full(text)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # An emptied value and a digit in the next line's indent: as many tokens, the
        # same characters but digits, the keys in their places; the parser refuses it.
        ("  state.reason=1\n  cpu.time=", "  state.reason=\n 5 cpu.time="),
        # A key's digits: vcpu.1 is not vcpu.0.
        ("vcpu.0.state=", "vcpu.7.state="),
        # A value past 64 bits: the parser's own error, not a huge int.
        ("cpu.time=5076818000", "cpu.time=" + "9" * (MAX_DIGITS + 3)),
        # A name's digits are the text's: vm2 is now vm27.
        ("Domain: 'vm2'", "Domain: 'vm27'"),
        # Digits before or after a name's quotes (found by hypothesis): no head to the
        # parser, which refuses the text; the same characters but digits, the same tokens.
        ("Domain: 'vm2'", "Domain: 0'vm2'"),
        ("Domain: 'vm1'", "Domain: 'vm1'7"),
        # A number made negative, a value made empty at the very end.
        ("cpu.time=5076818000", "cpu.time=-5076818000"),
    ],
)
def test_edits_a_shape_must_not_read_as_its_own(old: str, new: str) -> None:
    assert old in SAMPLE2
    text = SAMPLE2.replace(old, new, 1)
    assert _shaped(text, _shape(SAMPLE1)) == _full(text)
    last = re.sub(r"=[0-9]+\n$", "=\n", SAMPLE2)
    assert _shaped(last, _shape(SAMPLE1)) == _full(last)


def test_texts_without_a_shape_are_parsed_and_not_tried_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A name with a space, a value holding `=`, a key given twice: a shape could not
    # read them as the parser does, so none is made, once.
    for odd in (
        SAMPLE1.replace("Domain: 'vm2'", "Domain: 'vm two'"),
        SAMPLE1.replace("block.0.path=", "block.0.path=a=b"),
        SAMPLE1.replace("  state.reason=1\n", "  state.reason=1\n  state.reason=2\n", 1),
        # A value `-` (a digit after it would make a negative number) and a tab: only
        # virsh's usual form gets a shape.
        SAMPLE1.replace("net.0.name=tap-vm2", "net.0.name=-"),
        SAMPLE1.replace("  state.state=1\n", "  state.state=1\t\n", 1),
    ):
        assert shape_of(odd, parse_domstats(odd)) is None
        tries = _count_shapes(monkeypatch)
        known: Shape | Unshaped | None = None
        for _ in range(4):
            read, known = parse_domstats_shaped(odd, known)
            assert read == parse_domstats(odd)
        assert known == Unshaped(known.skeleton, True)
        assert len(tries) == 1
        monkeypatch.undo()


def test_a_layout_changing_at_every_sample_costs_no_shape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tries = _count_shapes(monkeypatch)
    stopped = SAMPLE2.split("\n\n")[0] + "\n"  # the first VM alone
    known: Shape | Unshaped | None = _shape(SAMPLE1)
    for text in (stopped, SAMPLE2, stopped, SAMPLE2, stopped):
        read, known = parse_domstats_shaped(text, known)
        assert read == parse_domstats(text)
        assert isinstance(known, Unshaped)
    assert tries == []


def test_the_streamed_analysis_with_shapes_is_the_one_without() -> None:
    """Ten ticks of the simulated 11-VM host, each pair analysed with the streaming
    collector's memo (shapes) and without (parse_domstats): the same VM rows."""
    (host,) = [h for h in make_fleet(5, "kvm", 1, {}, endpoints("127.0.1.1", 5, 22, 1))][4:]
    ans = Answer(load_captures(), host, INFO, "", "")
    memo: dict[Any, Any] = {}
    once: dict[str, Any] = {}
    prev = None
    compared = 0
    for k in range(1, 11):
        tick = split_tick(
            ans.tick(k, Moment(10.0 + 2 * k, 1_790_000_000.0 + 2 * k), k == 1), INFO.nonce
        )
        once.update(tick.once)
        if prev is not None:
            base = HostReport(host.name, host.address, (), Status.OK, None)
            with_memo = analyse_output(base, pair_output(once, prev, tick.sections, memo))
            plain = analyse_output(base, pair_output(once, prev, tick.sections))
            assert len(with_memo.rows["vm"]) == 10  # 11 VMs, 10 running
            assert with_memo == plain
            compared += 1
        prev = tick.sections
    assert compared == 9
    assert any(isinstance(v, Shape) for v in memo.values())


@pytest.mark.parametrize("first", ["-", "5-", "-7"])
def test_a_value_that_digits_make_a_negative_number(first: str) -> None:
    """A value `-` or `5-` that is `-5` at the next sample, the digits alone changed, is a
    negative number to the parser: no shape of the first text may read it as text."""
    dash = SAMPLE1.replace("net.0.name=tap-vm2", "net.0.name=" + first)
    minus = SAMPLE2.replace("net.0.name=tap-vm2", "net.0.name=-5")
    known: Shape | Unshaped | None = None
    for text in (dash, dash, minus):
        read, known = parse_domstats_shaped(text, known)
        assert read == parse_domstats(text)
    assert read[0].fields["net.0.name"] == -5
