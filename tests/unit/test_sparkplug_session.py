"""Host-side Sparkplug sessions: births and aliases, seq checks with the Reorder Timeout and rebirth
requests, deaths matched by bdSeq (Eclipse Sparkplug 3.0.0, sections 4-6)."""

from __future__ import annotations

from support.sparkplug_edge import (
    BOOLEAN,
    DOUBLE,
    INT64,
    STRING,
    UINT64,
    metric,
    payload,
)

from connectors.sparkplug.session import Sessions, Topic, parse_topic

G, N = "plant", "line1"
NBIRTH = Topic(G, "NBIRTH", N, None)
NDEATH = Topic(G, "NDEATH", N, None)
NDATA = Topic(G, "NDATA", N, None)


def dtopic(kind: str, device: str = "printer") -> Topic:
    return Topic(G, kind, N, device)


def nbirth(bd_seq: int = 0, seq: int = 0, ts_ms: int = 1_000_000) -> bytes:
    return payload([metric("bdSeq", bd_seq, UINT64), metric("Node Control/Rebirth", False, BOOLEAN),
                    metric("Temp", 21.5, DOUBLE, alias=1)], ts_ms=ts_ms, seq=seq)


def dbirth(seq: int, device_alias: int = 10) -> bytes:
    return payload([metric("State", "IDLE", STRING, alias=device_alias),
                    metric("Counters/good", 0, INT64, alias=device_alias + 1)], ts_ms=1_000_000, seq=seq)


def ddata(seq: int, good: int, alias: int = 11) -> bytes:
    return payload([metric(None, good, None, alias=alias, ts_ms=2_000_000, value_datatype=INT64)], seq=seq)


def born(reorder_timeout_s: float = 0.0) -> Sessions:
    s = Sessions(reorder_timeout_s=reorder_timeout_s, rebirth_interval_s=5.0)
    s.handle(NBIRTH, nbirth(), 0.0)
    s.handle(dtopic("DBIRTH"), dbirth(1), 0.0)
    return s


def test_topics_of_the_namespace():
    assert parse_topic("spBv1.0/plant/NDATA/line1") == Topic("plant", "NDATA", "line1", None)
    assert parse_topic("spBv1.0/plant/DDATA/line1/printer") == Topic("plant", "DDATA", "line1", "printer")
    for bad in ("spBv1.0/plant/NDATA/line1/printer",  # a node message with a device level
                "spBv1.0/plant/DDATA/line1",  # a device message without one
                "spAv1.0/plant/NDATA/line1", "spBv1.0/plant/XDATA/line1", "spBv1.0//NDATA/line1",
                "spBv1.0/STATE/host"):
        assert parse_topic(bad) is None, bad


def test_births_declare_metrics_and_data_by_alias_resolves_to_their_names():
    s = Sessions()
    out = s.handle(NBIRTH, nbirth(bd_seq=3, ts_ms=1_000_000), 0.0)
    assert out.birth and out.payload_ts == 1000.0 and not out.rejected
    assert [(r.device, r.name, r.value.raw) for r in out.readings] == [
        (None, "bdSeq", 3), (None, "Node Control/Rebirth", False), (None, "Temp", 21.5)]
    assert s.nodes[(G, N)].bd_seq == 3
    out = s.handle(dtopic("DBIRTH"), dbirth(1), 0.0)
    assert [(r.device, r.name, r.value.raw) for r in out.readings] == [("printer", "State", "IDLE"),
                                                                      ("printer", "Counters/good", 0)]
    out = s.handle(dtopic("DDATA"), ddata(2, good=5), 0.0)
    assert not out.rejected and not out.rebirth
    assert [(r.device, r.name, r.value.raw, r.value.ts) for r in out.readings] == [("printer", "Counters/good", 5, 2000.0)]
    assert s.online() == {"nodes_online": 1, "devices_online": 1}


def test_seq_wraps_from_255_to_0_without_a_gap():
    s = born()
    node = s.nodes[(G, N)]
    node.next_seq = 254
    for seq in (254, 255, 0, 1):
        out = s.handle(dtopic("DDATA"), ddata(seq, good=seq), 0.0)
        assert not out.rebirth and not out.rejected
    assert s.counts["seq_gaps"] == 0 and node.next_seq == 2


def test_a_gap_asks_for_a_rebirth_at_once_with_no_reorder_timeout():
    s = born(reorder_timeout_s=0.0)
    out = s.handle(dtopic("DDATA"), ddata(4, good=9), 10.0)  # 2 and 3 never came
    assert out.rebirth and [r.value.raw for r in out.readings] == [9]  # the values are read all the same
    assert (s.counts["seq_gaps"], s.counts["seq_missed"], s.counts["rebirth_requests"]) == (1, 2, 1)
    # a second gap within rebirth_interval_s (5 s) asks nothing more: the first request stands
    out = s.handle(dtopic("DDATA"), ddata(7, good=10), 12.0)
    assert not out.rebirth and s.counts["rebirths_held"] == 1
    # the node is reborn: seq starts over at 0 and the picture is whole again
    s.handle(NBIRTH, nbirth(), 13.0)
    assert s.nodes[(G, N)].missing == set() and s.nodes[(G, N)].rebirth_at is None


