"""convert_units: length, mass, time, volume, area, speed and temperature conversions.

Factors are exact definitions (NIST SP 811: 1 in = 0.0254 m, 1 lb = 0.45359237 kg,
1 US gal = 3.785411784 L), so conversions round-trip to within float precision.
"""

from __future__ import annotations

from grpo_envs.tools.base import Tool, ToolError

#: unit -> (dimension, factor to the SI base unit of that dimension). Temperature is affine
#: and handled apart.
_UNITS: dict[str, tuple[str, float]] = {
    # length (metre)
    "m": ("length", 1.0),
    "km": ("length", 1000.0),
    "cm": ("length", 0.01),
    "mm": ("length", 0.001),
    "mi": ("length", 1609.344),
    "yd": ("length", 0.9144),
    "ft": ("length", 0.3048),
    "in": ("length", 0.0254),
    "nmi": ("length", 1852.0),
    # mass (kilogram)
    "kg": ("mass", 1.0),
    "g": ("mass", 0.001),
    "mg": ("mass", 1e-6),
    "t": ("mass", 1000.0),
    "lb": ("mass", 0.45359237),
    "oz": ("mass", 0.45359237 / 16),
    # time (second)
    "s": ("time", 1.0),
    "min": ("time", 60.0),
    "h": ("time", 3600.0),
    "day": ("time", 86400.0),
    "week": ("time", 604800.0),
    # volume (litre)
    "l": ("volume", 1.0),
    "ml": ("volume", 0.001),
    "gal": ("volume", 3.785411784),
    "qt": ("volume", 3.785411784 / 4),
    "cup": ("volume", 3.785411784 / 16),
    "m3": ("volume", 1000.0),
    # area (square metre)
    "m2": ("area", 1.0),
    "km2": ("area", 1e6),
    "ha": ("area", 1e4),
    "acre": ("area", 4046.8564224),
    "ft2": ("area", 0.3048**2),
    # speed (metre per second)
    "m/s": ("speed", 1.0),
    "km/h": ("speed", 1000.0 / 3600.0),
    "mph": ("speed", 1609.344 / 3600.0),
    "knot": ("speed", 1852.0 / 3600.0),
}
_TEMPERATURES = ("C", "F", "K")

#: Names people write -> canonical unit symbol.
ALIASES: dict[str, str] = {
    "meter": "m",
    "meters": "m",
    "metre": "m",
    "metres": "m",
    "kilometer": "km",
    "kilometers": "km",
    "kilometre": "km",
    "kilometres": "km",
    "centimeter": "cm",
    "centimeters": "cm",
    "centimetre": "cm",
    "centimetres": "cm",
    "millimeter": "mm",
    "millimeters": "mm",
    "millimetre": "mm",
    "millimetres": "mm",
    "mile": "mi",
    "miles": "mi",
    "yard": "yd",
    "yards": "yd",
    "foot": "ft",
    "feet": "ft",
    "inch": "in",
    "inches": "in",
    "nautical mile": "nmi",
    "nautical miles": "nmi",
    "kilogram": "kg",
    "kilograms": "kg",
    "gram": "g",
    "grams": "g",
    "milligram": "mg",
    "milligrams": "mg",
    "tonne": "t",
    "tonnes": "t",
    "metric ton": "t",
    "pound": "lb",
    "pounds": "lb",
    "lbs": "lb",
    "ounce": "oz",
    "ounces": "oz",
    "second": "s",
    "seconds": "s",
    "sec": "s",
    "minute": "min",
    "minutes": "min",
    "hour": "h",
    "hours": "h",
    "hr": "h",
    "days": "day",
    "d": "day",
    "weeks": "week",
    "wk": "week",
    "liter": "l",
    "liters": "l",
    "litre": "l",
    "litres": "l",
    "milliliter": "ml",
    "milliliters": "ml",
    "millilitre": "ml",
    "millilitres": "ml",
    "gallon": "gal",
    "gallons": "gal",
    "quart": "qt",
    "quarts": "qt",
    "cups": "cup",
    "cubic meter": "m3",
    "cubic meters": "m3",
    "square meter": "m2",
    "square meters": "m2",
    "square kilometer": "km2",
    "square kilometers": "km2",
    "hectare": "ha",
    "hectares": "ha",
    "acres": "acre",
    "square foot": "ft2",
    "square feet": "ft2",
    "meters per second": "m/s",
    "kilometers per hour": "km/h",
    "kph": "km/h",
    "miles per hour": "mph",
    "knots": "knot",
    "kn": "knot",
    "celsius": "C",
    "fahrenheit": "F",
    "kelvin": "K",
    "°c": "C",
    "°f": "F",
    "degc": "C",
    "degf": "F",
}


def canonical_unit(unit: str) -> str:
    """The canonical symbol of a unit name (``"kilometres"`` -> ``"km"``).

    :raises ToolError: the unit is unknown.
    """
    if not isinstance(unit, str):
        raise ToolError("a unit must be a string such as 'km' or 'pounds'")
    text = unit.strip()
    if text.upper() in _TEMPERATURES:
        return text.upper()
    lowered = text.lower()
    if lowered in _UNITS:
        return lowered
    if lowered in ALIASES:
        return ALIASES[lowered]
    raise ToolError(f"unknown unit {unit!r}; known units: {sorted(_UNITS) + list(_TEMPERATURES)}")


def unit_names(symbol: str) -> list[str]:
    """Every accepted name of a unit (its symbol first), e.g. for BFCL-style acceptable values."""
    return [symbol] + [alias for alias, target in ALIASES.items() if target == symbol]


def _to_kelvin(value: float, unit: str) -> float:
    return {"K": value, "C": value + 273.15, "F": (value - 32.0) * 5.0 / 9.0 + 273.15}[unit]


def _from_kelvin(value: float, unit: str) -> float:
    return {"K": value, "C": value - 273.15, "F": (value - 273.15) * 9.0 / 5.0 + 32.0}[unit]


def convert_units(value: float, from_unit: str, to_unit: str) -> float:
    """Convert ``value`` from one unit to another of the same dimension.

    :raises ToolError: a unit is unknown, or the units measure different things.
    """
    source, target = canonical_unit(from_unit), canonical_unit(to_unit)
    if source in _TEMPERATURES or target in _TEMPERATURES:
        if not (source in _TEMPERATURES and target in _TEMPERATURES):
            raise ToolError(f"cannot convert {from_unit!r} to {to_unit!r}: only temperatures convert to temperatures")
        return _from_kelvin(_to_kelvin(float(value), source), target)
    (dim_from, factor_from), (dim_to, factor_to) = _UNITS[source], _UNITS[target]
    if dim_from != dim_to:
        raise ToolError(f"cannot convert {from_unit!r} ({dim_from}) to {to_unit!r} ({dim_to})")
    return float(value) * factor_from / factor_to


UNIT_CONVERTER = Tool(
    name="convert_units",
    description="Convert a quantity between units of length, mass, time, volume, area, speed or temperature.",
    parameters={
        "type": "object",
        "properties": {
            "value": {"type": "number", "description": "The quantity to convert."},
            "from_unit": {"type": "string", "description": 'The unit of value, e.g. "km", "lb", "F".'},
            "to_unit": {"type": "string", "description": "The unit to convert to."},
        },
        "required": ["value", "from_unit", "to_unit"],
    },
    function=convert_units,
)
