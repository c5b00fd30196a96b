"""Counting messages that never arrived, from the publisher's ``seq`` per topic.

A publisher that numbers its messages on each topic 0, 1, 2, ... (the optional ``seq`` field of
the default payload convention) lets the twin see a loss no broker reports: a broker queue that
overflowed while the twin was away (mosquitto drops beyond ``max_queued_messages``, 1000 by
default), a broker restarted without persistence, a QoS 0 hop. Per topic:

- ``seq`` above the highest seen + 1: the numbers in between are counted ``lost``;
- ``seq`` equal to or below the highest seen is a redelivery (QoS 1 is at-least-once) unless the
  publisher evidently started again: a lower ``seq`` that is not flagged DUP and carries a newer
  device time than the highest one's (or no time at all) is counted in ``seq_resets`` and counting
  restarts from it.

MQTT keeps the order of one publisher's QoS 1 messages on a topic, so a late message that fills a
gap already counted does not happen through one broker; if it did, it would stay counted lost.
"""

from __future__ import annotations

import logging
from collections import Counter

log = logging.getLogger(__name__)


class SeqTracker:
    #: topics kept; past it the oldest is forgotten (its next message restarts counting, no loss counted)
    MAX_TOPICS = 100_000
    #: topics named in ``lost_by_topic``; losses on others are summed under OTHER
    MAX_REPORTED = 1000
    OTHER = "(other topics)"

    def __init__(self, source: str):
        self.source = source
        self.lost = 0
        self.resets = 0
        self.lost_by_topic: Counter[str] = Counter()
        self._last: dict[str, tuple[int, float | None]] = {}  # topic -> (highest seq, its device time)

    def see(self, topic: str, seq: int, ts: float | None, dup: bool = False) -> None:
        last = self._last.get(topic)
        if last is None:
            if len(self._last) >= self.MAX_TOPICS:
                del self._last[next(iter(self._last))]
            self._last[topic] = (seq, ts)
            return
        high, high_ts = last
        if seq == high + 1:
            self._last[topic] = (seq, ts)
        elif seq > high:
            self._count_lost(topic, seq - high - 1, high, seq)
            self._last[topic] = (seq, ts)
        elif seq < high and not dup and (ts is None or high_ts is None or ts > high_ts):
            self.resets += 1
            if self.resets <= 5 or self.resets % 1000 == 0:
                log.info("%s: publisher of %r started again at seq %d (after %d); counting restarts there",
                         self.source, topic, seq, high)
            self._last[topic] = (seq, ts)
        # else: a redelivery of a message already seen

    def _count_lost(self, topic: str, n: int, high: int, seq: int) -> None:
        before = self.lost
        self.lost += n
        key = topic if topic in self.lost_by_topic or len(self.lost_by_topic) < self.MAX_REPORTED else self.OTHER
        self.lost_by_topic[key] += n
        if before == 0 or before // 1000 != self.lost // 1000:
            log.warning("%s: %d messages lost on %r (seq %d after %d); %d lost in all",
                        self.source, n, topic, seq, high, self.lost)

    def highest(self) -> dict[str, int]:
        """topic -> the highest seq seen (since the publisher's last restart)."""
        return {topic: high for topic, (high, _) in self._last.items()}

    def as_dict(self) -> dict:
        return {"lost": self.lost, "lost_by_topic": dict(self.lost_by_topic.most_common()), "seq_resets": self.resets}
