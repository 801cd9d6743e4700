"""The pages refuse non-digits and explain answers (#21): Draw page, Neighbour vote, Misclassified."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import SMALL, digit_grids, run_draw, run_page, run_vote

import ui
from knn_core.abstain import abstain_rule
from knn_core.nondigits import letter_canvas, nondigit_drawings

pytestmark = pytest.mark.usefixtures("one_blas_thread")
SIZE = "2000"  # training digits: the validation search that calibrates the refusal takes a second or two


def _warnings(at) -> list[str]:
    return [str(w.value) for w in at.warning]


def test_the_draw_page_refuses_a_non_digit_with_the_nearest_digits_anyway_and_why(mnist):
    at = run_draw(image=letter_canvas("M"), params={"size": SIZE})
    assert at.metric[0].value == "not a digit"
    (message,) = [w for w in _warnings(at) if "That doesn't look like a digit" in w]
    assert "unlike every digit" in message and "The nearest digits anyway say" in message
    rule = abstain_rule(mnist, "euclidean", k=5, train_size=int(SIZE))
    winner = int(message.split("say **")[1][0])
    assert f"beyond the {rule.limits[winner]:.1f} that real {winner}s stay within" in message
    assert any(len(g) == 5 for g in digit_grids(at))  # the 5 nearest digits are still shown


def test_the_draw_page_refuses_a_smiley_for_its_pieces():
    """The first non-digit a student draws: a ring like a 0, with eyes and a mouth a 0 does not have."""
    (smiley,) = [x for x in nondigit_drawings(part="design") if x.name == "smiling face t16"]
    at = run_draw(image=smiley.canvas, params={"size": SIZE})
    assert at.metric[0].value == "not a digit"
    (message,) = [w for w in _warnings(at) if "That doesn't look like a digit" in w]
    assert "separate pieces (a usual 0: 1)" in message


def test_the_draw_page_asks_the_digit_gate_for_deskew(mnist):
    """Deskewed, this non-digit looks enough like a digit for deskew's own tests; its raw pixels do not."""
    from test_abstain_explain import GATED_NONDIGIT

    (x,) = [x for x in nondigit_drawings() if x.name == GATED_NONDIGIT]
    assert abstain_rule(mnist, "deskew", train_size=int(SIZE)).gate is not None  # its validation searches cached
    at = run_draw(image=x.canvas, params={"size": SIZE, "method": "deskew"})
    assert at.metric[0].value == "not a digit"
    (message,) = [w for w in _warnings(at) if "That doesn't look like a digit" in w]
    assert "It is unlike every digit in its raw pixels: its nearest " in message


def test_a_clear_digit_is_answered_and_the_explanation_is_drawn_only_when_opened(mnist):
    from helpers import on_canvas

    at = run_draw(image=on_canvas(mnist.test_images[0]), params={"size": SIZE})
    assert at.metric[0].value == "7" and not any("doesn't look like" in w for w in _warnings(at))
    assert not any("orange" in cap for g in digit_grids(at) for _, cap in g)
    at.session_state["draw_explain_open"] = True
    at.run()
    assert not at.exception
    pictures = [g for g in digit_grids(at) if any("ink only yours" in cap for _, cap in g)]
    assert len(pictures) == 1 and len(pictures[0]) == 4  # yours, the neighbour, the difference, the heat map
    assert any("they add up to the distance squared" in str(c.value) for c in at.caption)
    assert any("Why not" in str(m.value) for m in at.markdown)


def test_the_neighbour_vote_view_explains_with_the_idm_field(mnist):
    from helpers import on_canvas

    at = run_vote(image=on_canvas(mnist.test_images[1]), params={"size": "1000", "method": "idm"})
    at.session_state["vote_explain_open"] = True
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    caps = [cap for g in digit_grids(at) for _, cap in g]
    assert any(cap.startswith("IDM: where each pixel was matched") for cap in caps)
    assert any("add up to the IDM distance squared" in str(c.value) for c in at.caption)


def test_the_misclassified_page_asks_why_not_the_true_label(mnist):
    at = run_page("misclassified", params={"size": SMALL})
    at.session_state["wrong_explain_open"] = True
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    (box,) = [e for e in at.expander if e.label.startswith("Why ")]
    said, true = box.label.split("Why ")[1].split(",")[0], box.label.split("not ")[1].split("?")[0]
    assert said != true
    assert any(f"**Why not {true}?**" in str(m.value) for m in at.markdown)


def test_abstain_message_says_nothing_for_an_answer():
    assert ui.abstain_message(None, 3) is False
    assert np.isfinite(ui.explain.heat_picture(np.zeros((3, 3)))).all()
