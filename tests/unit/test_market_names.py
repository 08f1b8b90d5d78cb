"""Market-1501 file names and the attribute file, without a database."""

from person_finder.core.curation.market import (
    MarketName,
    parse_market_name,
    read_market_attributes,
)
from person_finder.testing import synthetic


def test_parse_market_name():
    assert parse_market_name("0002_c1s1_000451_03.jpg") == MarketName(2, 1, 1, 451, 3)
    assert parse_market_name("-1_c3s2_000100_01.jpg").person_id == -1
    assert parse_market_name("0002_c1.jpg") is None
    assert parse_market_name("2_1.jpg") is None


def test_attribute_file_round_trip(market_folder, market_attribute_file):
    path = market_attribute_file
    attrs = read_market_attributes(path)
    assert set(attrs) == set(market_folder.specs)
    for pid, spec in market_folder.specs.items():
        assert attrs[pid] == synthetic.market_attributes(spec)
