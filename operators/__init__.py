"""Operators: thin adapters that read params and call one ``core`` function each."""

from .index import BuildTextIndex

OPERATORS = [BuildTextIndex]
