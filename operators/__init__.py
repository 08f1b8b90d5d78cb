"""Operators: thin adapters that read params and call one ``core`` function each."""

from .attributes import OPERATORS as ATTRIBUTE_OPERATORS
from .curation import OPERATORS as CURATION_OPERATORS
from .index import BuildTextIndex
from .search import IndexPersons, SearchPersons
from .training import EvaluateMatchers, FinetuneMatcher

OPERATORS = [BuildTextIndex, IndexPersons, SearchPersons, *CURATION_OPERATORS, *ATTRIBUTE_OPERATORS, FinetuneMatcher,
             EvaluateMatchers]
