"""The v3 footprint filters, shared by ListFootprints and the RequestCreated event.

PACT Technical Specifications v3.0 (``spec/v3/openapi.yaml``, components.parameters, the criteria of
``GET /3/footprints`` and of ``RequestCreatedEvent.data``):

- ``productId``, ``companyId``, ``classification``: URNs, matched case-insensitively against the
  footprint's ``productIds``, ``companyIds``, ``productClassifications``;
- ``geography``: matched case-insensitively against ``pcf.geographyCountry``,
  ``pcf.geographyRegionOrSubregion`` or ``pcf.geographyCountrySubdivision``;
- ``validOn``: validityPeriodStart <= validOn <= validityPeriodEnd; ``validAfter``:
  validityPeriodStart > validAfter; ``validBefore``: validityPeriodEnd < validBefore; a footprint
  without a validity period is valid from its ``referencePeriodEnd`` for 3 years (spec/v3/index.md,
  Validity Period);
- ``status``: ``Active`` or ``Deprecated``, case-insensitive. Another value matches no footprint
  (the conformance test case #37 expects an empty list, not an error).

Several values of one filter are OR-ed, different filters AND-ed. A value of the wrong type (an
empty or non-text value, a date that is not an RFC 3339 date-time with an offset) or an unknown
filter name is a ``FilterError``: the API answers it with ``BadRequest``. An id that is not a URN is
text all the same and matches no footprint (ids served are URNs): the conformance test case #29
ORs a real company id with random non-URN strings and expects 200.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

FILTERS = ("productId", "companyId", "geography", "classification", "validOn", "validAfter", "validBefore", "status")
_URN_FILTERS = {"productId": "productIds", "companyId": "companyIds", "classification": "productClassifications"}
_GEOGRAPHY = ("geographyCountry", "geographyRegionOrSubregion", "geographyCountrySubdivision")


class FilterError(ValueError):
    """A filter the v3 API cannot apply; its message names the filter and the value."""


def parse_time(name: str, text: object) -> datetime:
    """An RFC 3339 date-time with its offset (``2026-01-01T00:00:00Z``); a FilterError otherwise."""
    if not isinstance(text, str):
        raise FilterError(f"{name}: expected an RFC 3339 date-time, got {type(text).__name__}")
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise FilterError(f"{name}: {text!r} is not an RFC 3339 date-time (e.g. 2026-01-01T00:00:00Z)") from None
    if when.tzinfo is None:
        raise FilterError(f"{name}: {text!r} has no UTC offset (add Z or +08:00)")
    return when


def _plus_years(when: datetime, years: int) -> datetime:
    try:
        return when.replace(year=when.year + years)
    except ValueError:  # 29 February in a year that has none
        return when.replace(year=when.year + years, day=28)


def validity(pf: dict) -> tuple[datetime, datetime]:
    """(start, end) of a footprint's validity period, by the spec's default when it gives none."""
    ref_end = parse_time("referencePeriodEnd", pf["pcf"]["referencePeriodEnd"])
    start = parse_time("validityPeriodStart", pf["validityPeriodStart"]) if pf.get("validityPeriodStart") else ref_end
    end = (parse_time("validityPeriodEnd", pf["validityPeriodEnd"]) if pf.get("validityPeriodEnd")
           else _plus_years(ref_end, 3))
    return start, end


@dataclass(frozen=True)
class Criteria:
    """Parsed filters: per name, the accepted values (lower-cased text, or datetimes)."""

    values: tuple[tuple[str, tuple], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.values)

    def matches(self, pf: dict) -> bool:
        for name, wanted in self.values:
            if not _match(name, wanted, pf):
                return False
        return True


def _match(name: str, wanted: tuple, pf: dict) -> bool:
    if name in _URN_FILTERS:
        held = {str(v).lower() for v in pf.get(_URN_FILTERS[name]) or ()}
        return any(w in held for w in wanted)
    if name == "geography":
        pcf = pf.get("pcf") or {}
        held = {str(pcf[k]).lower() for k in _GEOGRAPHY if pcf.get(k)}
        return any(w in held for w in wanted)
    if name == "status":
        return str(pf.get("status", "")).lower() in wanted
    start, end = validity(pf)
    if name == "validOn":
        return any(start <= w <= end for w in wanted)
    if name == "validAfter":
        return any(start > w for w in wanted)
    return any(end < w for w in wanted)  # validBefore


def _as_list(name: str, value: object) -> list:
    if isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    if not items:
        raise FilterError(f"{name}: no value given")
    return items


def parse_filters(filters: Mapping[str, object] | None) -> Criteria:
    """Criteria from ``{name: value or [values]}`` (query parameters or an event's data)."""
    out = []
    for name, value in (filters or {}).items():
        if name not in FILTERS:
            raise FilterError(f"unknown filter {name!r}; the v3 filters are {', '.join(FILTERS)}")
        items = _as_list(name, value)
        if name in ("validOn", "validAfter", "validBefore"):
            out.append((name, tuple(parse_time(name, v) for v in items)))
            continue
        texts = []
        for v in items:
            if not isinstance(v, str) or not v.strip():
                raise FilterError(f"{name}: expected a non-empty string, got {v!r}")
            texts.append(v.strip().lower())
        out.append((name, tuple(texts)))
    return Criteria(tuple(out))
