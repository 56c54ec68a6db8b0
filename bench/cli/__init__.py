"""The command line (``python -m bench``): the only package that parses arguments or prints for humans."""

from bench.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
