"""How the Firestore stores classify Firestore's failures (pure: the decorator on raising functions)."""

from __future__ import annotations

import pytest
from google.api_core import exceptions as gexc
from google.cloud.firestore_v1.base_transaction import _EXCEED_ATTEMPTS_TEMPLATE

from calsync import errors
from calsync.adapters.firestore.base import classified


def raising(exc: Exception):  # type: ignore[no-untyped-def]
    @classified
    def operation() -> None:
        raise exc

    return operation


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ValueError(_EXCEED_ATTEMPTS_TEMPLATE.format(5)), errors.StoreUnavailable),  # contention: retry
        (gexc.ServiceUnavailable("down"), errors.StoreUnavailable),
        (gexc.DeadlineExceeded("slow"), errors.StoreUnavailable),
        (gexc.InvalidArgument("bad path"), errors.InvalidRequest),  # bad input: final
        (ValueError("A document must have an even number of path elements"), errors.InvalidRequest),
    ],
)
def test_classification(exc: Exception, expected: type[errors.CalsyncError]) -> None:
    with pytest.raises(expected) as caught:
        raising(exc)()
    assert caught.value.retryable is (expected is errors.StoreUnavailable)
