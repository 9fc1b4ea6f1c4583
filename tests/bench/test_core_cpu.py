"""The core CPU bench measures every record through the receiver and the core, none lost."""

from __future__ import annotations

from bench.core_cpu import LINGER_S, MONO0, _stream, one


def test_the_stream_is_in_sender_sized_groups_in_time_order() -> None:
    groups = _stream(0.2)
    ends = [end for end, _ in groups]
    assert ends == sorted(ends)
    for end, records in groups:
        # Each group is one radio's records within one linger window that ends at ``end``.
        assert len({type(r) for r in records}) == 1
        assert all(end - LINGER_S - 1e-9 <= r.mono < end + 1e-9 for r in records)
    assert sum(len(r) for _, r in groups) == 1000 + 200 + 50
    assert min(r.mono for _, rs in groups for r in rs) == MONO0


def test_every_record_sent_is_handled_by_the_core() -> None:
    result = one(0.3)
    assert result["records"] == result["handled"] == 1500 + 300 + 75
    assert result["messages"] < result["records"] / 5  # batched as a sender batches them
    assert 0 < result["decode_us_per_record"] < result["us_per_record"]
