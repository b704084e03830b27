import pytest

from inr_utils import summary


def test_tables_of_equal_title_join_across_runs_and_verdicts_are_listed():
    a = summary.block([summary.table("T", ["x", "y"], [[1, 2.5]])], [summary.target("x <= 1", "1", True)])
    b = summary.block([summary.table("T", ["x", "y"], [["3", "4"]]), summary.table("T", ["z"], [["5"]])])
    lines = summary.render([("R3", a), ("R6", b), ("R8", None)])
    assert lines[:6] == ["**T**", "", "| run | x | y |", "|---|---|---|", "| R3 | 1 | 2.5 |", "| R6 | 3 | 4 |"]
    assert "**T (R6)**" in lines and "| R6 | 5 |" in lines  # same title, other columns: its own table
    assert lines[-2] == "| R3 | x <= 1 | 1 | **met** |"


def test_a_row_of_the_wrong_width_is_refused():
    with pytest.raises(ValueError, match="every row needs 2 cells"):
        summary.table("T", ["x", "y"], [["1"]])


def test_counted_puts_the_noun_in_the_number_of_its_count():
    assert summary.counted(1, "slice") == "1 slice"
    assert summary.counted(0, "slice") == "0 slices"
    assert summary.counted(11, "slice") == "11 slices"
    assert summary.counted(2, "method run") == "2 method runs"  # the last word takes the plural
