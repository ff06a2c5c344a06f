"""The naive inception module (Figure 2(a) of the paper), the "naive" variant built from it, and
the comparison with Table 1's network (``inception-keras summary --compare-naive``)."""

import math
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import inception_keras as ik
from inception_keras.architecture import VARIANTS
from inception_keras.cli import build_parser, main
from inception_keras.naive import ALEXNET_PARAMS, compare_naive, format_comparison
from inception_keras.summary import format_summary, summary_rows

# Table 1's blocks, typed in here independently of the package:
# (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj).
TABLE_1 = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
STAGE = {"3": 8, "4": 16, "5": 32}  # a block's stride relative to the input


def conv_params(k, cin, cout):
    return k * k * cin * cout + cout


def table_counts(naive, size=224, classes=1000):
    """(all parameters, weights, multiply-adds, {block: output depth}) of the paper variant with
    reduced or naive blocks, from the table above. The paper variant's sizes: conv1 at size / 2,
    conv2 at size / 4, then the pools halve (rounding up) to the blocks' size / 8, 16, 32."""
    convs = [(7, 3, 64, math.ceil(size / 2)), (1, 64, 64, math.ceil(size / 4))]
    convs.append((3, 64, 192, math.ceil(size / 4)))
    cin, depths = 192, {}
    for name, (n1, r3, n3, r5, n5, pp) in TABLE_1.items():
        hw = math.ceil(size / STAGE[name[0]])
        if naive:
            convs += [(1, cin, n1, hw), (3, cin, n3, hw), (5, cin, n5, hw)]
            cin = n1 + n3 + n5 + cin  # the pool branch carries the input's channels
        else:
            convs += [(1, cin, n1, hw), (1, cin, r3, hw), (3, r3, n3, hw)]
            convs += [(1, cin, r5, hw), (5, r5, n5, hw), (1, cin, pp, hw)]
            cin = n1 + n3 + n5 + pp
        depths[name] = cin
    weights = sum(k * k * a * b for k, a, b, _ in convs) + cin * classes
    ops = sum(k * k * a * b * hw * hw for k, a, b, hw in convs) + cin * classes
    params = sum(conv_params(k, a, b) for k, a, b, _ in convs) + cin * classes + classes
    return params, weights, ops, depths


@pytest.fixture(scope="module")
def naive_224():
    return ik.GoogLeNet(variant="naive")


@pytest.fixture(scope="module")
def comparison():
    return compare_naive()


def test_naive_block_parameters_depth_and_names():
    inputs = keras.Input((28, 28, 192))
    out = ik.inception_block(inputs, (64, 96, 128, 16, 32, 32), name="blk", naive=True)
    block = keras.Model(inputs, out)
    # #1x1 + #3x3 + #5x5 + the input's depth; the reduce and pool proj counts are not used.
    assert tuple(out.shape[1:]) == (28, 28, 64 + 128 + 32 + 192)
    assert block.count_params() == (
        1 * 1 * 192 * 64 + 64 + 3 * 3 * 192 * 128 + 128 + 5 * 5 * 192 * 32 + 32
    )
    names = {layer.name for layer in block.layers}
    assert {"blk_1x1", "blk_3x3", "blk_5x5", "blk_pool", "blk"} <= names
    assert not any(n.endswith(("_reduce", "_proj")) for n in names)
    for suffix, kernel in (("1x1", 1), ("3x3", 3), ("5x5", 5)):
        layer = block.get_layer(f"blk_{suffix}")
        assert layer.kernel_size == (kernel, kernel) and layer.input.shape[-1] == 192
        assert layer.activation is keras.activations.relu


def test_naive_pool_branch_is_the_unprojected_max_pool():
    inputs = keras.Input((9, 9, 5))
    block = keras.Model(inputs, ik.inception_block(inputs, (2, 1, 3, 1, 4, 1), naive=True))
    x = np.random.default_rng(0).normal(size=(2, 9, 9, 5)).astype("float32")
    out = keras.ops.convert_to_numpy(block(x))
    assert out.shape == (2, 9, 9, 2 + 3 + 4 + 5)
    pooled = tf.nn.max_pool2d(x, 3, 1, "SAME").numpy()
    np.testing.assert_array_equal(out[..., -5:], pooled)


