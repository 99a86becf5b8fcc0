import statistics

from torch_lab.text import duration_text, mean_std, number_text, short_names, table


def test_table_aligns_columns_and_right_aligns_the_asked_ones() -> None:
    assert table([["a", "bb"], ["ccc", "1"]], right=[1]) == "a    bb\nccc   1"


def test_short_names_keep_as_many_dotted_parts_as_needed() -> None:
    assert short_names(["config.lr", "config.model.width", "optim.width"]) == [
        "lr", "model.width", "optim.width"]


def test_numbers_and_durations() -> None:
    assert [number_text(0.123456), number_text(3), number_text(None)] == ["0.1235", "3", "-"]
    assert [duration_text(5), duration_text(3723.4), duration_text(None)] == ["0:00:05", "1:02:03", "-"]


def test_stats_helper_is_the_sample_standard_deviation() -> None:
    assert mean_std([1.0, 2.0, 4.0]) == (statistics.mean([1.0, 2.0, 4.0]), statistics.stdev([1.0, 2.0, 4.0]))
    assert mean_std([3.0]) == (3.0, None)
