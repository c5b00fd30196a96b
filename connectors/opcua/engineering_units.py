"""Engineering units as OPC UA writes them: EUInformation with UN/CEFACT (UNECE) common codes.

OPC 10000-8 (Part 8: Data Access, v1.05) section 5.6.3 defines the ``EUInformation`` structure
(namespaceUri, unitId, displayName, description) and 5.6.3.4 how to fill it from UNECE
Recommendation N° 20 (Codes for Units of Measure Used in International Trade, Annex I): the
namespace URI is ``http://www.opcfoundation.org/UA/units/un/cefact``, and the unitId is the common
code's characters (at most three, ASCII) packed into an Int32, the first one highest.

``UNITS`` lists the units of the twin's signal vocabulary (connectors/units.py converts between
them with pint) and the ones a field device commonly sends instead (W, Wh, MWh, l).
``eu_information`` builds the structure a server publishes; ``symbol_of`` reads one back (by
unitId, else by its display name) so a client can draft ``unit:``.
"""

from __future__ import annotations

from dataclasses import dataclass

from asyncua import ua

CEFACT_URI = "http://www.opcfoundation.org/UA/units/un/cefact"


@dataclass(frozen=True)
class Unit:
    code: str  # UNECE Rec. 20 common code
    symbol: str  # the twin's spelling (the signal vocabulary's unit, pint-readable)
    description: str


#: symbol -> unit. NM3 (normalised cubic metre: 0 °C, 101.325 kPa) is in Rec. 20 (level 3.9) but
#: not in the OPC Foundation's extract of it; a client that checks against that extract will not know it.
UNITS: dict[str, Unit] = {
    u.symbol: u
    for u in (
        Unit("KWT", "kW", "kilowatt"),
        Unit("WTT", "W", "watt"),
        Unit("MAW", "MW", "megawatt"),
        Unit("KWH", "kWh", "kilowatt hour"),
        Unit("WHR", "Wh", "watt hour"),
        Unit("MWH", "MWh", "megawatt hour"),
        Unit("MTQ", "m3", "cubic metre"),
        Unit("NM3", "Nm3", "normalised cubic metre"),
        Unit("LTR", "l", "litre"),
        Unit("C62", "count", "one (a unit of count)"),
    )
}


def unit_id(code: str) -> int:
    """The EUInformation unitId of a UNECE common code (Part 8 section 5.6.3.4): its ASCII
    characters shifted in one byte at a time, e.g. ``KWT`` -> 0x4B5754 = 4937556."""
    if not 1 <= len(code) <= 3 or not code.isascii():
        raise ValueError(f"a UNECE common code has 1 to 3 ASCII characters, got {code!r}")
    out = 0
    for ch in code:
        out = (out << 8) | ord(ch)
    return out


_BY_ID = {unit_id(u.code): u for u in UNITS.values()}


def eu_information(symbol: str) -> ua.EUInformation:
    """The EUInformation of one of ``UNITS`` (ValueError naming the known ones otherwise)."""
    try:
        u = UNITS[symbol]
    except KeyError:
        raise ValueError(f"no UNECE code known for unit {symbol!r}; known: {', '.join(UNITS)}") from None
    return ua.EUInformation(
        NamespaceUri=CEFACT_URI,
        UnitId=unit_id(u.code),
        DisplayName=ua.LocalizedText(u.symbol),
        Description=ua.LocalizedText(u.description),
    )


def symbol_of(eu: ua.EUInformation | None) -> str | None:
    """The twin's unit symbol of a server's EUInformation: by UNECE unitId when the namespace is
    UN/CEFACT's, else its display name as written; None when there is none."""
    if eu is None:
        return None
    if eu.NamespaceUri == CEFACT_URI and eu.UnitId in _BY_ID:
        return _BY_ID[eu.UnitId].symbol
    text = eu.DisplayName.Text if eu.DisplayName is not None else None
    return text or None