def test_reduced_block_is_the_default_and_naive_false():
    for kwargs in ({}, {"naive": False}):
        inputs = keras.Input((28, 28, 192))
        out = ik.inception_block(inputs, (64, 96, 128, 16, 32, 32), name="b", **kwargs)
        model = keras.Model(inputs, out)
        assert out.shape[-1] == 256
        assert model.get_layer("b_3x3_reduce").filters == 96
        assert model.get_layer("b_pool_proj").filters == 32
    with pytest.raises(ValueError, match="`naive`"):
        ik.inception_block(keras.Input((8, 8, 4)), (1, 1, 1, 1, 1, 1), naive="yes")


def test_naive_variant_differs_from_paper_only_in_its_blocks():
    paper, naive = VARIANTS["paper"], VARIANTS["naive"]
    assert naive.naive_blocks and not paper.naive_blocks
    assert {k: v for k, v in vars(naive).items() if k not in ("name", "naive_blocks")} == {
        k: v for k, v in vars(paper).items() if k not in ("name", "naive_blocks")
    }


@pytest.mark.slow
def test_naive_network_counts_against_table_1(naive_224):
    params, weights, ops, depths = table_counts(naive=True)
    assert naive_224.count_params() == params
    rows = summary_rows(naive_224)
    assert sum(r.params for r in rows) == weights
    assert sum(r.ops for r in rows) == ops
    for name, depth in depths.items():
        hw = 224 // STAGE[name[0]]
        assert tuple(naive_224.get_layer(f"inception_{name}").output.shape[1:]) == (hw, hw, depth)
    assert depths["5b"] == 4944  # the depth grows with every block
    # The paper variant's stem, LRN, pools and head are all there.
    names = {layer.name for layer in naive_224.layers}
    assert {"conv1_pad", "norm1", "norm2", "pool4", "pool5", "dropout", "fc"} <= names
    assert tuple(naive_224.get_layer("conv1").output.shape[1:]) == (112, 112, 64)


@pytest.mark.slow
def test_naive_summary_compares_only_the_stem_with_the_paper(naive_224):
    rows = {r.name: r for r in summary_rows(naive_224)}
    assert rows["inception_3a"].type == "naive inception (3a)" and rows["inception_3a"].naive
    assert rows["inception_3a"].filters == {"1x1": 64, "3x3": 128, "5x5": 32}
    assert rows["conv2"].paper_params == "112K"
    assert all(rows[f"inception_{n}"].paper_params is None for n in TABLE_1)
    assert rows["fc"].paper_params is None
    text = format_summary(naive_224, list(rows.values()))
    assert "Naive inception blocks" in text


def test_naive_variant_with_aux_heads_and_a_small_input():
    model = ik.GoogLeNet(variant="naive", input_shape=(64, 64, 3), classes=3, include_aux=True)
    assert [tuple(o.shape) for o in model.outputs] == [(None, 3)] * 3
    out = model(np.random.default_rng(1).uniform(0, 255, (1, 64, 64, 3)).astype("float32"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out[0]).sum(), 1.0, rtol=1e-5)


def test_naive_has_no_published_weights():
    with pytest.raises(ValueError, match="`weights`.*'naive'"):
        ik.GoogLeNet(variant="naive", weights="imagenet")


