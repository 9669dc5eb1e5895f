import pytest

from kiln.errors import InvalidParameterValue
from kiln.paging import decode_page_token, encode_page_token


def test_round_trip() -> None:
    assert decode_page_token(None) == 0
    assert decode_page_token(encode_page_token(42)) == 42


@pytest.mark.parametrize("token", ["garbage!", "e30", encode_page_token(-1), "eyJvIjogImEifQ"])
def test_forged_tokens_are_400(token: str) -> None:
    with pytest.raises(InvalidParameterValue):
        decode_page_token(token)
