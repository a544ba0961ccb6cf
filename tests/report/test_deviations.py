"""The "Deviations from the paper" list: one source for the README and the app's Home page."""

from pathlib import Path

from anovit.report.deviations import DEVIATIONS, deviations_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_shows_the_current_deviations_table():
    text = README.read_text()
    assert "## Deviations from the paper" in text
    assert deviations_markdown() in text  # regenerate the README table when anovit/report/deviations.py changes


def test_the_list_covers_what_a_reviewer_checks_first():
    topics = {d.topic for d in DEVIATIONS}
    assert {"attention heads", "decoder normalisation", "decoder output", "eq. (1) loss", "flips",
            "validation split", "learning rate, epochs", "input normalisation"} <= topics
    assert all(d.paper and d.ours and d.why for d in DEVIATIONS)