def test_a_late_message_within_the_reorder_timeout_closes_the_gap():
    s = born(reorder_timeout_s=2.0)
    out = s.handle(dtopic("DDATA"), ddata(3, good=3), 100.0)  # 2 missing: the window opens at t=100
    assert not out.rebirth and s.nodes[(G, N)].missing == {2}
    out = s.handle(dtopic("DDATA"), ddata(2, good=2), 101.0)  # arrives 1 s late
    assert not out.rebirth and s.counts["late_messages"] == 1 and s.nodes[(G, N)].missing == set()
    assert s.due(103.0) == []


def test_the_reorder_timeout_elapsing_with_messages_missing_asks_for_a_rebirth():
    s = born(reorder_timeout_s=2.0)
    s.handle(dtopic("DDATA"), ddata(3, good=3), 100.0)
    assert s.due(101.9) == []  # 1.9 s < 2 s
    assert s.due(102.0) == [(G, N)]
    assert s.due(103.0) == []  # asked already; held until rebirth_interval_s has passed
    assert s.due(107.0) == [(G, N)]  # 5 s after the first request, still not reborn: ask again
    assert s.counts["rebirth_requests"] == 2


def test_data_before_any_birth_is_rejected_and_asks_for_one():
    s = Sessions()
    out = s.handle(NDATA, payload([metric("Temp", 1.0, DOUBLE)], seq=17), 0.0)
    assert out.rejected == [("before_birth", "no NBIRTH from this Edge Node in this session")]
    assert out.rebirth and not out.readings
    # a device with no DBIRTH in a born node's session
    s.handle(NBIRTH, nbirth(), 1.0)
    out = s.handle(dtopic("DDATA", "oven"), ddata(1, good=1), 1.0)
    assert out.rejected[0][0] == "before_birth" and "oven" in out.rejected[0][1]
    # asked 1 s ago, but the NBIRTH since answered that request: this is a new one
    assert out.rebirth and s.counts["rebirth_requests"] == 2 and s.counts["rebirths_held"] == 0


def test_unknown_alias_and_unknown_name_are_rejected_and_ask_for_a_rebirth():
    s = born()
    out = s.handle(dtopic("DDATA"), ddata(2, good=1, alias=99), 0.0)
    assert out.rejected == [("unknown_alias", "alias 99 was not declared at birth of device 'printer'")]
    assert out.rebirth
    s2 = born()
    out = s2.handle(dtopic("DDATA"), payload([metric("Counters/scrap", 1, INT64)], seq=2), 0.0)
    assert out.rejected[0][0] == "unknown_metric" and out.rebirth
    # a node-level alias used on a device message belongs to another metric set
    s3 = born()
    out = s3.handle(dtopic("DDATA"), ddata(2, good=1, alias=1), 0.0)
    assert out.rejected[0][0] == "unknown_alias"


def test_an_alias_taken_by_another_metric_of_the_node_is_a_conflict():
    s = Sessions()
    s.handle(NBIRTH, nbirth(), 0.0)  # alias 1 is the node's Temp
    out = s.handle(dtopic("DBIRTH"), dbirth(1, device_alias=1), 0.0)  # State claims 1 too
    assert out.rejected[0][0] == "alias_conflict" and "'Temp'" in out.rejected[0][1]
    assert [r.name for r in out.readings] == ["Counters/good"]


def test_a_death_ends_the_session_only_when_its_bdseq_matches_the_birth():
    s = Sessions()
    s.handle(NBIRTH, nbirth(bd_seq=5), 0.0)
    # the will of the previous connection (bdSeq 4) arrives after the new birth: not this session's end
    out = s.handle(NDEATH, payload([metric("bdSeq", 4, UINT64)]), 1.0)
    assert not out.died and s.counts["stale_deaths"] == 1 and s.nodes[(G, N)].born
    out = s.handle(NDEATH, payload([metric("bdSeq", 5, UINT64)]), 2.0)
    assert out.died and s.counts["deaths"] == 1 and not s.nodes[(G, N)].born
    out = s.handle(NDATA, payload([metric("Temp", 1.0, DOUBLE)], seq=1), 3.0)
    assert out.rejected[0][0] == "before_birth"


def test_a_device_death_ends_that_device_only():
    s = born()
    out = s.handle(dtopic("DDEATH"), payload([], seq=2), 0.0)
    assert out.died and s.counts["device_deaths"] == 1
    assert s.online() == {"nodes_online": 1, "devices_online": 0}
    out = s.handle(dtopic("DDATA"), ddata(3, good=1), 0.0)
    assert out.rejected[0][0] == "before_birth"


def test_bad_payloads_and_a_missing_seq_are_named():
    s = born()
    out = s.handle(dtopic("DDATA"), b"\xff\x00junk", 0.0)
    assert out.rejected[0][0] == "bad_protobuf" and not out.readings
    out = s.handle(dtopic("DDATA"), payload([metric(None, 1, None, alias=11, value_datatype=INT64)]), 0.0)
    assert out.rejected == [("bad_seq", "no seq in 0..255")] and out.rebirth
    out = s.handle(dtopic("DDATA"), payload([metric(None, 1.5, None, alias=11, value_datatype=DOUBLE)], seq=2), 9.0)
    assert out.rejected[0][0] == "wrong_datatype"


def test_losing_the_broker_forgets_every_session():
    s = born()
    s.forget_all()
    assert s.online() == {"nodes_online": 0, "devices_online": 0}
    assert s.handle(dtopic("DDATA"), ddata(2, good=1), 0.0).rejected[0][0] == "before_birth"
