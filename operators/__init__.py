"""Operators: thin adapters that read params and call one ``core`` function each."""

from .attributes import OPERATORS as ATTRIBUTE_OPERATORS
from .curation import OPERATORS as CURATION_OPERATORS
from .index import BuildTextIndex

OPERATORS = [BuildTextIndex, *CURATION_OPERATORS, *ATTRIBUTE_OPERATORS]
