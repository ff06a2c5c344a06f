import pytest

import inception_keras as ik
from inception_keras.cli import main
from inception_keras.summary import format_summary, paper_figure, summary_rows


def test_paper_figure_parsing_keeps_printed_precision():
    assert paper_figure("2.7K") == (2.7 * 1024, 0.05 * 1024)
    assert paper_figure("54M") == (54e6, 0.5e6)


def test_rows_follow_table_1_order():
    names = [r.name for r in summary_rows(ik.GoogLeNet())]
    assert names == [
        "conv1",
        "pool1",
        "norm1",
        "conv2",
        "norm2",
        "pool2",
        "inception_3a",
        "inception_3b",
        "pool3",
        "inception_4a",
        "inception_4b",
        "inception_4c",
        "inception_4d",
        "inception_4e",
        "pool4",
        "inception_5a",
        "inception_5b",
        "pool5",
        "dropout",
        "fc",
        "predictions",
    ]


def test_rows_are_read_from_the_live_model():
    rows = {r.name: r for r in summary_rows(ik.GoogLeNet(input_shape=(160, 160, 3), classes=10))}
    assert rows["conv2"].filters == {"3x3_reduce": 64, "3x3": 192} and rows["conv2"].depth == 2
    assert rows["inception_4e"].output == (10, 10, 832)
    assert rows["conv1"].patch == "7x7/2" and rows["pool5"].patch == "5x5/1"
    assert rows["fc"].params == 1024 * 10
    # Paper ops are for 224x224; fc's paper figures for 1000 classes: not compared here.
    assert rows["inception_3a"].paper_ops is None and rows["inception_3a"].paper_params == "159K"
    assert rows["fc"].paper_params is None


def test_summary_reports_where_the_paper_disagrees():
    text = format_summary(ik.GoogLeNet(include_aux=True))
    assert "Total (inference, no aux heads): 6,990,272 weights" in text
    assert "1,582,671,872 multiply-adds (1.58G)" in text
    notes = text.split("disagrees")[1]
    noted = {line.split(":")[0].strip() for line in notes.splitlines()[1:]}
    # conv1 badly, 4c params ~7%, 5a params and ops ~5%; nothing else beyond 2% and rounding.
    assert noted == {"conv1", "inception_4c", "inception_5a"}
    assert "inception_4c: params 498K vs the paper's 463K (+7.5%)" in notes
    assert "aux on 4a *" in text and "Aux heads (* training only)" in text


def test_cli_summary(capsys):
    assert (
        main(["summary", "--variant", "bn", "--image-size", "96", "--classes", "6", "--aux"]) == 0
    )
    out = capsys.readouterr().out
    assert "googlenet: input (96, 96, 3)" in out
    assert "norm1" not in out  # the bn variant has no LRN
    assert "aux2" in out


def test_cli_bad_input_is_a_message_not_a_traceback(capsys):
    assert main(["summary", "--input-size", "20"]) == 2
    err = capsys.readouterr().err
    assert "error: `input_shape` (20, 20, 3) is too small" in err
    assert "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["summary", "--variant", "vgg"])
