"""Figure titles fit their figure: long titles set through the report's style helpers are wrapped so
that no line is wider than the figure can show at the title's font size (the comparison figure's
"not comparable" note used to be cut off at both ends)."""

from __future__ import annotations

from matplotlib.font_manager import FontProperties
from matplotlib.textpath import text_to_path

from disentbench.bench.report import plots
from disentbench.bench.report.leaderboard import make_boards
from disentbench.bench.report.runs import load_runs
from disentbench.bench.report.style import DPI, FIGSIZE, method_colours, new_figure, save, set_suptitle, set_title
from tests.test_report import synthetic_rows, write_run


def _widest_char_px(text: str, fontsize: float) -> float:
    """An upper bound of the width of any character of `text` (its widest glyph), in pixels."""
    prop = FontProperties(size=fontsize)
    return max(text_to_path.get_text_width_height_descent(c, prop, ismath=False)[0] for c in set(text)) * DPI / 72


def _assert_fits(text: str, width_px: float, fontsize: float) -> None:
    bound = _widest_char_px(text.replace("\n", ""), fontsize)
    for line in text.split("\n"):
        assert len(line) * bound <= width_px, (len(line), bound, width_px, line)


def test_a_long_suptitle_is_wrapped_to_the_figure_width():
    fig = new_figure("paper")
    title = "dsprites (data: procedural): the DiD paper's metrics " + "[not comparable: did 120 of 300,000 steps] " * 6
    text = set_suptitle(fig, title, fontsize=10)
    shown = text.get_text()
    assert shown.count("\n") >= 2 and shown.replace("\n", " ").split() == title.split()  # wrapped, nothing lost
    _assert_fits(shown, FIGSIZE["paper"][0] * DPI, 10)
    fig.canvas.draw()  # and the drawn text lies inside the figure
    box = text.get_window_extent()
    assert 0 <= box.x0 and box.x1 <= fig.bbox.width
    short = set_title(new_figure("scores").add_subplot(), "MIG", fontsize=9)
    assert short.get_text() == "MIG"  # short titles are left as they are


def test_paper_figure_title_with_a_long_note_fits(tmp_path, monkeypatch):
    centres = {
        m: {"{}": {"mig": 0.1 * i, "dci": 0.2, "sap": 0.05}}
        for i, m in enumerate(["vae", "betavae", "factorvae", "betatcvae", "annealedvae", "dipvae1", "dipvae2"], 1)
    }
    run = write_run(tmp_path / "run", synthetic_rows(centres=centres, seeds=2), logs=False)
    runs = load_runs([run])
    drawn = []

    def keep_title(fig, *args):  # the suptitle as the saved figure holds it
        drawn.append(fig._suptitle.get_text())
        return save(fig, *args)

    monkeypatch.setattr(plots, "save", keep_title)
    files, _ = plots.paper_figure(runs, make_boards(runs, "mig"), tmp_path / "fig", method_colours(runs["method"]))
    (figure,) = files
    assert "not comparable" in figure.title and len(figure.title) > 200  # the note is long
    (shown,) = drawn
    assert "\n" in shown and shown.replace("\n", " ").split() == figure.title.split()
    _assert_fits(shown, FIGSIZE["paper"][0] * DPI, 10)
