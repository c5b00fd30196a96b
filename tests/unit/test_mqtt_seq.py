"""Gaps in the publisher's seq are counted as lost messages; redeliveries and restarts are not."""

from connectors.mqtt.seq import SeqTracker

T0 = 1767571200.0


def test_gaps_are_counted_exactly_per_topic():
    t = SeqTracker("meters")
    for k in [0, 1, 2, 5, 6, 10]:  # 3, 4 and 7, 8, 9 missing
        t.see("a", k, T0 + k)
    for k in [100, 101, 103]:  # counting starts at the first seq seen: 102 missing
        t.see("b", k, T0 + k)
    assert t.as_dict() == {"lost": 6, "lost_by_topic": {"a": 5, "b": 1}, "seq_resets": 0}


def test_redeliveries_are_not_resets_and_not_losses():
    t = SeqTracker("meters")
    for k in range(5):
        t.see("a", k, T0 + k)
    t.see("a", 4, T0 + 4)  # the same message again
    t.see("a", 2, T0 + 2, dup=True)  # a flagged redelivery
    t.see("a", 3, T0 + 3)  # an unflagged one: its device time is not newer
    t.see("a", 5, T0 + 5)
    assert t.as_dict() == {"lost": 0, "lost_by_topic": {}, "seq_resets": 0}


def test_a_restarted_publisher_is_a_reset_and_counting_goes_on_from_it():
    t = SeqTracker("meters")
    for k in range(50):
        t.see("a", k, T0 + k)
    for k in [0, 1, 3]:  # started again (newer times); then 2 is lost
        t.see("a", k, T0 + 100 + k)
    assert t.as_dict() == {"lost": 1, "lost_by_topic": {"a": 1}, "seq_resets": 1}
    t.see("a", 0, None)  # no device time: a lower seq is a restart
    assert t.resets == 2


def test_the_topics_named_are_bounded():
    t = SeqTracker("meters")
    t.MAX_REPORTED = 2
    for name in "abcd":
        t.see(name, 0, T0)
        t.see(name, 2, T0 + 1)
    assert t.as_dict()["lost_by_topic"] == {"a": 1, "b": 1, SeqTracker.OTHER: 2} and t.lost == 4