@pytest.mark.slow
def test_compare_naive_reads_the_live_models(comparison, naive_224):
    paper = ik.GoogLeNet()
    live = {"reduced": (paper, summary_rows(paper)), "naive": (naive_224, summary_rows(naive_224))}
    assert [r.name for r in comparison.rows] == (
        ["conv1", "conv2"] + [f"inception_{n}" for n in TABLE_1] + ["fc"]
    )
    for network, (model, rows) in live.items():
        by_name = {r.name: r for r in rows}
        for row in comparison.rows:
            ours, theirs = getattr(row, network), by_name[row.name]
            assert (ours.params, ours.ops, ours.output) == (
                theirs.params,
                theirs.ops,
                theirs.output,
            )
        assert comparison.total(network, "params") == sum(r.params for r in rows)
        assert comparison.total(network, "ops") == sum(r.ops for r in rows)
        assert getattr(comparison, f"{network}_parameters") == model.count_params()
        assert comparison.alexnet_ratio(network) == ALEXNET_PARAMS / model.count_params()
    # The ratios are what the figures give, and the figures what Table 1 gives.
    (r_params, r_weights, r_ops, _), (n_params, n_weights, n_ops, _) = (
        table_counts(naive=False),
        table_counts(naive=True),
    )
    assert comparison.ratio("params") == pytest.approx(n_weights / r_weights, rel=1e-12)
    assert comparison.ratio("ops") == pytest.approx(n_ops / r_ops, rel=1e-12)
    assert comparison.alexnet_ratio("reduced") == pytest.approx(60e6 / r_params, rel=1e-12)
    assert comparison.alexnet_ratio("naive") == pytest.approx(60e6 / n_params, rel=1e-12)
    block = comparison.rows[2]  # inception_3a: 28x28, the same positions for every convolution
    assert (
        block.ratio("params")
        == block.ratio("ops")
        == pytest.approx(
            (64 * 192 + 9 * 192 * 128 + 25 * 192 * 32)
            / (64 * 192 + 96 * 192 + 9 * 96 * 128 + 16 * 192 + 25 * 16 * 32 + 32 * 192)
        )
    )


@pytest.mark.slow
def test_compare_naive_text(comparison):
    text = format_comparison(comparison)
    params, weights, ops, _ = table_counts(naive=True)
    assert f"(a) naive:           {weights:,} weights" in text and f"{ops:,} multiply-adds" in text
    assert f"{comparison.ratio('params'):.2f}x the weights" in text
    assert f"AlexNet / (b): {60e6 / comparison.reduced_parameters:.2f}x" in text
    assert f"AlexNet / (a): {60e6 / params:.2f}x ({params:,} parameters" in text
    lines = text.splitlines()
    assert lines[1].split()[0] == "name" and lines[-1].startswith("AlexNet / (a)")
    row = next(line for line in lines if line.startswith("inception_3a"))
    assert row.split()[:3] == ["inception_3a", "256", "416"]
    total = next(line for line in lines if line.startswith("total"))
    assert total.split()[-2:] == [f"{ops / 1e6:.0f}M", f"{comparison.ratio('ops'):.2f}x"]


def test_summary_variant_choices_are_the_variants():
    parser = build_parser()
    summary = parser._subparsers._group_actions[0].choices["summary"]
    (action,) = [a for a in summary._actions if a.dest == "variant"]
    assert tuple(action.choices) == tuple(VARIANTS) and "naive" in action.choices


def test_compare_naive_rejects_variant_and_aux(capsys):
    assert main(["summary", "--compare-naive", "--variant", "bn"]) == 2
    assert main(["summary", "--compare-naive", "--aux"]) == 2
    err = capsys.readouterr().err
    assert "`--variant` does not apply with --compare-naive" in err
    assert "`--aux` does not apply" in err and "Traceback" not in err


@pytest.mark.slow
def test_cli_compare_naive_prints_the_table():
    command = [sys.executable, "-m", "inception_keras.cli", "summary", "--compare-naive"]
    result = subprocess.run(command + ["--image-size", "96"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("GoogLeNet, (b) with 1x1 reductions (Table 1) vs (a) naive modules")
    assert "input (96, 96, 3), 1000 classes" in out
    _, weights, ops, depths = table_counts(naive=True, size=96)
    assert f"{weights:,} weights" in out and f"{ops:,} multiply-adds" in out
    row = next(line for line in out.splitlines() if line.startswith("inception_5b"))
    assert row.split()[1:3] == ["1024", str(depths["5b"])]
    assert "AlexNet / (b)" in out and "AlexNet / (a)" in out
