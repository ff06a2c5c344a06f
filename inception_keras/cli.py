"""The ``inception-keras`` command: a thin layer over the Python API.

Each sub-command parses its arguments and calls one API function; nothing else lives here.
"""

import argparse
import sys


def _summary(args):
    from inception_keras.model import GoogLeNet
    from inception_keras.summary import print_summary

    model = GoogLeNet(
        input_shape=(args.input_size, args.input_size, 3),
        classes=args.classes,
        aux_logits=args.aux,
        variant=args.variant,
    )
    print_summary(model)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="inception-keras",
        description="GoogLeNet / Inception v1 (Szegedy et al., CVPR 2015) for Keras 3 on TensorFlow.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    summary = commands.add_parser(
        "summary", help="print Table 1 of the paper computed from a freshly built model",
        description="Build the network and print the paper's Table 1 columns computed from the "
        "live model, with the paper's published params and ops beside ours.",
    )
    summary.add_argument("--variant", choices=("paper", "bn"), default="paper",
                         help="'paper' (Table 1 with LRN, default) or 'bn' (BatchNorm, no LRN)")
    summary.add_argument("--input-size", type=int, default=224, metavar="PIXELS",
                         help="square input size (default 224, at least 32)")
    summary.add_argument("--classes", type=int, default=1000, help="number of classes (default 1000)")
    summary.add_argument("--aux", action="store_true", help="include the two auxiliary classifiers")
    summary.set_defaults(func=_summary)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ValueError as error:  # bad arguments or input: a message, not a traceback
        print(f"inception-keras {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
