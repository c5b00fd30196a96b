"""A machine with a standby policy: after ``after_s`` of idle time it drops to standby power, and the
next part first waits ``wake_s`` to wake it up.

Rules (docs/model-energy-policies.md gives the reasons):

- Idle means the ISO 22400 ADOT states: STARVED, BLOCKED, IDLE (available, nothing to do). The idle
  time that counts toward ``after_s`` is one unbroken spell of those states: STARVED then BLOCKED
  is one spell. PLANNED_STOP, NO_SHIFT, DOWN and any work end the spell, and end standby: breaks and
  off-shift time draw their own configured power, as without the policy.
- In standby the state shown does not change (a starved machine in standby is still STARVED, ADOT);
  only its power does, and the energy counter is written at the moment it changes.
- The next part taken in standby first spends ``wake_s`` of working time in SETUP (ISO 22400 ASUT:
  preparing the unit for the job), drawing ``wake_kwh`` evenly over it, or the setup power. Like any
  setup it only progresses on shift and counts as busy time for the failure clock.

One check per machine is pending at a time (at the earliest moment the current spell could reach
``after_s``), not one timer per idle spell: short starved gaps between parts cost no extra events.
"""

from __future__ import annotations

from factory_models.states import State

from twin.model.station import ENERGY, SETUP, Machine

IDLE_STATES = frozenset((int(State.STARVED), int(State.BLOCKED), int(State.IDLE)))


class StandbyMachine(Machine):
    """A ``Machine`` whose station has ``standby:``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        policy = self.spec.standby
        self.after_s, self.wake_s = policy.after_s, policy.wake_s
        normal = self.kw_by_state
        self.kw_normal = normal
        self.kw_asleep = [policy.power_kw if s in IDLE_STATES else kw for s, kw in enumerate(normal)]
        self.kw_waking = list(normal)
        if policy.wake_kwh is not None and policy.wake_s > 0:
            self.kw_waking[SETUP] = policy.wake_kwh * 3600.0 / policy.wake_s
        self.wakes = 0  # wake-ups so far
        self.standby_s = 0.0  # seconds spent in standby so far (closed spells)
        self._asleep_at = 0.0
        self.idle_since: float | None = self.env.now if self.state in IDLE_STATES else None
        self._check_pending = False
        if self.idle_since is not None:
            self._arm(self.after_s)

    # --- the idle clock -------------------------------------------------------------------------

    def show(self, code: int) -> None:
        if code == self.state:
            return
        idle = code in IDLE_STATES
        if not idle and self.asleep:
            self._leave_standby()
        Machine.show(self, code)
        if not idle:
            self.idle_since = None
        elif self.idle_since is None:
            self.idle_since = self.env.now
            if not self._check_pending:
                self._arm(self.after_s)

    def _arm(self, delay: float) -> None:
        self._check_pending = True
        self.env.timeout(delay).callbacks.append(self._check)

    def _check(self, _event) -> None:
        """The earliest time the current idle spell could reach ``after_s``: doze, or look again later."""
        self._check_pending = False
        if self.idle_since is None or self.asleep:
            return
        now = self.env.now
        left = self.idle_since + self.after_s - now
        if left > 1e-9:  # a later spell than the one that armed this check
            self._arm(left)
            return
        self.asleep = True
        self._asleep_at = now
        self.kw_by_state = self.kw_asleep
        self._repower()

    def _leave_standby(self) -> None:
        self.asleep = False
        self.standby_s += self.env.now - self._asleep_at
        self.kw_by_state = self.kw_normal

    def _repower(self) -> None:
        """The power of the state shown changed without a state change: book the energy so far."""
        now = self.env.now
        kw = self.kw_by_state[self.state]
        if kw == self.kw:
            return
        self.energy_kws += self.kw * (now - self.t_state)
        self.rec.step_power(now, kw - self.kw)
        self.kw, self.t_state = kw, now
        self.rec.count(self.t0 + now, self.unit, ENERGY, self.energy_kws / 3600.0)

    # --- the wake-up ----------------------------------------------------------------------------

    def wake(self):
        """Called by ``run`` when a part is taken in standby: ``wake_s`` of SETUP at the wake power."""
        self._leave_standby()
        self.wakes += 1
        if self.wake_s > 0.0:
            self.kw_by_state = self.kw_waking
            try:
                yield from self._hold(self.wake_s, SETUP)
            finally:
                self.kw_by_state = self.kw_normal
            self._repower()  # a product-change setup that follows stays in SETUP at its own power
