"""Operators: thin adapters over ``core``, one file per pipeline stage (curation, attributes, training, search,
identities, live)."""

from .attributes import OPERATORS as ATTRIBUTE_OPERATORS
from .curation import OPERATORS as CURATION_OPERATORS
from .identities import OPERATORS as IDENTITY_OPERATORS
from .live import OPERATORS as LIVE_OPERATORS
from .search import BuildTextIndex, IndexPersons, SearchPersons, VerifyPersons
from .training import EvaluateMatchers, FinetuneMatcher

OPERATORS = [BuildTextIndex, IndexPersons, SearchPersons, VerifyPersons, *CURATION_OPERATORS, *ATTRIBUTE_OPERATORS,
             FinetuneMatcher, EvaluateMatchers, *IDENTITY_OPERATORS, *LIVE_OPERATORS]
