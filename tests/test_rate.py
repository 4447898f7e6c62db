"""Rate limits: a token bucket's average and burst, a log that writes a bounded number of lines."""

import logging
import math

import pytest

from bridge.control.rate import LimitedLog, TokenBucket
from models.errors import ParameterError


def test_the_bucket_lets_through_its_rate_and_its_burst():
    now = [0.0]
    bucket = TokenBucket(rate_per_s=100.0, burst=10, clock=lambda: now[0])
    assert sum(bucket.take() for _ in range(50)) == 10  # the burst, then nothing at the same instant
    passed = 0
    for _ in range(1000):  # 1 s at 1000 attempts a second
        now[0] += 0.001
        passed += bucket.take()
    assert 99 <= passed <= 101
    assert all(TokenBucket(rate_per_s=math.inf, burst=1).take() for _ in range(10_000))


@pytest.mark.parametrize("kwargs", [{"rate_per_s": 0, "burst": 1}, {"rate_per_s": 10, "burst": 0.5},
                                    {"rate_per_s": float("nan"), "burst": 1}, {"rate_per_s": True, "burst": 1}])
def test_bad_buckets_are_refused(kwargs):
    with pytest.raises(ParameterError):
        TokenBucket(**kwargs)


def test_a_flood_of_lines_is_cut_to_the_limit_and_counted(caplog):
    logger = logging.getLogger("imgsonic.test-rate")
    limited = LimitedLog(logger, lines_per_s=5)
    with caplog.at_level(logging.INFO, logger="imgsonic.test-rate"):
        for index in range(1000):
            limited(logging.INFO, "line %d", index)
    assert len(caplog.records) == 5 and limited.suppressed_total == 995
